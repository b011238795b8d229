-- 057_split_full_name.sql
-- Pattern: "Splitting a Column", phases 1 and 2: add the new columns, backfill them in a bounded UPDATE.
-- Expected: Medium (a data migration in one transaction: batch it on a large table).
SET lock_timeout = '5s';

ALTER TABLE nchat.nchat_users
  ADD COLUMN first_name TEXT NULL,
  ADD COLUMN last_name TEXT NULL;

UPDATE nchat.nchat_users
SET
  first_name = split_part(full_name, ' ', 1),
  last_name = split_part(full_name, ' ', 2)
WHERE first_name IS NULL;
