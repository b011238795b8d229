-- 054_add_message_bookmarks.rollback.sql
-- Rollback for message bookmarking feature (the guide's sample rollback).

BEGIN;

-- Drop indexes
DROP INDEX IF EXISTS nchat.idx_message_bookmarks_user CASCADE;
DROP INDEX IF EXISTS nchat.idx_message_bookmarks_message CASCADE;

-- Drop table
DROP TABLE IF EXISTS nchat.nchat_message_bookmarks CASCADE;

COMMIT;
