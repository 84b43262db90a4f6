"""Alembic migrations. Run them with ``cvault migrate``; see README for writing new ones."""
