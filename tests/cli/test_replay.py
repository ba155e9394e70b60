"""`chat-cli replay`: offline state from a journal written by the real command processor."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pexpect
import pytest

from chat_cli.replay import PROGRESS_THRESHOLD
from chat_core.domain import commands as c
from chat_core.domain import events as e
from chat_core.domain.state import ChatState, active_ban, initial_state, member_names
from chat_core.journal.sqlite import Journal
from chat_core.processor import CommandProcessor
from chat_kit import CLIPBOARD, CLIPBOARD_SHOWN, FORGED, FORGED_SHOWN, plant_old_messages

CLI = [sys.executable, "-m", "chat_cli"]
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path.as_posix()}"


class Scenario:
    """Submits commands at a steadily advancing fake time, as one actor or another."""

    def __init__(self, processor: CommandProcessor) -> None:
        self.processor = processor
        self.clock = T0

    async def run(self, command_type: type[c.Command], actor: str, **fields: object) -> None:
        self.clock += timedelta(seconds=1)
        command = command_type(actor=actor, at=self.clock, **fields)  # type: ignore[arg-type]
        await self.processor.submit(command)


async def build_journal(path: Path) -> tuple[ChatState, list[int]]:
    """A journal with accounts, rooms, messages, a kick and bans; the processor's final state,
    and the seq after each step (for --until checks)."""
    journal = await Journal.open(sqlite_url(path), migrate=True)
    processor = CommandProcessor(journal, initial_state())
    processor.start()
    s = Scenario(processor)
    marks: list[int] = []
    try:
        for name, role in (("admin", "admin"), ("mod", "moderator")):
            await s.run(c.EnsureAccount, "system", username=name, role=role, password_hash="x")
        for name in ("alice", "Bob", "carol", "dave"):
            await s.run(c.RegisterAccount, name, username=name, password_hash="x")
        await s.run(c.CreateRoom, "system", room_name="general")
        for name in ("alice", "Bob", "carol", "dave", "mod"):
            await s.run(c.JoinRoom, name, room_name="general")
        await s.run(c.JoinRoom, "alice", room_name="Random")
        await s.run(c.JoinRoom, "Bob", room_name="random")
        marks.append(processor.state.seq)
        await s.run(c.SendMessage, "alice", room_id="general", text="hello all", client_msg_id="a1")
        await s.run(c.SendMessage, "Bob", room_id="general", text="hi alice")
        await s.run(c.SendMessage, "carol", room_id="general", text="spam spam")
        await s.run(c.SendMessage, "alice", room_id="random", text="random thought")
        marks.append(processor.state.seq)
        await s.run(c.KickUser, "mod", target="carol", reason="be nice", room_id="general")
        await s.run(c.BanUser, "mod", target="dave", reason="flooding", duration_seconds=10**8)
        await s.run(c.BanUser, "admin", target="carol", reason="for ever")
        await s.run(c.SetRole, "admin", target="Bob", role="moderator")
        await s.run(c.LeaveRoom, "alice", room_id="random")
        await s.run(c.SendMessage, "Bob", room_id="general", text="bye")
        await s.run(c.BroadcastAnnouncement, "admin", message="maintenance", level="warning")
        marks.append(processor.state.seq)
        return processor.state, marks
    finally:
        await processor.stop()
        await journal.close()


def chat_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )


def replay_json(data_dir: Path, *args: str) -> dict[str, Any]:
    done = chat_cli("replay", "--data-dir", str(data_dir), "--format", "json", *args)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, ChatState, list[int]]]:

    data_dir = tmp_path_factory.mktemp("journal")
    state, marks = asyncio.run(build_journal(data_dir / "chat.db"))
    yield data_dir, state, marks


@pytest.fixture
def copy(built: tuple[Path, ChatState, list[int]], tmp_path: Path) -> Path:
    """A private copy of the built journal's data directory, free to damage."""
    shutil.copy(built[0] / "chat.db", tmp_path / "chat.db")
    return tmp_path


def expected_summary(state: ChatState) -> dict[str, Any]:
    """What the processor itself holds, in the shape of the replay JSON."""
    now = datetime.now(UTC)
    return {
        "rooms": {
            room.room_id: (room.room_name, member_names(room), room.message_count)
            for room in state.rooms.values()
        },
        "roles": {account.username: account.role for account in state.accounts.values()},
        "bans": sorted(
            account.username
            for account in state.accounts.values()
            if active_ban(state, account.username, now) is not None
        ),
    }


def actual_summary(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "rooms": {
            room["room_id"]: (room["room_name"], room["members"], room["message_count"])
            for room in doc["rooms"]
        },
        "roles": {user["username"]: user["role"] for user in doc["users"]},
        "bans": sorted(ban["username"] for ban in doc["bans"]),
    }


def test_json_summary_equals_the_processors_state(
    built: tuple[Path, ChatState, list[int]],
) -> None:
    data_dir, state, _ = built
    doc = replay_json(data_dir)
    assert actual_summary(doc) == expected_summary(state)
    assert doc["last_seq"] == state.seq
    assert doc["first_seq"] == 1
    assert doc["events"] == state.seq
    assert sum(doc["event_counts"].values()) == state.seq
    assert doc["event_counts"]["message_sent"] == 5
    assert doc["event_counts"]["user_banned"] == 2
    bans = {ban["username"]: ban for ban in doc["bans"]}
    assert bans["carol"]["until"] is None
    assert bans["dave"]["until"] is not None
    assert bans["dave"]["reason"] == "flooding"
    assert "password_hash" not in json.dumps(doc)


def test_text_summary_names_rooms_users_and_bans(
    built: tuple[Path, ChatState, list[int]],
) -> None:
    done = chat_cli("replay", "--data-dir", str(built[0]))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "events: 28 (seq 1..28" in out
    assert "general: 3 members, 4 messages" in out
    assert "members: alice, Bob, mod" in out
    assert "carol for ever, by admin" in out
    assert "Bob    moderator" in out


def test_until_gives_the_state_as_of_that_seq(built: tuple[Path, ChatState, list[int]]) -> None:
    data_dir, _, marks = built
    before_messages, before_moderation, _ = marks
    doc = replay_json(data_dir, "--until", str(before_messages))
    assert doc["last_seq"] == before_messages
    assert "message_sent" not in doc["event_counts"]
    assert all(room["message_count"] == 0 for room in doc["rooms"])
    general = next(room for room in doc["rooms"] if room["room_id"] == "general")
    assert general["members"] == ["alice", "Bob", "carol", "dave", "mod"]

    doc = replay_json(data_dir, "--until", str(before_moderation))
    assert doc["bans"] == []
    roles = {user["username"]: user["role"] for user in doc["users"]}
    assert roles["Bob"] == "user"
    general = next(room for room in doc["rooms"] if room["room_id"] == "general")
    assert general["message_count"] == 3


def test_room_timeline_lists_the_rooms_events_in_order(
    built: tuple[Path, ChatState, list[int]],
) -> None:
    data_dir = built[0]
    doc = replay_json(data_dir, "--room", "GENERAL")
    assert doc["room_id"] == "general"
    seqs = [entry["seq"] for entry in doc["events"]]
    assert seqs == sorted(seqs)
    kinds = [entry["event"]["type"] for entry in doc["events"]]
    assert kinds[0] == "room_created"
    assert kinds.count("user_joined") == 5
    assert kinds.count("message_sent") == 4
    assert "user_kicked" in kinds
    assert "user_banned" in kinds  # dave's chat-wide ban removed him from the room
    texts = [entry["event"]["text"] for entry in doc["events"] if "text" in entry["event"]]
    assert texts == ["hello all", "hi alice", "spam spam", "bye"]

    done = chat_cli("replay", "--data-dir", str(data_dir), "--room", "general")
    assert done.returncode == 0, done.stderr
    assert "<alice> hello all" in done.stdout
    assert "carol kicked from the room by mod: be nice" in done.stdout
    assert "carol left (kicked)" in done.stdout


def test_room_timeline_honours_until(built: tuple[Path, ChatState, list[int]]) -> None:
    data_dir, _, marks = built
    doc = replay_json(data_dir, "--room", "general", "--until", str(marks[0]))
    assert all(entry["seq"] <= marks[0] for entry in doc["events"])
    assert not any(entry["event"]["type"] == "message_sent" for entry in doc["events"])


def test_unknown_room_is_a_one_line_error(built: tuple[Path, ChatState, list[int]]) -> None:
    done = chat_cli("replay", "--data-dir", str(built[0]), "--room", "nowhere")
    assert done.returncode == 1
    assert done.stderr.strip() == "error: no room 'nowhere' in the journal"


def test_verify_passes_on_a_sound_journal(built: tuple[Path, ChatState, list[int]]) -> None:
    done = chat_cli("replay", "--data-dir", str(built[0]), "--verify")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"ok: {built[1].seq} events verified"


def corrupt(path: Path, seq: int, payload: str) -> None:
    """Overwrite one row's payload: the journal's triggers forbid it, so drop them in this copy."""
    with sqlite3.connect(path) as db:
        db.execute("DROP TRIGGER events_no_update")
        db.execute("UPDATE events SET payload = ? WHERE seq = ?", (payload, seq))
    db.close()


def test_verify_names_the_first_undecodable_row(copy: Path) -> None:
    corrupt(copy / "chat.db", 17, '{"type": "message_sent", "text": 42}')
    done = chat_cli("replay", "--data-dir", str(copy), "--verify")
    assert done.returncode == 1
    assert done.stdout.startswith("failed: seq 17: ")
    assert "16 events verified before it" in done.stdout

    done = chat_cli("replay", "--data-dir", str(copy), "--verify", "--format", "json")
    assert done.returncode == 1
    doc = json.loads(done.stdout)
    assert doc["ok"] is False
    assert doc["bad_seq"] == 17
    assert doc["reason"]


def test_verify_reports_a_gap_in_seqs(copy: Path) -> None:
    with sqlite3.connect(copy / "chat.db") as db:
        db.execute("DROP TRIGGER events_no_delete")
        db.execute("DELETE FROM events WHERE seq = 5")
    db.close()
    done = chat_cli("replay", "--data-dir", str(copy), "--verify")
    assert done.returncode == 1
    assert done.stdout.startswith("failed: seq 6: gap")


def test_summary_of_a_corrupt_journal_is_a_one_line_error(copy: Path) -> None:
    corrupt(copy / "chat.db", 3, "not json")
    done = chat_cli("replay", "--data-dir", str(copy))
    assert done.returncode == 1
    assert "seq=3" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_replay_never_writes_the_journal(copy: Path) -> None:
    journal = copy / "chat.db"
    before = digest(journal)
    for args in ([], ["--format", "json"], ["--verify"], ["--room", "general"], ["--until", "3"]):
        done = chat_cli("replay", "--data-dir", str(copy), *args)
        assert done.returncode == 0, done.stderr
    assert digest(journal) == before
    # SQLite may leave its (empty) write-ahead log beside the file: nothing is ever in it.
    wal = copy / "chat.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0


def test_missing_journal_is_a_one_line_error(tmp_path: Path) -> None:
    done = chat_cli("replay", "--data-dir", str(tmp_path / "nowhere"))
    assert done.returncode == 1
    assert done.stderr.startswith("error: no journal at ")
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "nowhere").exists()


def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    text_file = tmp_path / "notes.db"
    text_file.write_text("hello\n")
    done = chat_cli("replay", "--database", str(text_file))
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and "not a readable SQLite database" in done.stderr

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE things (x)")
    db.close()
    before = digest(other)
    done = chat_cli("replay", "--database", f"sqlite+aiosqlite:///{other}")
    assert done.returncode == 1
    assert "not a chat journal" in done.stderr
    assert digest(other) == before


def test_config_file_names_the_journal(
    built: tuple[Path, ChatState, list[int]], tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[chat]\ndata_dir = "{built[0].as_posix()}"\n')
    done = chat_cli("replay", "--config", str(config), "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["last_seq"] == built[1].seq


def test_conflicting_sources_are_a_usage_error(tmp_path: Path) -> None:
    done = chat_cli("replay", "--data-dir", str(tmp_path), "--database", "x.db")
    assert done.returncode == 2
    assert "at most one of" in done.stderr


def test_a_long_replay_shows_a_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    """Above PROGRESS_THRESHOLD events, a terminal gets a transient bar on stderr; a pipe never."""

    from chat_core.domain import events as e

    path = tmp_path / "long.db"
    n = PROGRESS_THRESHOLD + 1_000

    async def write() -> None:
        journal = await Journal.open(sqlite_url(path), migrate=True)
        try:
            first: list[e.Event] = [
                e.AccountRegistered(username="alice", password_hash="x"),
                e.RoomCreated(room_id="general", room_name="general", created_by="alice"),
                e.UserJoined(room_id="general", username="alice"),
            ]
            events = first + [
                e.MessageSent(message_id=i, room_id="general", username="alice", text=f"m{i}")
                for i in range(1, n - len(first) + 1)
            ]
            records = [
                e.Recorded(seq=seq, at=T0, actor="alice", event=event)
                for seq, event in enumerate(events, start=1)
            ]
            for start in range(0, len(records), 4_000):
                await journal.append(start, records[start : start + 4_000])
        finally:
            await journal.close()

    asyncio.run(write())
    args = ["-m", "chat_cli", "replay", "--database", sqlite_url(path)]
    child = pexpect.spawn(
        sys.executable,
        args,
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 120),
        env={**os.environ, "TERM": "xterm-256color"},
    )
    child.expect("replaying")  # the bar, drawn as soon as the replay starts
    child.expect("general")  # then the summary
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    piped = chat_cli("replay", "--database", sqlite_url(path))
    assert piped.returncode == 0, piped.stderr
    assert "replaying" not in piped.stdout + piped.stderr
    assert "general" in piped.stdout


def test_control_characters_of_old_messages_are_printed_escaped(tmp_path: Path) -> None:
    """A journal from before the text rule: replay neither fails on mallory's ESC sequences
    nor writes them raw; JSON keeps the exact text (escaped as JSON does)."""
    data_dir = tmp_path / "old"
    data_dir.mkdir()
    plant_old_messages(data_dir / "chat.db", "lobby", FORGED, CLIPBOARD, "x\x7f\x9b\ty")
    done = chat_cli("replay", "--data-dir", str(data_dir), "--room", "lobby", "--format", "text")
    assert done.returncode == 0, done.stderr
    assert f"<mallory> {FORGED_SHOWN}" in done.stdout, done.stdout
    assert f"<mallory> {CLIPBOARD_SHOWN}" in done.stdout, done.stdout
    assert "<mallory> x\\x7f\\x9b    y" in done.stdout, done.stdout
    assert not any(
        (0 <= ord(ch) < 0x20 and ch != "\n") or 0x7F <= ord(ch) <= 0x9F for ch in done.stdout
    ), done.stdout
    doc = replay_json(data_dir, "--room", "lobby")
    texts = [entry["event"]["text"] for entry in doc["events"] if "text" in entry["event"]]
    assert texts == [FORGED, CLIPBOARD, "x\x7f\x9b\ty"]
    raw = chat_cli("replay", "--data-dir", str(data_dir), "--room", "lobby", "--format", "json")
    assert not any(0x7F <= ord(ch) <= 0x9F for ch in raw.stdout), raw.stdout
    assert chat_cli("replay", "--data-dir", str(data_dir), "--verify").returncode == 0


def test_replay_reads_a_postgresql_journal_as_the_sqlite_one(
    built: tuple[Path, ChatState, list[int]], postgres_url: str
) -> None:
    from chat_core.journal.transfer import transfer

    data_dir, state, _ = built
    asyncio.run(transfer(sqlite_url(data_dir / "chat.db"), postgres_url))
    done = chat_cli("replay", "--database", postgres_url, "--format", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert actual_summary(doc) == expected_summary(state)
    sqlite_doc = replay_json(data_dir)
    for key in ("events", "first_seq", "last_seq", "event_counts", "rooms", "users"):
        assert doc[key] == sqlite_doc[key], key
    assert doc["journal"].startswith("postgresql+asyncpg://")
