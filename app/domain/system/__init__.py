"""The system domain."""
