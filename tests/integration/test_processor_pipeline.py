"""The processor's pipeline on a real SQLite journal: batch N+1 is decided while N's append is
in flight, but nothing of it is answered or published before N and then N+1 commit; if N's
append fails, N's callers get InternalError and N+1 is decided again against the restored
state (and succeeds when valid). The failure is injected at the journal layer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from chat_core.domain import commands as c
from chat_core.domain import events as e
from chat_core.domain.state import ChatState
from chat_core.errors import InternalError, JournalError, UsernameTaken
from chat_core.journal.replay import replay
from chat_core.journal.sqlite import Journal
from chat_core.processor import CommandProcessor, Delivery, Outcome
from chat_kit import HASH, T0

HISTORY = 3


class GatedJournal(Journal):
    """A real journal whose next append can be held open, then let through or failed."""

    gate: asyncio.Event | None = None
    entered: asyncio.Event | None = None
    fail = False

    def hold_next(self, *, fail: bool) -> None:
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()
        self.fail = fail

    async def append(self, expected_head: int, records: Sequence[e.Recorded]) -> None:
        gate, entered = self.gate, self.entered
        if gate is not None and entered is not None:
            self.gate = self.entered = None
            entered.set()
            await gate.wait()
            if self.fail:
                raise JournalError("injected: the disk is full")
        await super().append(expected_head, records)


class Recording:
    def __init__(self) -> None:
        self.batches: list[list[e.Recorded]] = []

    def publish(self, deliveries: Sequence[Delivery], state: ChatState) -> None:
        assert state.seq == deliveries[-1].recorded.seq
        self.batches.append([d.recorded for d in deliveries])

    @property
    def seqs(self) -> list[int]:
        return [r.seq for batch in self.batches for r in batch]


def send(actor: str, text: str, cid: str | None = None) -> c.SendMessage:
    return c.SendMessage(actor=actor, at=T0, room_id="general", text=text, client_msg_id=cid)


def register(name: str) -> c.RegisterAccount:
    return c.RegisterAccount(actor=name, at=T0, username=name, password_hash=HASH)


async def _open(url: str) -> tuple[GatedJournal, CommandProcessor, Recording]:
    journal = await GatedJournal.open(url, migrate=True, synchronous="NORMAL")
    state, _ = await replay(journal, history_window=HISTORY)
    publisher = Recording()
    processor = CommandProcessor(journal, state, publisher)
    processor.start()
    for name in ("alice", "bob"):
        await processor.submit(
            c.EnsureAccount(actor="system", at=T0, username=name, role="user", password_hash=HASH)
        )
        await processor.submit(c.JoinRoom(actor=name, at=T0, room_name="general"))
    publisher.batches.clear()
    return journal, processor, publisher


async def _decided(processor: CommandProcessor, tasks: list[asyncio.Task[Outcome]]) -> None:
    """Let the processor take and decide the queued commands (the look-up is a real query)."""
    for _ in range(200):
        await asyncio.sleep(0.005)
        if not processor._jobs:
            break
    await asyncio.sleep(0.02)
    assert not processor._jobs  # taken while the batch before is in flight
    assert not any(task.done() for task in tasks)


async def _replayed(journal: Journal) -> ChatState:
    state, _ = await replay(journal, history_window=HISTORY)
    return state


async def _texts(journal: Journal) -> list[str]:
    return [
        r.event.text
        async for page in journal.read()
        for r in page
        if isinstance(r.event, e.MessageSent)
    ]


@pytest.mark.asyncio
async def test_a_failed_append_fails_its_batch_and_the_next_batch_is_decided_again(
    journal_url: str,
) -> None:
    journal, processor, publisher = await _open(journal_url)
    journal.hold_next(fail=True)
    gate, entered = journal.gate, journal.entered
    try:
        before = processor.state
        first = [
            asyncio.create_task(processor.submit(send("alice", "one", "c1"))),
            asyncio.create_task(processor.submit(register("carol"))),
        ]
        assert gate is not None and entered is not None
        await asyncio.wait_for(entered.wait(), 5)
        # Batch N is in flight: these are decided against the state it would leave, where
        # carol exists and alice's c1 was sent.
        second = [
            asyncio.create_task(processor.submit(send("bob", "two"))),
            asyncio.create_task(processor.submit(register("carol"))),
            asyncio.create_task(processor.submit(send("alice", "one again", "c1"))),
        ]
        await _decided(processor, first + second)
        assert processor.state is before  # nothing is live before it is durable
        gate.set()

        for task in first:
            with pytest.raises(InternalError):
                await task
        bob, carol, retry = [await task for task in second]
        # Decided again against the restored state: carol is new, c1 was never recorded.
        assert isinstance(carol.events[0].event, e.AccountRegistered)
        assert retry.duplicate is False
        (sent,) = retry.events
        assert isinstance(sent.event, e.MessageSent)
        assert sent.event.text == "one again"
        assert sent.command_id == "c1"
        assert [r.seq for r in bob.events] == [before.seq + 1]

        assert processor.state == await _replayed(journal)
        assert processor.state.seq == before.seq + 3 == await journal.head()
        assert "one" not in await _texts(journal)
        # Only the committed batch was published, in seq order.
        assert publisher.seqs == [before.seq + 1, before.seq + 2, before.seq + 3]
        # And the processor goes on.
        after = await processor.submit(send("bob", "three"))
        assert after.events[0].seq == before.seq + 4
    finally:
        if gate is not None:
            gate.set()  # a failed assertion must not leave the append hanging
        await processor.stop()
        await journal.close()


@pytest.mark.asyncio
async def test_the_next_batch_waits_for_the_commit_and_sees_the_batch_in_flight(
    journal_url: str,
) -> None:
    journal, processor, publisher = await _open(journal_url)
    journal.hold_next(fail=False)
    gate, entered = journal.gate, journal.entered
    try:
        before = processor.state
        first = [
            asyncio.create_task(processor.submit(register("carol"))),
            asyncio.create_task(processor.submit(send("alice", "one", "c1"))),
        ]
        assert gate is not None and entered is not None
        await asyncio.wait_for(entered.wait(), 5)
        second = [
            # sees carol, registered by the batch in flight
            asyncio.create_task(
                processor.submit(c.JoinRoom(actor="carol", at=T0, room_name="general"))
            ),
            # a rejection too waits for the commit it was decided against
            asyncio.create_task(processor.submit(register("carol"))),
            # a retry of a message of the batch in flight
            asyncio.create_task(processor.submit(send("alice", "one", "c1"))),
        ]
        await _decided(processor, first + second)
        assert processor.state is before
        assert publisher.batches == []
        gate.set()

        registered, message = [await task for task in first]
        assert isinstance(registered.events[0].event, e.AccountRegistered)
        joined = await second[0]
        with pytest.raises(UsernameTaken):
            await second[1]
        retry = await second[2]
        assert isinstance(joined.events[0].event, e.UserJoined)
        (sent,) = message.events
        # the retry gets back what the first one recorded; nothing is appended again
        assert retry.duplicate is True and retry.events == (sent,)
        assert processor.state == await _replayed(journal)
        assert publisher.seqs == list(range(before.seq + 1, processor.state.seq + 1))
        assert len(publisher.batches) == 2
    finally:
        if gate is not None:
            gate.set()
        await processor.stop()
        await journal.close()


@pytest.mark.asyncio
async def test_stop_finishes_every_queued_command(journal_url: str) -> None:
    journal, processor, _ = await _open(journal_url)
    try:
        tasks = [asyncio.create_task(processor.submit(send("bob", f"m{i}"))) for i in range(50)]
        await asyncio.sleep(0)
        await processor.stop()
        outcomes = [await task for task in tasks]
        assert [o.events[0].seq for o in outcomes] == sorted(o.events[0].seq for o in outcomes)
        assert processor.state == await _replayed(journal)
        with pytest.raises(InternalError):
            await processor.submit(send("bob", "late"))
    finally:
        await processor.stop()
        await journal.close()
