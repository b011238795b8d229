-- 075_drop_created_at_index.sql
-- DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on the table.
-- Expected: Medium; hazard drop_index_without_concurrently; rollback is manual.
DROP INDEX nchat.idx_messages_created_at;
