"""`chat-web migrate-journal`: a server's SQLite journal moved up to PostgreSQL, served there
with its history, members and accounts intact, and back down to SQLite row for row."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import PASSWORD, unique
from server_kit import ServerProcess

WEB = [sys.executable, "-m", "chat_web"]
SECRET = {"CHAT__AUTH__JWT_SECRET": "migrate-journal-test-secret-0123456789abcdef"}


@pytest.fixture
def empty_postgres() -> Iterator[str]:
    """A new database, not even migrated: the command migrates it."""
    from pg_kit import fresh_database

    yield from fresh_database()


async def migrate(source: str, dest: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [*WEB, "migrate-journal", "--from", source, "--to", dest]
    return await asyncio.to_thread(
        subprocess.run, command, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def rows(path: Path) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return connection.execute("SELECT * FROM events ORDER BY seq").fetchall()
    finally:
        connection.close()


async def seen_by(client: Any, room: str) -> dict[str, Any]:
    history = await client.call("get_history", room_id=room, limit=100)
    members = await client.call("list_members", room_id=room)
    return {
        "history": history,
        "members": sorted((m["username"], m["role"]) for m in members["members"]),
        "whoami": await client.call("whoami"),
    }


async def test_a_journal_moves_to_postgresql_is_served_there_and_moves_back(
    start_server: Callable[..., ServerProcess], empty_postgres: str, tmp_path: Path
) -> None:
    server = start_server(SECRET)
    async with server.harness() as chat:
        alice, a = await chat.user_client("mig")
        bob, b = await chat.user_client("mig")
        room = unique("Moving").lower()
        for client in (a, b):
            await client.call("join_room", room_name=room)
        await a.call("send_message", room_id=room, text="before the move", client_msg_id="m-1")
        for i in range(30):
            await b.call("send_message", room_id=room, text=f"b{i}")
        before = await seen_by(a, room)
        head = await chat.journal_seq()
    assert server.stop() == 0
    source = server.data_dir / "chat.db"

    done = await migrate(str(source), empty_postgres, tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"copied {head} events up to seq {head}" in done.stdout, done.stdout
    assert "events/s" in done.stdout and "verified" in done.stdout

    # A second copy into the same (now full) journal is refused, with one line.
    again = await migrate(str(source), empty_postgres, tmp_path)
    assert again.returncode == 1
    assert again.stdout == ""
    assert again.stderr.count("\n") == 1 and "already holds events" in again.stderr

    moved = start_server({**SECRET, "CHAT__DATABASE__URL": empty_postgres})
    assert "journal=postgresql+asyncpg://" in moved.log_text()
    async with moved.harness() as chat:
        assert await chat.journal_seq() == head
        a = await chat.connect(alice.token)  # the same secret: old tokens stay valid
        assert await seen_by(a, room) == before
        # The accounts came along: their passwords log in, and retries stay idempotent.
        assert await chat.login(bob.username, PASSWORD)
        retry = await a.call(
            "send_message", room_id=room, text="before the move", client_msg_id="m-1"
        )
        assert retry["duplicate"] is True and retry["seq"] <= head
        new = await a.call("send_message", room_id=room, text="after the move")
        assert new["seq"] == head + 1
    assert moved.stop() == 0

    back = tmp_path / "back" / "chat.db"
    done = await migrate(empty_postgres, str(back), tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"copied {head + 1} events" in done.stdout, done.stdout
    copied = rows(back)
    assert copied[:head] == rows(source)
    assert copied[head][1:3] == (room, "message_sent")
