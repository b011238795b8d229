-- 074_message_length_check.sql
-- A CHECK constraint added valid: every row is checked while ACCESS EXCLUSIVE is held.
-- Expected: Medium; hazard constraint_validation (add it NOT VALID, then VALIDATE).
SET lock_timeout = '5s';

ALTER TABLE nchat.nchat_messages
ADD CONSTRAINT nchat_messages_body_length CHECK (char_length(body) <= 10000);
