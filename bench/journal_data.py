"""The benchmarks' journal: a consistent, realistic journal generated once and cached.

1000 users, 100 rooms, joins and leaves, mostly messages; rows built with the real codec and
written with plain `executemany` (fast) into a file migrated with the real migrations. Cached
under bench/data/ (gitignored), keyed by size, generator version and migration head.
"""

from __future__ import annotations

import os
import random
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chat_core.domain import codec
from chat_core.domain import events as e
from chat_core.journal.migrate import head_revision, upgrade
from chat_core.journal.tables import INSERT_SQL

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / "data"
GENERATOR_VERSION = 1
WORDS = [
    "hello",
    "there",
    "is",
    "the",
    "a",
    "chat",
    "of",
    "message",
    "lunch",
    "ok",
    "yes",
    "no",
    "maybe",
    "later",
    "meeting",
    "deploy",
    "build",
    "test",
    "review",
    "coffee",
    "today",
    "tomorrow",
    "thanks",
    "see",
    "you",
]
N_USERS, N_ROOMS = 1000, 100
FLUSH_ROWS = 50_000


def url_of(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def journal_file(n_events: int) -> Path:
    return DATA_DIR / f"journal-{n_events}-g{GENERATOR_VERSION}-{head_revision()}.sqlite3"


def ensure_journal(n_events: int) -> Path:
    """The cached journal of `n_events` events, generated first if missing."""
    path = journal_file(n_events)
    if not path.exists():
        started = time.perf_counter()
        print(f"  .. generating {path.name}", file=sys.stderr, flush=True)
        generate(path, n_events)
        print(
            f"  .. generated in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True
        )
    return path


def generate(path: Path, n_events: int, seed: int = 20261124) -> None:
    """Write the journal to `path`: beside it, then renamed, so a cache hit is complete."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    for suffix in ("", "-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    upgrade(url_of(tmp))
    con = sqlite3.connect(tmp, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-262144")
    _Generator(con, n_events, random.Random(seed)).run()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    os.replace(tmp, path)
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)


class _Generator:
    """The events of the journal, in the order (and with the draws) of the first generator."""

    def __init__(self, con: sqlite3.Connection, n_events: int, rng: random.Random) -> None:
        self.con, self.n_events, self.rng = con, n_events, rng
        self.users = [f"user{i:04d}" for i in range(N_USERS)]
        self.rooms = [f"room-{i:03d}" for i in range(N_ROOMS)]
        self.texts = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 30))) for _ in range(500)
        ]
        self.member_of: list[list[str]] = [[] for _ in range(N_USERS)]
        self.members: dict[str, set[int]] = {r: set() for r in self.rooms}
        self.micros = codec.to_micros(datetime(2026, 1, 1, tzinfo=UTC))
        self.seq = 0
        self.message_id = 0
        self.rows: list[tuple[Any, ...]] = []

    @property
    def full(self) -> bool:
        return self.seq >= self.n_events

    def run(self) -> None:
        self._add(
            e.AccountRegistered(username="admin", password_hash="$2b$12$" + "a" * 53, role="admin"),
            "system",
        )
        self._accounts_and_rooms()
        self._first_joins()
        while not self.full:
            self._step()
        if self.rows:
            self._flush()

    def _accounts_and_rooms(self) -> None:
        for name in self.users:
            if self.full:
                return
            self._add(
                e.AccountRegistered(username=name, password_hash="$2b$12$" + "h" * 53), "system"
            )
        for room in self.rooms:
            if self.full:
                return
            self._add(e.RoomCreated(room_id=room, room_name=room, created_by="admin"), "admin")

    def _first_joins(self) -> None:
        for u in range(N_USERS):
            for room in self.rng.sample(self.rooms, 5):
                if self.full:
                    break
                self._join(u, room)

    def _step(self) -> None:
        """One more event: a rare join or leave, else a message (half with a client id)."""
        rng, member_of = self.rng, self.member_of
        u = rng.randrange(N_USERS)
        x = rng.random()
        if x < 0.005 or not member_of[u]:
            self._join(u, rng.choice(self.rooms))
        elif x < 0.008 and len(member_of[u]) > 1:
            room = member_of[u].pop(rng.randrange(len(member_of[u])))
            self.members[room].discard(u)
            self._add(e.UserLeft(room_id=room, username=self.users[u]), self.users[u])
        else:
            room = rng.choice(member_of[u])
            self.message_id += 1
            cid = f"{rng.getrandbits(128):032x}" if rng.random() < 0.5 else None
            message = e.MessageSent(
                message_id=self.message_id,
                room_id=room,
                username=self.users[u],
                text=rng.choice(self.texts),
                client_msg_id=cid,
            )
            self._add(message, self.users[u], cid)

    def _join(self, u: int, room: str) -> None:
        if u in self.members[room]:
            return
        self.members[room].add(u)
        self.member_of[u].append(room)
        self._add(e.UserJoined(room_id=room, username=self.users[u]), self.users[u])

    def _add(self, event: e.Event, actor: str, command_id: str | None = None) -> None:
        self.seq += 1
        self.micros += self.rng.randint(100, 5000)
        row = (
            self.seq,
            e.stream_of(event),
            e.tag_of(event),
            1,
            codec.encode_event(event).decode(),
            actor,
            command_id,
            self.micros,
        )
        self.rows.append(row)
        if len(self.rows) >= FLUSH_ROWS:
            self._flush()

    def _flush(self) -> None:
        self.con.execute("BEGIN")
        self.con.executemany(INSERT_SQL, self.rows)
        self.con.execute("COMMIT")
        self.rows.clear()
