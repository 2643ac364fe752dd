"""Event messages and their evidence (snapshots)."""
