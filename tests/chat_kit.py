"""Helpers for the core's tests: a fixed clock, given-states built from events, commands.

Importable from every test directory (pytest puts `tests/` on sys.path for its conftest).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import strategies as st

from chat_core.domain import commands as c
from chat_core.domain import events as e
from chat_core.domain.decider import decide
from chat_core.domain.evolve import evolve
from chat_core.domain.rules import Limits
from chat_core.domain.state import ChatState, initial_state
from chat_core.errors import ChatError
from chat_core.journal.memory import MemoryJournal
from chat_core.journal.port import JournalPort, StoredRow

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LIMITS = Limits(max_message_length=20, max_room_name_length=12, max_users_per_room=4)

HASH = "$2b$12$fakehashfakehashfakehashfakehashfakehashfakehashfake"


def at(seconds: float = 0) -> datetime:
    return T0 + timedelta(seconds=seconds)


def given(*events: e.Event, history_window: int = 50, state: ChatState | None = None) -> ChatState:
    """The state after `events`, recorded one after the other at T0 by `system`."""
    state = state if state is not None else initial_state(history_window)
    for event in events:
        state = evolve(state, e.Recorded(seq=state.seq + 1, at=T0, actor="system", event=event))
    return state


def account(username: str, role: str = "user") -> e.AccountRegistered:
    return e.AccountRegistered(username=username, password_hash=HASH, role=role)  # type: ignore[arg-type]


def room(room_name: str, created_by: str = "admin") -> e.RoomCreated:
    return e.RoomCreated(room_id=room_name.lower(), room_name=room_name, created_by=created_by)


def joined(room_id: str, *usernames: str) -> list[e.Event]:
    return [e.UserJoined(room_id=room_id, username=name) for name in usernames]


def world() -> ChatState:
    """admin (admin), mod and mod2 (moderators), Alice, bob, carol (users);
    room General (id general) with Alice, bob and mod; room random with carol."""
    return given(
        account("admin", "admin"),
        account("mod", "moderator"),
        account("mod2", "moderator"),
        account("Alice"),
        account("bob"),
        account("carol"),
        room("General"),
        room("random"),
        *joined("general", "Alice", "bob", "mod"),
        *joined("random", "carol"),
    )


def record_all(
    state: ChatState, new_events: Iterable[e.Event], when: datetime = T0, actor: str = "system"
) -> tuple[list[e.Recorded], ChatState]:
    """Record events after `state` as the processor does; returns them and the state after."""
    out = []
    for event in new_events:
        recorded = e.Recorded(seq=state.seq + 1, at=when, actor=actor, event=event)
        out.append(recorded)
        state = evolve(state, recorded)
    return out, state


def then(command: c.Command, state: ChatState) -> tuple[list[e.Event], ChatState]:
    """Decide `command` and fold its events: the events and the state after."""
    new_events = decide(command, state)
    _, after = record_all(state, new_events, command.at, command.actor)
    return new_events, after


def rejected(command: c.Command, state: ChatState, code: int, reason: str) -> BaseException:
    """Assert that `decide` refuses `command` with the JSON-RPC `code` and `reason`."""
    with pytest.raises(Exception) as info:
        decide(command, state)
    error = info.value
    assert getattr(error, "code", None) == code, f"{error!r}: code {getattr(error, 'code', None)}"
    assert getattr(error, "reason", None) == reason, f"{error!r}: reason {error.reason}"  # type: ignore[attr-defined]
    return error


# --- random commands for the property tests -------------------------------------------------

USERS = ("admin", "mod", "mod2", "Alice", "bob", "carol")
NEWCOMERS = ("dave", "Dave", "erin")
ROOM_NAMES = ("general", "General", "random", "r3", "_bad")
ROOM_IDS = ("general", "random", "r3", "nowhere")


def seed_commands() -> list[c.Command]:
    """The accounts every random run starts from, created as the server does at start-up."""
    roles = {"admin": "admin", "mod": "moderator", "mod2": "moderator"}
    accounts: list[c.Command] = [
        c.EnsureAccount(
            actor="system", at=T0, username=name, role=roles.get(name, "user"), password_hash=HASH
        )  # type: ignore[arg-type]
        for name in USERS
    ]
    rooms = [("Alice", "General"), ("bob", "general"), ("mod", "general"), ("carol", "random")]
    joins: list[c.Command] = [
        c.JoinRoom(actor=actor, at=T0, room_name=name, limits=LIMITS) for actor, name in rooms
    ]
    return accounts + joins


_actors = st.sampled_from((*USERS, *USERS, *USERS, "dave", "erin", "ghost"))
_staff = st.sampled_from(("admin", "admin", "mod", "mod2", "bob", "ghost"))
_targets = st.sampled_from((*USERS, "dave", "ALICE", "ghost"))
_rooms = st.sampled_from(ROOM_IDS)


def _cmd(cls: type, **fields: st.SearchStrategy) -> st.SearchStrategy:
    return st.builds(cls, at=st.just(T0), limits=st.just(LIMITS), **fields)


COMMANDS: st.SearchStrategy[c.Command] = st.one_of(
    _cmd(c.JoinRoom, actor=_actors, room_name=st.sampled_from(ROOM_NAMES)),
    _cmd(c.JoinRoom, actor=_actors, room_name=st.sampled_from(ROOM_NAMES)),
    _cmd(c.LeaveRoom, actor=_actors, room_id=_rooms),
    _cmd(
        c.SendMessage,
        actor=_actors,
        room_id=_rooms,
        text=st.sampled_from(("hi", "hello 👋", " ", "x" * 21, "\u200b\u2060", "a\x1b[2K")),
        client_msg_id=st.sampled_from((None, None, "c1", "c2")),
    ),
    _cmd(
        c.SendMessage,
        actor=_actors,
        room_id=_rooms,
        text=st.sampled_from(("hi", "yo")),
    ),
    _cmd(
        c.KickUser,
        actor=_staff,
        target=_targets,
        room_id=st.sampled_from((None, *ROOM_IDS)),
        reason=st.sampled_from((None, "spam", "\x07")),
    ),
    _cmd(
        c.BanUser,
        actor=_staff,
        target=_targets,
        duration_seconds=st.sampled_from((None, 5, 30, 0)),
    ),
    _cmd(c.UnbanUser, actor=_staff, target=_targets),
    _cmd(
        c.SetRole,
        actor=_staff,
        target=_targets,
        role=st.sampled_from(("user", "moderator", "admin", "root")),
    ),
    _cmd(
        c.BroadcastAnnouncement,
        actor=_staff,
        message=st.sampled_from(("maintenance", "", "\ufeff", "up\x9b")),
        level=st.sampled_from(("info", "error", "loud")),
    ),
    _cmd(c.DeleteRoom, actor=_staff, room_id=_rooms),
    _cmd(
        c.RegisterAccount,
        actor=st.sampled_from(NEWCOMERS),
        username=st.sampled_from((*NEWCOMERS, "system", "a")),
        password_hash=st.just(HASH),
        display_name=st.sampled_from((None, "Dave 🦊", "\u200d", "<admin>\x1b")),
    ),
    _cmd(
        c.EnsureAccount,
        actor=st.sampled_from(("system", "admin")),
        username=st.sampled_from(("erin", "bob", "mod2")),
        role=st.sampled_from(("user", "moderator", "admin")),
        password_hash=st.sampled_from((None, HASH, "other-hash")),
    ),
    _cmd(
        c.RehashPassword,
        actor=st.sampled_from(("system", "bob")),
        username=st.sampled_from(("bob", "erin")),
        old_hash=st.sampled_from((HASH, "other-hash")),
        password_hash=st.sampled_from((HASH, "rehashed")),
    ),
    _cmd(c.CreateRoom, actor=st.sampled_from(("system", "admin", "bob")), room_name=_rooms),
    _cmd(
        c.DisableAccount,
        actor=st.sampled_from(("system", "admin")),
        username=st.sampled_from(("bob", "erin", "nobody")),
    ),
    _cmd(
        c.ChangePassword,
        actor=_actors,
        old_hash=st.sampled_from((HASH, "other-hash")),
        password_hash=st.sampled_from((HASH, "new-hash")),
    ),
    _cmd(c.Logout, actor=_actors, jti=st.sampled_from(("j1", "j2")), expires_at=st.just(10**10)),
    _cmd(
        c.ResetPassword,
        actor=_staff,
        target=_targets,
        password_hash=st.sampled_from((HASH, "reset-hash")),
    ),
    _cmd(c.DisableUser, actor=_staff, target=_targets),
    _cmd(c.EnableUser, actor=_staff, target=_targets),
    _cmd(c.RevokeTokens, actor=_staff, target=_targets),
)
"""Commands from a small cast of users and rooms, so that they often collide."""


def timed(commands: Iterable[c.Command], step_seconds: int = 4) -> list[c.Command]:
    """The seed accounts, then `commands` at a clock that moves on, so short bans expire."""
    out: list[c.Command] = list(seed_commands())
    for i, command in enumerate(commands, start=1):
        out.append(_replace(command, at=at(i * step_seconds)))
    return out


def _replace(command: c.Command, **changes: object) -> c.Command:
    import msgspec

    return msgspec.structs.replace(command, **changes)


def run_pure(
    commands: Iterable[c.Command], history_window: int = 3
) -> tuple[list[e.Recorded], list[ChatState], ChatState]:
    """Decide and fold commands as the processor does (rejections skipped).

    Returns the recorded events, the state just before each of them, and the final state.
    """
    state = initial_state(history_window)
    records: list[e.Recorded] = []
    befores: list[ChatState] = []
    for command in commands:
        try:
            new_events = decide(command, state)
        except ChatError:  # a rejection, or an actor without an account
            continue
        for event in new_events:
            recorded = e.Recorded(
                seq=state.seq + 1, at=command.at, actor=command.actor, event=event
            )
            befores.append(state)
            records.append(recorded)
            state = evolve(state, recorded)
    return records, befores, state


class LiveCore:
    """A real journal and CommandProcessor driven from synchronous code (hypothesis).

    A `memory://` URL is an in-memory journal, kept across `restart()` as a file would be.
    Owns a dedicated event loop; `close()` stops the processor, the journal and the loop.
    """

    def __init__(self, url: str, *, history_window: int = 3, migrate: bool = True) -> None:
        import asyncio

        self.url = url
        self.history_window = history_window
        self.loop = asyncio.new_event_loop()
        self._memory: MemoryJournal | None = None
        self._open(migrate=migrate)

    def run(self, coro):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coro)

    def _open(self, *, migrate: bool) -> None:
        from chat_core.journal.open import open_journal
        from chat_core.journal.replay import replay
        from chat_core.processor import CommandProcessor

        if self.url.startswith("memory:"):
            if self._memory is None:
                self._memory = MemoryJournal(self.url)
            self.journal: JournalPort = self._memory
        else:
            self.journal = self.run(open_journal(self.url, migrate=migrate, synchronous="NORMAL"))
        state, _ = self.run(replay(self.journal, history_window=self.history_window))
        self.processor = CommandProcessor(self.journal, state)

        async def start() -> None:
            self.processor.start()

        self.run(start())

    def submit(self, command: c.Command):  # type: ignore[no-untyped-def]
        return self.run(self.processor.submit(command))

    def replayed(self) -> ChatState:
        from chat_core.journal.replay import replay

        return self.run(replay(self.journal, history_window=self.history_window))[0]

    def rows(self) -> list[StoredRow]:
        async def collect() -> list[StoredRow]:
            return [row async for page in self.journal.read_rows() for row in page]

        return self.run(collect())

    def head(self) -> int:
        return self.run(self.journal.head())

    def restart(self) -> None:
        self._shut()
        self._open(migrate=False)

    def _shut(self) -> None:
        self.run(self.processor.stop())
        self.run(self.journal.close())

    def close(self) -> None:
        try:
            self._shut()
        finally:
            self.loop.close()


# --- old journals --------------------------------------------------------------------------

# Text the server refuses now (the text rule is checked at decide time), but an old journal
# may hold: it erases the line and forges an admin's, and writes the clipboard (OSC 52).
FORGED = "\x1b[2K\r<admin> forged"
CLIPBOARD = "\x1b]52;c;aGVsbG8=\x07"
# How `chat-cli` shows them (chat_cli/visible.py).
FORGED_SHOWN = "\\x1b[2K\\x0d<admin> forged"
CLIPBOARD_SHOWN = "\\x1b]52;c;aGVsbG8=\\x07"


def plant_old_messages(db_path: Path, room_name: str, *texts: str) -> None:
    """Write a journal as an older server might have: mallory's messages of `texts` in a room.

    Appended through the real `Journal` API, past the decider, before any server opens it.
    """
    from chat_core.journal.sqlite import Journal

    room_id = room_name.lower()
    events: list[e.Event] = [
        e.AccountRegistered(username="mallory", password_hash=HASH),
        e.RoomCreated(room_id=room_id, room_name=room_name, created_by="mallory"),
        e.UserJoined(room_id=room_id, username="mallory"),
        *(
            e.MessageSent(message_id=n, room_id=room_id, username="mallory", text=text)
            for n, text in enumerate(texts, start=1)
        ),
    ]

    async def write() -> None:
        journal = await Journal.open(f"sqlite+aiosqlite:///{db_path.as_posix()}", migrate=True)
        try:
            head = await journal.head()
            records = [
                e.Recorded(seq=head + n, at=at(n), actor="mallory", event=event)
                for n, event in enumerate(events, start=1)
            ]
            await journal.append(head, records)
        finally:
            await journal.close()

    asyncio.run(write())
