-- 081_vacuum_in_transaction.sql
-- VACUUM inside BEGIN ... COMMIT: PostgreSQL refuses it, the migration fails. (Fails on purpose.)
-- Expected: Low (VACUUM is maintenance that blocks nothing), yet it fails: hazard cannot_run_in_transaction.
BEGIN;
SET LOCAL lock_timeout = '5s';
VACUUM (ANALYZE) nchat.nchat_messages;
COMMIT;
