-- 069_channel_topics.sql
-- A new table whose foreign key has no index: deletes of channels will scan it.
-- Expected: Low; hazard foreign_key_unindexed; generated rollback drops the table.
SET lock_timeout = '5s';

CREATE TABLE nchat.nchat_channel_topics (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  channel_id UUID NOT NULL REFERENCES nchat.nchat_channels(id) ON DELETE CASCADE,
  title TEXT NOT NULL
);
