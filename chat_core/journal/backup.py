"""A consistent copy of a live SQLite journal, verified before it is kept (`chat-web backup`).

SQLite's online backup copies the pages in one step, inside one read transaction: a snapshot
of one commit, taken while the server goes on writing (in WAL mode readers never block the
writer, and the writer never blocks them). A copy made in several steps would restart each
time the server commits and might never finish under load. The copy is written beside the
destination, switched to a rollback journal (one self-contained file; the server turns WAL
back on when it opens it), checked as start-up checks a journal (SQLite's full
`integrity_check`, then a fold of every event with no seq missing) and only then renamed to
the destination, so a destination that exists is always a whole, verified journal.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import msgspec

from chat_core.errors import ChatError, StorageError
from chat_core.journal.check import checked_replay, file_problems
from chat_core.journal.sqlite import Journal

# How long the copy waits for a lock the server holds (a checkpoint) before giving up.
BUSY_TIMEOUT_SECONDS = 30.0


class BackupReport(msgspec.Struct, frozen=True, kw_only=True):
    events: int
    head: int
    bytes: int


async def backup(source: Path, dest: Path) -> BackupReport:
    """Copy the journal at `source` to the new file `dest` (absolute) and verify the copy."""
    partial = dest.with_name(f".{dest.name}.partial")
    try:
        await asyncio.to_thread(_copy, source, dest, partial)
        report = await verify(partial)
        await asyncio.to_thread(_publish, partial, dest)
    finally:
        await asyncio.to_thread(partial.unlink, missing_ok=True)
    return report


def _copy(source: Path, dest: Path, partial: Path) -> None:
    if not source.is_file():
        raise StorageError(f"journal {source} does not exist")
    if dest.exists():
        raise StorageError(f"{dest} exists: a backup never overwrites a file")
    partial.unlink(missing_ok=True)
    try:
        src = sqlite3.connect(source, timeout=BUSY_TIMEOUT_SECONDS)
        try:
            fd = os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            os.close(fd)
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst)  # pages=-1: the whole file in one step, one snapshot
                dst.execute("PRAGMA journal_mode=DELETE")
                dst.commit()
            finally:
                dst.close()
        finally:
            src.close()
    except (OSError, sqlite3.Error) as e:
        raise StorageError(f"cannot copy the journal {source} to {partial}: {e}") from e


async def verify(path: Path) -> BackupReport:
    """Check the journal at `path` (absolute) read-only, as `chat-cli replay --verify` does."""
    problems = await asyncio.to_thread(file_problems, path, full=True)
    if problems:
        raise StorageError(f"the copy {path} is damaged: {'; '.join(problems[:2])}")
    url = f"sqlite+aiosqlite:///{path.as_posix()}"
    journal = await Journal.open(url, readonly=True)
    try:
        _, report = await checked_replay(journal, history_window=0)
    except ChatError as e:
        raise StorageError(f"the copy does not verify: {e.message}") from e
    finally:
        await journal.close()
    size = (await asyncio.to_thread(path.stat)).st_size
    return BackupReport(events=report.events, head=report.head, bytes=size)


def _publish(partial: Path, dest: Path) -> None:
    """fsync the copy and rename it into place (the name appears only for a whole file)."""
    with partial.open("rb") as fh:
        os.fsync(fh.fileno())
    try:
        os.link(partial, dest)  # unlike rename, never replaces a file made meanwhile
    except FileExistsError as e:
        raise StorageError(f"{dest} exists: a backup never overwrites a file") from e
    directory = os.open(dest.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
