-- 067_index_concurrently_in_transaction.sql
-- CONCURRENTLY inside BEGIN ... COMMIT: PostgreSQL refuses it, the migration fails. (Fails on purpose.)
-- Expected: Low (an index on 20,000 rows), yet it fails: hazard concurrently_in_transaction.
BEGIN;
CREATE INDEX CONCURRENTLY idx_messages_edited_at ON nchat.nchat_messages (edited_at);
COMMIT;
