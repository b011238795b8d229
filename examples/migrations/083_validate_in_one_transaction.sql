-- 083_validate_in_one_transaction.sql
-- A CHECK added NOT VALID, then validated in the same transaction: the ACCESS EXCLUSIVE lock of the ADD is
-- held while every row is checked, so NOT VALID gains nothing.
-- Expected: Low; hazard validate_in_same_transaction (COMMIT between the two).
BEGIN;
SET LOCAL lock_timeout = '5s';
ALTER TABLE nchat.nchat_messages
ADD CONSTRAINT nchat_messages_body_not_empty CHECK (body <> '') NOT VALID;
ALTER TABLE nchat.nchat_messages VALIDATE CONSTRAINT nchat_messages_body_not_empty;
COMMIT;
