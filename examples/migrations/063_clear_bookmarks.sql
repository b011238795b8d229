-- 063_clear_bookmarks.sql
-- TRUNCATE: ACCESS EXCLUSIVE and every row gone.
-- Expected: High; hazards truncate and missing_lock_timeout; rollback is manual.
TRUNCATE nchat.nchat_message_bookmarks;
