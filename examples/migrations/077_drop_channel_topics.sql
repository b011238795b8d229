-- 077_drop_channel_topics.sql
-- Dropping a table: code still using it breaks and its rows are gone.
-- Expected: High; hazards drop_table and missing_lock_timeout; rollback is manual.
DROP TABLE nchat.nchat_channel_topics;
