-- 064_vacuum_full_messages.sql
-- Table maintenance that rewrites the table under ACCESS EXCLUSIVE (and cannot run in a transaction).
-- Expected: Medium (table maintenance); hazards table_rewrite_maintenance and missing_lock_timeout.
VACUUM FULL nchat.nchat_messages;
