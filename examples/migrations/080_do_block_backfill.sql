-- 080_do_block_backfill.sql
-- Code the analysis cannot see into: a DO block. Its plain SQL is analysed (a bounded backfill here), but
-- conditions, loops and dynamic SQL are not, so the block itself is flagged for review by hand.
-- Expected: Medium; hazards not_analysed and data_migration; rollback is manual.
SET lock_timeout = '5s';

DO $$
BEGIN
  UPDATE nchat.nchat_channels SET is_private = false WHERE name LIKE 'public-%';
END $$;
