-- 071_unrelated_changes.sql
-- Two unrelated tables changed in one migration: review, apply and roll back each on its own.
-- Expected: High (major restructuring); hazard unrelated_tables.
SET lock_timeout = '5s';

ALTER TABLE nchat.nchat_channels ADD COLUMN topic TEXT NULL;
ALTER TABLE nchat.nchat_audit_log ADD COLUMN source TEXT NULL;
