-- 084_nested_begin.sql
-- A BEGIN inside a transaction is ignored: the first COMMIT ends the whole block, the rest runs outside it.
-- Expected: Low; hazard nested_transaction.
BEGIN;
SET LOCAL lock_timeout = '5s';
ALTER TABLE nchat.nchat_channels ADD COLUMN archived_at TIMESTAMPTZ NULL;
BEGIN;
COMMENT ON COLUMN nchat.nchat_channels.archived_at IS 'When the channel was archived';
COMMIT;
COMMIT;
