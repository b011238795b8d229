-- 055_add_feature_toggle.sql
-- Pattern: "Adding a Feature Toggle Column", phase 1: nullable with a constant default.
-- Expected: Low, no hazards on PostgreSQL 11+ (a constant default is stored, not written to every row).
SET lock_timeout = '5s';

ALTER TABLE nchat.nchat_users
ADD COLUMN feature_enabled BOOLEAN NULL DEFAULT false;
