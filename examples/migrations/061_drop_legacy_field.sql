-- 061_drop_legacy_field.sql
-- Incompatible pattern: dropping a column. Its data is gone; only a backup brings it back.
-- Expected: High; hazard drop_column; rollback is manual (restore from backup).
SET lock_timeout = '5s';

ALTER TABLE nchat.nchat_users DROP COLUMN legacy_field;
