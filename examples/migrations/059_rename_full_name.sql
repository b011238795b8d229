-- 059_rename_full_name.sql
-- Incompatible pattern: renaming a column. Running code still reads full_name and fails.
-- Expected: High; hazards rename_column and missing_lock_timeout; generated rollback renames it back.
ALTER TABLE nchat.nchat_users RENAME COLUMN full_name TO display_name;
