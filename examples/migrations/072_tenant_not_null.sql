-- 072_tenant_not_null.sql
-- NOT NULL column without a default on a table with rows: PostgreSQL refuses it. (Fails on purpose.)
-- Expected: High; hazards add_column_not_null_without_default and missing_lock_timeout.
ALTER TABLE nchat.nchat_users ADD COLUMN tenant_id UUID NOT NULL;
