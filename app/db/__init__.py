"""Database models, migrations and tenant scoping."""
