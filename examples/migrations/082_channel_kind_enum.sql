-- 082_channel_kind_enum.sql
-- An enum value added and used in the same transaction: PostgreSQL refuses the use until the value is
-- committed ("unsafe use of new value"). (Fails on purpose.)
-- Expected: Medium (a bounded data change); hazards enum_value_used_in_transaction and data_migration.
SET lock_timeout = '5s';

CREATE TYPE nchat.channel_kind AS ENUM ('public', 'private');
ALTER TABLE nchat.nchat_channels ADD COLUMN kind nchat.channel_kind NULL;

BEGIN;
ALTER TYPE nchat.channel_kind ADD VALUE 'archived';
UPDATE nchat.nchat_channels SET kind = 'archived' WHERE name LIKE 'old-%';
COMMIT;
