-- 062_backfill_edited_at.sql
-- Data migration without a WHERE clause: every row in one transaction.
-- Expected: High (large data migration); hazard update_without_where; rollback is manual.
UPDATE nchat.nchat_messages SET edited_at = created_at;
