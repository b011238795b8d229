-- 065_lock_channels.sql
-- An explicit LOCK TABLE held for the whole transaction, around a bounded data change.
-- Expected: Medium; hazards lock_table, data_migration and missing_lock_timeout.
BEGIN;
LOCK TABLE nchat.nchat_channels IN EXCLUSIVE MODE;
UPDATE nchat.nchat_channels SET is_private = false WHERE name LIKE 'public-%';
COMMIT;
