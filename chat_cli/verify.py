"""`chat-cli replay --verify`: is every byte of the journal sound, and every row usable?

Three checks, each reported: SQLite's full `integrity_check` of the file (every page, and every
index against its table), then every row read in seq order, decoded and folded, seqs running
1, 2, 3... without gap or repeat, then the table's own count and last seq held against what
the scan returned (a damaged page can end a scan early without an error). Any damage exits 1.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import msgspec
from sqlalchemy.exc import DBAPIError

from chat_core.domain.evolve import evolve
from chat_core.domain.state import initial_state
from chat_core.errors import ChatError
from chat_core.journal.check import file_problems, last_seq
from chat_core.journal.port import JournalPort
from chat_core.settings.paths import sqlite_file

Progress = Callable[[int], None]


class Verification(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of `--verify`: `bad_seq` and `reason` are set on the first bad row,
    `damage` lists what SQLite's integrity check found in the file."""

    ok: bool
    events: int  # rows verified (before the bad one, on failure)
    last_seq: int | None
    bad_seq: int | None = None
    reason: str | None = None
    damage: list[str] = []


async def verify(
    journal: JournalPort, until: int | None, progress: Progress | None
) -> Verification:
    """Check the file, then every row; the rows stop at the first bad one (after it, the
    projection would be built on a lie anyway)."""
    path = sqlite_file(journal.url)
    damage = [] if path is None else await asyncio.to_thread(file_problems, path, full=True)
    rows = await _rows(journal, until, progress)
    if rows.ok and path is not None:
        rows = await asyncio.to_thread(_whole, path, rows, until)
    if damage:
        return msgspec.structs.replace(rows, ok=False, damage=[*damage, *rows.damage])
    return rows


async def _rows(journal: JournalPort, until: int | None, progress: Progress | None) -> Verification:
    state = initial_state(1)
    expected = 1
    count = 0
    try:
        # Small pages: a scan that fails says closely how far the file is readable.
        async for rows in journal.read_rows(0, until, page_size=1000):
            for row in rows:
                seq = row.seq
                if seq != expected:
                    why = (
                        f"duplicate or out-of-order seq (expected {expected})"
                        if seq < expected
                        else f"gap: seqs {expected}..{seq - 1} are missing"
                    )
                    return _failed(count, seq, why, last=expected - 1)
                try:
                    recorded = row.decode()
                except ChatError as exc:
                    return _failed(count, seq, exc.message)
                except Exception as exc:  # noqa: BLE001 (a malformed column: reported, not raised)
                    return _failed(count, seq, f"row cannot be decoded: {exc}")
                try:
                    state = evolve(state, recorded)
                except Exception as exc:  # noqa: BLE001 (evolve is total: this is a bug, reported)
                    return _failed(count, seq, f"fold failed: {type(exc).__name__}: {exc}")
                expected += 1
                count += 1
            if progress is not None:
                progress(count)
    except (sqlite3.Error, DBAPIError) as exc:
        # The file itself fails under the scan: what was read before it is what is readable.
        cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        return _failed(count, expected, f"the file cannot be read here: {cause}")
    return Verification(ok=True, events=count, last_seq=state.seq or None)


def _whole(path: Path, rows: Verification, until: int | None) -> Verification:
    """`rows` unless the table holds rows the scan never returned."""
    try:
        table_last = last_seq(path)
    except sqlite3.Error as exc:
        problem = f"the last seq cannot be read: {exc}"
        return msgspec.structs.replace(rows, ok=False, damage=[problem])
    last = rows.last_seq or 0
    held = table_last if until is None else min(table_last, until)
    if held > last:
        return msgspec.structs.replace(
            rows,
            ok=False,
            bad_seq=last + 1,
            reason=f"the scan ended at seq {last}, but the table holds rows up to seq {held}",
        )
    return rows


def _failed(count: int, seq: int, reason: str, *, last: int | None = None) -> Verification:
    last_seq = (seq - 1 if last is None else last) or None
    return Verification(ok=False, events=count, last_seq=last_seq, bad_seq=seq, reason=reason)


def verification_text(result: Verification) -> list[str]:
    """The human-readable outcome: the file's damage first, then the rows."""
    lines = [f"damaged: {problem}" for problem in result.damage]
    if result.reason is not None:
        lines.append(
            f"failed: seq {result.bad_seq}: {result.reason}"
            f" ({result.events} events verified before it)"
        )
    elif result.damage:
        lines.append(
            f"failed: the file is damaged; {result.events} events read, decoded and folded"
            " (restore a backup: the file's other contents cannot be trusted)"
        )
    else:
        lines.append(f"ok: {result.events} events verified")
    return lines
