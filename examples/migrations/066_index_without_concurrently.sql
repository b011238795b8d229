-- 066_index_without_concurrently.sql
-- "Adding an Index on Large Table" the wrong way: without CONCURRENTLY, writes wait for the whole build.
-- Expected: Low on the demo's 20,000 rows (Medium over 1M rows); hazards index_without_concurrently
-- and missing_lock_timeout; generated rollback drops the index.
CREATE INDEX idx_messages_created_at
ON nchat.nchat_messages(created_at DESC);
