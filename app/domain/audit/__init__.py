"""The append-only audit log."""
