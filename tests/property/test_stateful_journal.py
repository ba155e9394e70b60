"""A random walk of commands from several users and roles through the real processor and a
journal (a real SQLite file, the in-memory journal, and PostgreSQL: every implementation of the
port);
after every step the journal replays to the live state and the invariants of the chat hold. A
restart rule reopens the journal and must find the same state."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import msgspec
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from chat_core.domain import commands as c
from chat_core.domain import events as e
from chat_core.domain.state import active_ban
from chat_core.errors import Banned, ChatError, Unauthenticated
from chat_kit import COMMANDS, LIMITS, T0, LiveCore, seed_commands
from pg_kit import empty_journal


class JournalMachine(RuleBasedStateMachine):
    # The journal under test: a SQLite file here, the in-memory journal or a PostgreSQL
    # database (emptied before each example) in the subclasses.
    in_memory = False
    postgres_url: str | None = None

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="chat-stateful-")
        self.core: LiveCore | None = None
        self.clock = T0
        # (actor, client_msg_id) -> what the first send of that message recorded
        self.sent: dict[tuple[str, str], tuple[e.Recorded, ...]] = {}
        self.last_client_send: c.SendMessage | None = None

    @initialize()
    def open_and_seed(self) -> None:
        url = f"sqlite+aiosqlite:///{Path(self.tmp) / 'journal.db'}"
        if self.postgres_url is not None:
            asyncio.run(empty_journal(self.postgres_url))
            url = self.postgres_url
        self.core = LiveCore("memory://" if self.in_memory else url)
        for command in seed_commands():
            self.core.submit(command)

    def _submit(self, command: c.Command) -> None:
        assert self.core is not None
        key = (
            (command.actor, command.client_msg_id)
            if isinstance(command, c.SendMessage) and command.client_msg_id
            else None
        )
        head = self.core.head() if key in self.sent else None
        try:
            outcome = self.core.submit(command)
        except ChatError:
            return
        if key is None:
            return
        if key in self.sent:
            # A retry: the first result comes back and nothing is appended again.
            assert outcome.duplicate is True
            assert outcome.events == self.sent[key]
            assert self.core.head() == head
        else:
            assert outcome.duplicate is False
            (sent,) = outcome.events
            assert isinstance(sent.event, e.MessageSent)
            assert sent.command_id == key[1]
            self.sent[key] = outcome.events
            assert isinstance(command, c.SendMessage)
            self.last_client_send = command

    @rule(command=COMMANDS, seconds=st.integers(0, 8))
    def run_a_command(self, command: c.Command, seconds: int) -> None:
        self.clock += timedelta(seconds=seconds)
        self._submit(msgspec.structs.replace(command, at=self.clock))

    @rule(
        who=st.sampled_from(("bob", "carol", "Alice", "mod2")),
        duration=st.sampled_from((None, 3, 20)),
    )
    def ban_someone(self, who: str, duration: int | None) -> None:
        self._submit(c.BanUser(actor="admin", at=self.clock, target=who, duration_seconds=duration))

    @rule(actor=st.sampled_from(("bob", "carol", "Alice")), room=st.sampled_from(("general", "x")))
    def join_and_talk(self, actor: str, room: str) -> None:
        self._submit(c.JoinRoom(actor=actor, at=self.clock, room_name=room, limits=LIMITS))
        text = f"hello from {actor}"
        self._submit(c.SendMessage(actor=actor, at=self.clock, room_id=room, text=text))

    @precondition(lambda self: self.last_client_send is not None)
    @rule()
    def retry_the_last_client_message(self) -> None:
        assert self.core is not None and self.last_client_send is not None
        command = msgspec.structs.replace(self.last_client_send, at=self.clock)
        key = (command.actor, command.client_msg_id or "")
        head = self.core.head() if key in self.sent else None
        try:
            outcome = self.core.submit(command)
        except (Banned, Unauthenticated):
            assert self.core.head() == head
            return
        assert outcome.duplicate is True
        assert outcome.events == self.sent[key]
        assert self.core.head() == head

    @rule()
    def restart(self) -> None:
        assert self.core is not None
        before = self.core.processor.state
        self.core.restart()
        assert self.core.processor.state == before

    @invariant()
    def replay_equals_the_live_state(self) -> None:
        if self.core is not None:
            assert self.core.replayed() == self.core.processor.state

    @invariant()
    def no_actively_banned_user_is_in_a_room(self) -> None:
        if self.core is None:
            return
        state = self.core.processor.state
        for room in state.rooms.values():
            for username in room.members.values():
                assert active_ban(state, username, self.clock) is None, (username, room.room_id)

    @invariant()
    def rooms_stay_within_their_limit_and_agree_with_memberships(self) -> None:
        if self.core is None:
            return
        state = self.core.processor.state
        for room in state.rooms.values():
            assert len(room.members) <= LIMITS.max_users_per_room
            for key in room.members:
                assert room.room_id in state.memberships[key]
        for key, joined in state.memberships.items():
            for room_id in joined:
                assert key in state.rooms[room_id].members

    @invariant()
    def seqs_have_no_gaps_and_message_ids_increase(self) -> None:
        if self.core is None:
            return
        rows = self.core.rows()
        assert [row.seq for row in rows] == list(range(1, len(rows) + 1))
        assert self.core.processor.state.seq == len(rows)
        ids = [
            msgspec.json.decode(row.payload)["message_id"]
            for row in rows
            if row.tag == "message_sent"
        ]
        assert ids == sorted(set(ids))

    def teardown(self) -> None:
        try:
            if self.core is not None:
                self.core.close()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


class MemoryJournalMachine(JournalMachine):
    in_memory = True


class PostgresJournalMachine(JournalMachine):
    pass


_SETTINGS = settings(
    max_examples=30,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
JournalMachine.TestCase.settings = _SETTINGS
MemoryJournalMachine.TestCase.settings = _SETTINGS
test_journal_machine = JournalMachine.TestCase
test_memory_journal_machine = MemoryJournalMachine.TestCase


def test_postgres_journal_machine(postgres_url: str) -> None:
    # Fewer examples: each step is a few round trips to the server (about 10 s in all).
    PostgresJournalMachine.postgres_url = postgres_url
    run_state_machine_as_test(PostgresJournalMachine, settings=settings(_SETTINGS, max_examples=12))
