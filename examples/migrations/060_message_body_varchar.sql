-- 060_message_body_varchar.sql
-- Incompatible pattern: changing a column type (rewrites the table under ACCESS EXCLUSIVE).
-- Expected: High; hazards change_column_type and missing_lock_timeout; rollback is manual.
ALTER TABLE nchat.nchat_messages ALTER COLUMN body TYPE VARCHAR(4000);
