"""The schema's history, as Alembic migrations (``versions/``), applied by ``bot.store.migrate``."""
