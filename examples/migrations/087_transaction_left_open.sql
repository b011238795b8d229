-- 087_transaction_left_open.sql
-- A BEGIN never committed: psql rolls the work back when the session ends. (Kept last: it leaves the
-- session in a transaction.)
-- Expected: Low; hazard transaction_left_open.
BEGIN;
SET LOCAL lock_timeout = '5s';
ALTER TABLE nchat.nchat_messages ADD COLUMN reactions_count INT NULL;
