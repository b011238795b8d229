-- 085_members_tablespace.sql
-- SET TABLESPACE copies the whole table and its indexes under ACCESS EXCLUSIVE: reads and writes wait.
-- Expected: Medium; hazard table_rewrite; rollback is manual.
SET lock_timeout = '5s';

ALTER TABLE nchat.nchat_channel_members SET TABLESPACE pg_default;
