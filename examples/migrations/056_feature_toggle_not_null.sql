-- 056_feature_toggle_not_null.sql
-- Pattern: "Adding NOT NULL" the zero-downtime way: CHECK ... NOT VALID, VALIDATE, then SET NOT NULL
-- (PostgreSQL 12+ trusts the valid check and skips the scan), then drop the check.
-- Expected: Medium (SET NOT NULL is in the matrix), no scan hazard; the last two ALTERs could be one.
SET lock_timeout = '5s';

ALTER TABLE nchat.nchat_users
ADD CONSTRAINT nchat_users_feature_enabled_not_null CHECK (feature_enabled IS NOT NULL) NOT VALID;

ALTER TABLE nchat.nchat_users VALIDATE CONSTRAINT nchat_users_feature_enabled_not_null;

ALTER TABLE nchat.nchat_users ALTER COLUMN feature_enabled SET NOT NULL;

ALTER TABLE nchat.nchat_users DROP CONSTRAINT nchat_users_feature_enabled_not_null;
