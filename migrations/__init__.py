"""Alembic environment and revisions for the StallTriage schema (run them with ``db.migrate``)."""
