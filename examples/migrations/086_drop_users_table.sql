-- 086_drop_users_table.sql
-- Dropping a table other tables' foreign keys depend on: PostgreSQL refuses it. (Fails on purpose.)
-- Expected: High; hazards dependent_objects (read from the target's catalog) and drop_table.
SET lock_timeout = '5s';

DROP TABLE nchat.nchat_users;
