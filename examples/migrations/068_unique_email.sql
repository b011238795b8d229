-- 068_unique_email.sql
-- A UNIQUE constraint without an existing index builds it under ACCESS EXCLUSIVE.
-- Expected: Medium; hazard unique_without_index. The safe way: CREATE UNIQUE INDEX CONCURRENTLY, then
-- ADD CONSTRAINT ... UNIQUE USING INDEX.
SET lock_timeout = '5s';

ALTER TABLE nchat.nchat_users ADD CONSTRAINT nchat_users_email_key UNIQUE (email);
