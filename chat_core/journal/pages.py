"""Helpers both SQL journals share: read-ahead of pages, connections held for long, and the
idempotency look-up's rows keyed by (actor, command id)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chat_core.domain import codec
from chat_core.domain import events as e

_Page = TypeVar("_Page")


async def prefetching(
    fetch: Callable[[int], Awaitable[_Page | None]], after: int, last_of: Callable[[_Page], int]
) -> AsyncGenerator[_Page, None]:
    """Pages from `fetch(after)` on, until None; each next page is read while the caller
    works on the current one (SQLite: in the driver's thread, which releases the GIL while it
    steps; PostgreSQL: in the server's own process).
    """
    page = await fetch(after)
    following: asyncio.Future[_Page | None] | None = None
    try:
        while page is not None:
            following = asyncio.ensure_future(fetch(last_of(page)))
            # Let the task hand its query to the driver's thread now: the caller folds the
            # page without awaiting, so otherwise the read would only start after it.
            await asyncio.sleep(0)
            yield page
            page = await following
            following = None
    finally:
        if following is not None:
            # A caller that stopped early: let the read finish before the connection goes
            # back to the pool.
            with contextlib.suppress(Exception):
                await following


async def hold(engine: AsyncEngine) -> tuple[AsyncConnection, Any]:
    """A connection checked out of `engine` for long, and its driver's connection (aiosqlite's,
    asyncpg's)."""
    conn = await engine.connect()
    try:
        raw = await conn.get_raw_connection()
    except BaseException:
        await conn.close()
        raise
    driver = raw.driver_connection
    assert driver is not None
    return conn, driver


def by_command(rows: Any) -> dict[tuple[str, str], e.Recorded]:
    """(actor, command id) -> the recorded event that carries it, among the look-up's rows
    (`seq, tag, version, payload, actor, command_id, recorded_at`)."""
    decode = codec.decode_row
    return {(row[4], row[5]): decode(*row) for row in rows}
