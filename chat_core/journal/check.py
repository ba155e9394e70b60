"""Is the journal whole? SQLite's own check of the file, and whether replay folded every row
(on PostgreSQL, which checks its own pages, the second part alone).

A damaged journal is never served (docs/protocol.md section 6): a b-tree page overwritten in
the middle can make a range scan stop early without an error, so replay alone could fold 5 of
36 events and report success. Start-up therefore runs `PRAGMA quick_check` (every page of every
b-tree, O(pages); 0.4 s at 1M events) on a read-only connection of its own, in a thread, while
replay folds on the driver's thread; then it holds what replay folded against the table's own
`count(*)`, `min(seq)` and `max(seq)`. `chat-cli replay --verify` runs the full
`integrity_check` (indexes against the table too: 7 times slower) with `file_problems`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import NamedTuple, Protocol, runtime_checkable

from sqlalchemy.exc import DBAPIError

from chat_core.domain.state import ChatState
from chat_core.errors import ChatError, CorruptJournal, DamagedJournal
from chat_core.journal.port import JournalPort
from chat_core.journal.replay import ReplayReport, replay
from chat_core.settings.paths import sqlite_file

# Problems SQLite lists at most (the first names the damage; the rest are for --verify).
MAX_PROBLEMS = 10


class TableSpan(NamedTuple):
    """What the events table holds: its rows, and its first and last seq (0 when empty)."""

    rows: int
    first: int
    last: int


@runtime_checkable
class Spanned(Protocol):
    """A journal that tells its table's span itself (PostgreSQL: no file to check)."""

    url: str

    async def table_span(self, until: int | None = None) -> tuple[int, int, int]: ...

    async def first_missing_seq(self) -> int | None: ...


def _connect(path: Path) -> sqlite3.Connection:
    # mode=ro: a check never writes, even to a damaged file.
    return sqlite3.connect(f"file:{path.absolute()}?mode=ro", uri=True)


def file_problems(path: Path, *, full: bool) -> list[str]:
    """What SQLite finds wrong with the file ([] when it is sound). Blocking: run in a thread.

    `quick_check` walks every page of every b-tree; `integrity_check` (full) also checks that
    each index agrees with its table.
    """
    pragma = "integrity_check" if full else "quick_check"
    try:
        connection = _connect(path)
        try:
            rows = connection.execute(f"PRAGMA {pragma}({MAX_PROBLEMS})").fetchall()
        finally:
            connection.close()
    except sqlite3.Error as exc:
        # The check itself cannot run: the damage is where SQLite reads its own schema.
        return [str(exc)]
    # One problem may span lines, under a heading ("*** in database main ***"): one a line.
    problems = [
        line.strip()
        for row in rows
        for line in str(row[0]).splitlines()
        if line.strip() and not line.startswith("***")
    ]
    return [] if problems == ["ok"] else problems


def table_span(path: Path) -> TableSpan:
    """count(*), min(seq) and max(seq) of the events table (min and max: one b-tree descent)."""
    connection = _connect(path)
    try:
        rows, first, last = connection.execute(
            "SELECT count(*), coalesce(min(seq), 0), coalesce(max(seq), 0) FROM events"
        ).fetchone()
    finally:
        connection.close()
    return TableSpan(int(rows), int(first), int(last))


def last_seq(path: Path) -> int:
    """max(seq), read from the table's own b-tree (no index), 0 when empty."""
    connection = _connect(path)
    try:
        return int(connection.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])
    finally:
        connection.close()


def first_missing_seq(path: Path) -> int | None:
    """The first seq missing below the last one (an error path only: it scans the table)."""
    connection = _connect(path)
    try:
        if connection.execute("SELECT 1 FROM events WHERE seq = 1").fetchone() is None:
            return 1
        found = connection.execute(
            "SELECT a.seq + 1 FROM events AS a WHERE a.seq < (SELECT max(seq) FROM events)"
            " AND NOT EXISTS (SELECT 1 FROM events AS b WHERE b.seq = a.seq + 1)"
            " ORDER BY a.seq LIMIT 1"
        ).fetchone()
    finally:
        connection.close()
    return None if found is None else int(found[0])


def discontinuity(span: TableSpan, folded: int, head: int) -> str | None:
    """What is wrong when replay folded `folded` rows ending at `head`, and the table holds
    `span`: seqs must run 1..last with no gap, every one of them folded."""
    if span.rows and (span.first != 1 or span.last != span.rows):
        return f"the table holds {span.rows} rows for seqs 1..{span.last}: some are missing"
    if span.rows != folded or span.last != head:
        return (
            f"replay read {folded} rows up to seq {head}, the table holds {span.rows}"
            f" up to seq {span.last}"
        )
    return None


def _inspect(path: Path) -> tuple[list[str], TableSpan | None]:
    problems = file_problems(path, full=False)
    if problems:
        return problems, None
    try:
        return [], table_span(path)
    except sqlite3.Error as exc:
        return [str(exc)], None


async def checked_replay(
    journal: JournalPort, *, history_window: int
) -> tuple[ChatState, ReplayReport]:
    """Replay the journal, and raise `DamagedJournal` (one line) unless the file passes
    `quick_check` and replay folded every row the table holds.

    The check runs in a thread beside the fold (SQLite releases the GIL while it reads), so
    it adds little to start-up: see docs/reliability.md.
    """
    path = sqlite_file(journal.url)
    if path is None:
        if isinstance(journal, Spanned):
            return await _continuous_replay(journal, journal, history_window=history_window)
        return await replay(journal, history_window=history_window)
    path = path.absolute()
    check = asyncio.ensure_future(asyncio.to_thread(_inspect, path))
    try:
        state, report = await replay(journal, history_window=history_window)
    except (CorruptJournal, sqlite3.Error, DBAPIError) as exc:
        problems, _ = await check
        what = problems[0] if problems else _why(exc)
        raise DamagedJournal.at(path, what) from exc
    except BaseException:
        # Cancelled (a signal during start-up) or a bug: let the check's thread finish first.
        await asyncio.wait([check])
        raise
    problems, span = await check
    if problems:
        raise DamagedJournal.at(path, "; ".join(problems[:2]))
    assert span is not None
    why = discontinuity(span, report.events, report.head)
    if why is not None:
        missing = await asyncio.to_thread(first_missing_seq, path)
        if missing is not None:
            why += f", the first missing is seq {missing}"
        raise DamagedJournal.at(path, why)
    return state, report


async def _continuous_replay(
    journal: JournalPort, spanned: Spanned, *, history_window: int
) -> tuple[ChatState, ReplayReport]:
    """Replay, then hold what it folded against the table's own count, min and max (the
    database checks its own pages): seqs 1..last, no gap, every one folded."""
    try:
        state, report = await replay(journal, history_window=history_window)
    except CorruptJournal as exc:
        raise DamagedJournal.of(journal.url, exc.message) from exc
    # Other nodes may append while this one replays: on a shared journal, the rows up to the
    # head replay reached.
    span = TableSpan(*await spanned.table_span(report.head if journal.shared else None))
    why = discontinuity(span, report.events, report.head)
    if why is not None:
        missing = await spanned.first_missing_seq()
        if missing is not None:
            why += f", the first missing is seq {missing}"
        raise DamagedJournal.of(journal.url, why)
    return state, report


def _why(exc: BaseException) -> str:
    if isinstance(exc, ChatError):
        return exc.message
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return str(exc.orig)
    return str(exc)
