"""Open the journal a database URL names: SQLite or PostgreSQL, chosen by the URL's dialect.

The PostgreSQL journal (and asyncpg) is imported only when a URL names it, so a SQLite server
pays nothing for it at start-up.
"""

from __future__ import annotations

from typing import Literal

from chat_core.errors import UnsupportedJournal
from chat_core.journal.port import JournalPort

Synchronous = Literal["FULL", "NORMAL"]


def dialect(url: str) -> str:
    """The URL's database, without its driver: `sqlite`, `postgresql`..."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise UnsupportedJournal(f"not a database URL: {url!r}")
    return scheme.partition("+")[0]


async def open_journal(
    url: str, *, synchronous: Synchronous = "FULL", readonly: bool = False, migrate: bool = False
) -> JournalPort:
    """The journal at `url`, opened (and migrated first if asked); `synchronous` is SQLite's."""
    kind = dialect(url)
    if kind == "sqlite":
        from chat_core.journal.sqlite import Journal

        return await Journal.open(url, synchronous=synchronous, readonly=readonly, migrate=migrate)
    if kind == "postgresql":
        if not url.startswith("postgresql+asyncpg://"):
            raise UnsupportedJournal(
                f"database.url {url.partition('://')[0]}:// is not supported:"
                " use postgresql+asyncpg://"
            )
        from chat_core.journal.postgres import PostgresJournal

        return await PostgresJournal.open(url, readonly=readonly, migrate=migrate)
    raise UnsupportedJournal(
        f"database.url names a {kind} database: only sqlite+aiosqlite:// and"
        " postgresql+asyncpg:// are supported"
    )
