-- 058_messages_user_fk.sql
-- Pattern: "Adding a Foreign Key": NOT VALID first (new rows only), then VALIDATE (reads and writes go on).
-- Expected: Low, no hazards (nchat_messages.user_id is already indexed).
SET lock_timeout = '5s';

ALTER TABLE nchat.nchat_messages
ADD CONSTRAINT fk_messages_user_id
FOREIGN KEY (user_id) REFERENCES nchat.nchat_users(id)
NOT VALID;

ALTER TABLE nchat.nchat_messages VALIDATE CONSTRAINT fk_messages_user_id;
