-- 079_rename_audit_log.sql
-- Incompatible pattern: renaming a table. Code still writing nchat_audit_log fails at once.
-- Expected: High; hazards rename_table and missing_lock_timeout; generated rollback renames it back.
ALTER TABLE nchat.nchat_audit_log RENAME TO nchat_audit_events;
