"""Real journals, and real damage done to copies of them: whole pages overwritten, the file
cut short, rows removed or rewritten, garbage after the last frame of the write-ahead log."""

from __future__ import annotations

import random
import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path

from chat_core.domain import events as e
from chat_core.journal.sqlite import Journal
from chat_kit import T0

DAMAGE_BYTES = 400


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path.as_posix()}"


async def build_journal(path: Path, messages: int = 4000) -> int:
    """A journal written through the real `Journal` API: accounts, a room, joins, then
    `messages` messages (enough that the events table has interior and leaf pages); its head.
    The write-ahead log is checkpointed into the file, so damage to the file is damage."""
    journal = await Journal.open(sqlite_url(path), migrate=True)
    users = [f"user{i:02d}" for i in range(20)]
    seq = 0
    at = T0

    def recorded(event: e.Event, actor: str) -> e.Recorded:
        nonlocal seq, at
        seq += 1
        at += timedelta(milliseconds=250)
        return e.Recorded(seq=seq, at=at, actor=actor, event=event)

    try:
        setup = [
            recorded(e.AccountRegistered(username=u, password_hash="$2b$04$" + "h" * 53), u)
            for u in users
        ]
        setup.append(
            recorded(
                e.RoomCreated(room_id="general", room_name="general", created_by="system"), "system"
            )
        )
        setup += [recorded(e.UserJoined(room_id="general", username=u), u) for u in users]
        await journal.append(0, setup)
        for start in range(0, messages, 500):
            head = seq
            batch = [
                recorded(
                    e.MessageSent(
                        message_id=i + 1,
                        room_id="general",
                        username=users[i % len(users)],
                        text=f"message {i} " + "lorem ipsum " * (i % 7),
                    ),
                    users[i % len(users)],
                )
                for i in range(start, min(start + 500, messages))
            ]
            await journal.append(head, batch)
    finally:
        await journal.close()
    checkpoint(path)
    return seq


def checkpoint(path: Path) -> None:
    """Move everything from the write-ahead log into the file, and empty the log."""
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


def copy_journal(source: Path, data_dir: Path) -> Path:
    """A copy of a checkpointed journal as `data_dir/chat.db`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / "chat.db"
    shutil.copyfile(source, target)
    return target


def page_size(path: Path) -> int:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(connection.execute("PRAGMA page_size").fetchone()[0])
    finally:
        connection.close()


def events_pages(path: Path, page_type: str) -> list[int]:
    """The page numbers of the events table's b-tree of one type ('internal' or 'leaf')."""
    return pages_of(path, "events", page_type)


def pages_of(path: Path, name: str, page_type: str) -> list[int]:
    """The page numbers of a table's or index's b-tree of one type, from SQLite's dbstat."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = ? ORDER BY pageno",
            (name, page_type),
        ).fetchall()
    finally:
        connection.close()
    return [int(row[0]) for row in rows]


def overwrite(path: Path, page: int, offset: int = 100, size: int = DAMAGE_BYTES) -> None:
    """Overwrite `size` bytes of page `page` (1-based), `offset` bytes into it, with noise."""
    where = (page - 1) * page_size(path) + offset
    noise = random.Random(page).randbytes(size)
    with path.open("r+b") as out:
        out.seek(where)
        out.write(noise)


async def crashed_copy(source: Path, data_dir: Path, messages: int = 50) -> tuple[Path, int]:
    """A copy of `source` as a crash would leave it: `messages` more messages committed in the
    write-ahead log, not yet checkpointed, the files copied while the writer still holds them.
    The copy, and its head."""
    work = data_dir.with_name(data_dir.name + "-writer")
    live = copy_journal(source, work)
    journal = await Journal.open(sqlite_url(live))
    try:
        head = await journal.head()
        at = T0 + timedelta(days=1)
        batch = [
            e.Recorded(
                seq=head + i + 1,
                at=at + timedelta(seconds=i),
                actor="user00",
                event=e.MessageSent(
                    message_id=10_000_000 + i, room_id="general", username="user00", text=f"w{i}"
                ),
            )
            for i in range(messages)
        ]
        await journal.append(head, batch)
        target = copy_journal(live, data_dir)
        shutil.copyfile(f"{live}-wal", f"{target}-wal")
    finally:
        await journal.close()
    return target, head + messages


def drop_row(path: Path, seq: int) -> None:
    """Remove one row (the journal's trigger forbids it: dropped in this copy)."""
    _rewrite(path, "DROP TRIGGER events_no_delete", "DELETE FROM events WHERE seq = ?", (seq,))


def rewrite_payload(path: Path, seq: int, payload: str) -> None:
    """Replace one row's payload (the journal's trigger forbids it: dropped in this copy)."""
    _rewrite(
        path,
        "DROP TRIGGER events_no_update",
        "UPDATE events SET payload = ? WHERE seq = ?",
        (payload, seq),
    )


def _rewrite(path: Path, drop: str, sql: str, params: tuple[object, ...]) -> None:
    connection = sqlite3.connect(path)
    try:
        with connection:
            connection.execute(drop)
            connection.execute(sql, params)
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


def tear_wal(path: Path, size: int = 3000) -> None:
    """Append `size` bytes of noise after the last frame of the journal's write-ahead log, as
    a write torn by a crash leaves it."""
    wal = Path(f"{path}-wal")
    assert wal.stat().st_size > 0, "nothing in the write-ahead log"
    with wal.open("ab") as out:
        out.write(random.Random(size).randbytes(size))
