"""Alembic migrations, run as the database owner role."""
