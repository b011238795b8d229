-- 073_message_public_id.sql
-- A volatile default (gen_random_uuid()) is computed for every existing row: a full table rewrite.
-- Expected: High (large data migration); hazard add_column_volatile_default.
SET lock_timeout = '5s';

ALTER TABLE nchat.nchat_messages ADD COLUMN public_id UUID DEFAULT gen_random_uuid();
