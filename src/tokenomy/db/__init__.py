"""The database engine every store shares: SQLite (embedded) or PostgreSQL (scale-out) by URL (``db.engine``)."""
