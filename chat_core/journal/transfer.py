"""Copy a whole journal into an empty one on another database (`chat-web migrate-journal`):
SQLite to PostgreSQL when a deployment outgrows one machine, and back.

The rows are copied as stored (seq, stream, tag, version, payload, actor, command id, recorded
time), never decoded and re-encoded: an old event stays in its old form, to be upcast when
read, as it was. The destination is opened (and migrated) as the server opens it, and must hold
no event. The copy is one transaction on the destination, in keyset pages of the source up to
the head read at the start: all rows or none. The server on the source must be stopped: rows it
appended meanwhile would be left behind, so a head that moved during the copy rolls it back.
After the commit both journals are read again from fresh connections and compared row by row,
and the destination is replayed as start-up replays it, to the same state as the source.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from chat_core.errors import ChatError, StorageError, UnsupportedJournal
from chat_core.journal.check import checked_replay
from chat_core.journal.open import open_journal
from chat_core.journal.pages import hold, prefetching
from chat_core.journal.port import JournalPort
from chat_core.journal.tables import INSERT_SQL, events
from chat_core.settings.paths import ensure_dir, sqlite_file

# Rows per page: large enough that round trips do not dominate, small enough to stay a few MB.
PAGE_ROWS = 5_000
_ROW = tuple(events.c)
_KEYS = tuple(column.name for column in _ROW)
_TOP = 2**62
# Every column, in the table's order (INSERT_SQL's); the placeholders are the driver's.
_READ = (
    f"SELECT {', '.join(_KEYS)} FROM events WHERE seq > {{}} AND seq <= {{}} ORDER BY seq"
    " LIMIT {}"
)


class TransferReport(msgspec.Struct, frozen=True, kw_only=True):
    events: int
    head: int
    seconds: float

    @property
    def rate(self) -> float:
        """Events copied (and verified) per second."""
        return self.events / self.seconds if self.seconds > 0 else float(self.events)


def as_url(text: str) -> str:
    """A database URL as given, or a plain file path as a SQLite URL."""
    if "://" in text:
        return text
    return f"sqlite+aiosqlite:///{Path(text).expanduser().absolute().as_posix()}"


async def transfer(source_url: str, dest_url: str) -> TransferReport:
    """Copy the journal at `source_url` into the empty journal at `dest_url`, then verify it.

    Refused with one line (`UnsupportedJournal`, `StorageError`), nothing written to the
    destination's events, when it holds events, is the source, or the source moved meanwhile.
    """
    started = time.perf_counter()
    source = await _open_source(source_url)
    try:
        dest = await _open_dest(dest_url)
        try:
            head = await source.head()
            if await dest.head() != 0:
                raise UnsupportedJournal(
                    f"{_shown(dest_url)} already holds events: the destination must be an"
                    " empty journal; nothing was copied"
                )
            src_engine, dst_engine = _engine(source_url, True), _engine(dest_url, False)
            try:
                await _copy(source, src_engine, dst_engine, head)
                copied = await _compare(src_engine, dst_engine, head)
            finally:
                await src_engine.dispose()
                await dst_engine.dispose()
            await _same_state(source, dest, dest_url)
        finally:
            await dest.close()
    finally:
        await source.close()
    return TransferReport(events=copied, head=head, seconds=time.perf_counter() - started)


async def _open_source(url: str) -> JournalPort:
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        raise UnsupportedJournal(f"no journal at {path}")
    # Read-only: the source is never written, not even migrated.
    return await open_journal(url, readonly=True)


async def _open_dest(url: str) -> JournalPort:
    path = sqlite_file(url)
    if path is not None:
        # As the server makes its data directory: 0700 (the file is made 0600 by the migration).
        ensure_dir(path.absolute().parent)
    # Opened as the server opens it: migrated first, and a SQLite file locked against a server.
    return await open_journal(url, migrate=True)


async def _copy(source: JournalPort, src: AsyncEngine, dst: AsyncEngine, head: int) -> None:
    """Rows 1..head, page by page, in one transaction of the destination (all or none).

    Through the drivers, not SQLAlchemy's executemany: a PostgreSQL COPY takes a page in one
    round trip (100k rows: 2 s, against 8.5 s through SQLAlchemy).
    """
    conn, driver = await hold(src)
    try:
        fetch = _fetcher(src, driver)
        async with _writing(dst) as write:
            async with aclosing(prefetching(lambda after: fetch(after, head), 0, _last)) as pages:
                async for rows in pages:
                    await write(rows)
            # Checked before the commit, so a moving source leaves the destination empty.
            moved = await source.head()
            if moved != head:
                raise StorageError(
                    f"{_shown(source.url)} moved from seq {head} to {moved} during the copy:"
                    " stop the server on it first; nothing was copied"
                )
    finally:
        await conn.close()


async def _compare(src: AsyncEngine, dst: AsyncEngine, head: int) -> int:
    """Read both journals again (fresh connections, after the commit) and compare every row,
    every column; the rows compared."""
    left_conn, left = await hold(src)
    right_conn, right = await hold(dst)
    try:
        ours_of, theirs_of = _fetcher(src, left), _fetcher(dst, right)
        after = count = 0
        while True:
            ours, theirs = await ours_of(after, _TOP), await theirs_of(after, _TOP)
            if ours != theirs:
                why = _first_difference(ours or [], theirs or [])
                raise StorageError(f"the copy differs from the source: {why}")
            if not ours:
                break
            count += len(ours)
            after = ours[-1][0]
    finally:
        await left_conn.close()
        await right_conn.close()
    if after != head:
        raise StorageError(f"the copy ends at seq {after}, the source at {head}")
    return count


async def _same_state(source: JournalPort, dest: JournalPort, dest_url: str) -> None:
    """Fold both as start-up does (the destination with its checks: every seq, decoded)."""
    copy, original = await asyncio.gather(
        checked_replay(dest, history_window=0),
        checked_replay(source, history_window=0),
        return_exceptions=True,
    )
    if isinstance(copy, ChatError):
        raise StorageError(f"the copy does not replay: {copy.message}") from copy
    if isinstance(copy, BaseException):
        raise copy
    if isinstance(original, BaseException):
        raise original
    theirs, ours = copy[0], original[0]
    if ours != theirs:
        raise StorageError(f"{_shown(dest_url)} replays to a state other than the source's")


Rows = list[tuple[Any, ...]]


def _fetcher(engine: AsyncEngine, driver: Any) -> Callable[[int, int], Awaitable[Rows | None]]:
    """The page of rows after < seq <= until (None past the last), on a driver connection."""
    postgres = engine.dialect.name == "postgresql"
    sql = _READ.format(*(("$1", "$2", "$3") if postgres else ("?", "?", "?")))

    async def fetch(after: int, until: int) -> Rows | None:
        if postgres:
            rows = await driver.fetch(sql, after, until, PAGE_ROWS)
        else:
            rows = await driver.execute_fetchall(sql, (after, until, PAGE_ROWS))
        return [tuple(row) for row in rows] or None

    return fetch


@contextlib.asynccontextmanager
async def _writing(engine: AsyncEngine) -> AsyncIterator[Callable[[Rows], Awaitable[Any]]]:
    """A writer of pages of rows, inside one transaction committed at the end (rolled back if
    the block raises)."""
    conn, driver = await hold(engine)
    try:
        if engine.dialect.name == "postgresql":

            async def copy(rows: Rows) -> None:
                await driver.copy_records_to_table("events", records=rows, columns=_KEYS)

            async with driver.transaction():
                yield copy
            return
        driver.isolation_level = None  # the transaction is ours, not the driver's
        await driver.execute("BEGIN IMMEDIATE")
        try:
            yield partial(driver.executemany, INSERT_SQL)
        except BaseException:
            await driver.execute("ROLLBACK")
            raise
        await driver.execute("COMMIT")
    finally:
        await conn.close()


def _last(rows: Rows) -> int:
    return int(rows[-1][0])


def _first_difference(ours: list[tuple[Any, ...]], theirs: list[tuple[Any, ...]]) -> str:
    for mine, copied in zip(ours, theirs, strict=False):
        if mine != copied:
            columns = [k for k, a, b in zip(_KEYS, mine, copied, strict=True) if a != b]
            return f"seq {mine[0]} differs in {', '.join(columns)}"
    longer = ours if len(ours) > len(theirs) else theirs
    which = "the copy lacks" if longer is ours else "the copy has an extra"
    return f"{which} seq {longer[min(len(ours), len(theirs))][0]}"


def _engine(url: str, readonly: bool) -> AsyncEngine:
    """An engine of its own for the bulk rows (no pool: a few long connections)."""
    connect_args: dict[str, Any] = {}
    path = sqlite_file(url)
    if path is not None and readonly:
        url = f"sqlite+aiosqlite:///file:{path.absolute()}?mode=ro&uri=true"
    elif path is None:
        connect_args["timeout"] = 5.0
        if readonly:
            connect_args["server_settings"] = {"default_transaction_read_only": "on"}
    # Parameters are message text and password hashes: never in an error's text.
    return create_async_engine(
        url, poolclass=NullPool, hide_parameters=True, connect_args=connect_args
    )


def _shown(url: str) -> str:
    path = sqlite_file(url)
    if path is not None:
        return str(path)
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
