"""Alembic environment: the connection comes from the caller (``db.migrate``), the schema from ``db.models``.

``config.attributes["connection"]`` is a connection of the command's engine, already in a
transaction (``db.migrate`` opens it, with foreign keys off on SQLite). SQLite migrations run in
batch mode (copy-and-move tables), so column changes work there too.
"""

from __future__ import annotations

from alembic import context

from db.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True,
                  compare_server_default=False, render_as_batch=connection.dialect.name == "sqlite",
                  transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
