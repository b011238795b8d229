-- 076_purge_audit_log.sql
-- DELETE without WHERE: every row in one transaction.
-- Expected: High; hazard delete_without_where; rollback is manual.
DELETE FROM nchat.nchat_audit_log;
