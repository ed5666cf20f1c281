"""The system of record: SQLAlchemy models, engine set-up and the queries the CLI and app call."""
