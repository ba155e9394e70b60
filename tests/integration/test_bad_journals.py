"""A file that is not a journal we can use stops start-up with one line and is not touched."""

from __future__ import annotations

import gc
import hashlib
import random
import sqlite3
import warnings
from pathlib import Path

import pytest

from chat_core.domain import events as e
from chat_core.errors import CorruptJournal, UnsupportedJournal
from chat_core.journal.replay import replay
from chat_core.journal.sqlite import Journal
from chat_kit import T0


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _wal_is_empty(path: Path) -> bool:
    wal = Path(f"{path}-wal")
    return not wal.exists() or wal.stat().st_size == 0


def _url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def _refused(path: Path, error: type[Exception] = UnsupportedJournal) -> str:
    """Open the file every way the server may; each is refused, and the file is unchanged."""
    before = _digest(path)
    messages = []
    for options in ({"migrate": True}, {}, {"readonly": True}):
        with pytest.raises(error) as info:
            await Journal.open(_url(path), **options)
        messages.append(str(info.value))
    assert _digest(path) == before
    assert _wal_is_empty(path)
    for message in messages:
        assert message and "\n" not in message
    return messages[0]


async def test_a_file_of_random_bytes_is_refused(tmp_path):
    path = tmp_path / "chat.db"
    path.write_bytes(random.Random(7).randbytes(8192))
    assert "not a readable SQLite database" in await _refused(path)


async def test_a_foreign_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "chat.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers (name) VALUES ('ada')")
    conn.close()
    assert "customers" in await _refused(path)


async def _migrated(path: Path) -> None:
    journal = await Journal.open(_url(path), migrate=True)
    await journal.close()


async def test_a_journal_from_a_newer_release_is_refused(tmp_path):
    path = tmp_path / "chat.db"
    await _migrated(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    conn.close()
    assert "9999_from_the_future" in await _refused(path)


async def test_a_corrupt_row_stops_replay_at_its_seq_and_writes_nothing(tmp_path):
    path = tmp_path / "chat.db"
    journal = await Journal.open(_url(path), migrate=True)
    good = e.Recorded(
        seq=1, at=T0, actor="bob", event=e.UserJoined(room_id="general", username="bob")
    )
    await journal.append(0, [good])
    await journal.close()
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO events (seq, stream, tag, version, payload, actor, command_id,"
            " recorded_at) VALUES (2, 'general', 'user_joined', 1, '{not json', 'bob', NULL, 0)"
        )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = _digest(path)
    journal = await Journal.open(_url(path))
    try:
        with pytest.raises(CorruptJournal) as info:
            await replay(journal)
    finally:
        await journal.close()
    assert info.value.seq == 2
    assert "seq=2" in str(info.value) and "\n" not in str(info.value)
    assert _digest(path) == before


@pytest.mark.parametrize(
    ("tag", "version", "payload"),
    [
        ("user_joined", 1, '{"type": "user_left", "room_id": "r", "username": "bob"}'),
        ("user_joined", 1, '{"type": "user_joined", "room_id": 5, "username": "bob"}'),
        ("no_such_event", 1, '{"type": "user_joined", "room_id": "r", "username": "bob"}'),
        ("user_joined", 7, '{"type": "user_joined", "room_id": "r", "username": "bob"}'),
        ("user_joined", 0, '{"type": "user_joined", "room_id": "r", "username": "bob"}'),
        ("user_joined", 0, "[1, 2]"),
    ],
)
async def test_rows_that_do_not_decode_raise_corrupt_journal_with_their_seq(
    tmp_path, tag, version, payload
):
    path = tmp_path / "chat.db"
    await _migrated(path)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO events (seq, stream, tag, version, payload, actor, command_id,"
            " recorded_at) VALUES (1, 'r', ?, ?, ?, 'bob', NULL, 0)",
            (tag, version, payload),
        )
    conn.close()
    journal = await Journal.open(_url(path))
    try:
        with pytest.raises(CorruptJournal) as info:
            await replay(journal)
    finally:
        await journal.close()
    assert info.value.seq == 1


async def test_an_empty_file_is_migrated_into_a_journal(tmp_path):
    path = tmp_path / "chat.db"
    path.touch()
    journal = await Journal.open(_url(path), migrate=True)
    try:
        assert await journal.head() == 0
    finally:
        await journal.close()


async def test_an_unmigrated_journal_is_refused_without_migrate_and_leaks_no_connection(
    tmp_path,
):
    path = tmp_path / "chat.db"
    path.touch()
    with pytest.raises(UnsupportedJournal, match="not a chat journal"):
        await Journal.open(_url(path))
    # A refused open must close what it opened: a leaked aiosqlite connection warns when
    # collected (and warnings are errors), and the lock must be free again.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    journal = await Journal.open(_url(path), migrate=True)
    await journal.close()
