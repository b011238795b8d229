-- 078_first_name_not_null.sql
-- "Adding NOT NULL constraints to existing columns" directly: a full scan under ACCESS EXCLUSIVE.
-- Expected: Medium; hazard set_not_null (056 shows the safe way); rollback drops NOT NULL again.
SET lock_timeout = '5s';

ALTER TABLE nchat.nchat_users ALTER COLUMN first_name SET NOT NULL;
