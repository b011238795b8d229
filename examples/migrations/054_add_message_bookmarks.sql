-- 054_add_message_bookmarks.sql
-- Add bookmarking feature to messages (the guide's sample migration).
-- Pattern: creating new tables (safe). Expected: Low, no hazards; rollback from the .rollback.sql file.

BEGIN;

-- Create bookmarks table
CREATE TABLE IF NOT EXISTS nchat.nchat_message_bookmarks (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  message_id UUID NOT NULL REFERENCES nchat.nchat_messages(id) ON DELETE CASCADE,
  user_id UUID NOT NULL REFERENCES nchat.nchat_users(id) ON DELETE CASCADE,
  notes TEXT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  UNIQUE(message_id, user_id)
);

-- Create indexes
CREATE INDEX idx_message_bookmarks_user
ON nchat.nchat_message_bookmarks(user_id, created_at DESC);

CREATE INDEX idx_message_bookmarks_message
ON nchat.nchat_message_bookmarks(message_id);

-- Add comment
COMMENT ON TABLE nchat.nchat_message_bookmarks IS 'User bookmarks for messages';

COMMIT;
