-- 070_pin_messages.sql
-- Two ALTER TABLE statements in a row on one table: two ACCESS EXCLUSIVE locks where one would do.
-- Expected: Low; hazard merge_alters.
SET lock_timeout = '5s';

ALTER TABLE nchat.nchat_messages ADD COLUMN is_pinned BOOLEAN NULL;
ALTER TABLE nchat.nchat_messages ADD COLUMN pinned_at TIMESTAMPTZ NULL;
