"""Alembic environment: async SQLAlchemy, the database URL from the server's own settings."""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from chat_core.journal.tables import metadata

config = context.config
if config.config_file_name is not None and not config.attributes.get("url"):
    # Run from a shell (`alembic upgrade head`): log what is applied, as alembic.ini says.
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    # The server passes its URL in; `alembic upgrade head` from a shell loads the same
    # settings sources as `chat-web serve`, so both always migrate the same file.
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if url:
        return str(url)
    from chat_core.settings.schema import database_url
    from chat_core.settings.sources import load_settings

    settings = load_settings()
    settings_url = database_url(settings)
    from chat_core.settings.paths import ensure_sqlite_file

    ensure_sqlite_file(settings_url)
    return settings_url


# The key of PostgreSQL's advisory lock held while migrating (any constant of our own).
_MIGRATION_LOCK = 0x63686174


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                await connection.exec_driver_sql("PRAGMA journal_mode=WAL")
            else:
                # Several servers may start at once on one PostgreSQL database: one migrates,
                # the others wait here, then find it at the head. A session lock, released when
                # the connection closes.
                await connection.exec_driver_sql(f"SELECT pg_advisory_lock({_MIGRATION_LOCK})")
            await connection.run_sync(_migrate)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
