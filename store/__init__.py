"""The database store: SQLAlchemy models, repositories, unit of work and migrations."""
