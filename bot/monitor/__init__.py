"""The monitor window after a migration: where its samples come from and what they mean."""
