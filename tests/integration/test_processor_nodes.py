"""Two command processors appending to one journal, as two nodes do on PostgreSQL: neither
ever answers from stale state. A stale append is refused and decided again after catching up;
a rejection is answered only once the head is seen unmoved; a read waits for the events
acknowledged elsewhere; both see one order. Socket-free, over the shared in-memory journal
(the same code paths run against PostgreSQL in tests/e2e/test_nodes.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from prometheus_client import CollectorRegistry

from chat_core.domain import commands as c
from chat_core.domain import events as e
from chat_core.domain.state import ChatState, initial_state
from chat_core.errors import InternalError, JournalError, NotAMember
from chat_core.journal.memory import MemoryJournal
from chat_core.journal.port import NoLease, WriterLease
from chat_core.processor import CommandProcessor, Delivery
from chat_kit import HASH, T0
from chat_web.metrics import ProcessorMetrics


class Recording:
    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.grew = asyncio.Event()

    def publish(self, deliveries: Sequence[Delivery], state: ChatState) -> None:
        assert state.seq == deliveries[-1].recorded.seq
        for delivery in deliveries:
            assert delivery.before.seq + 1 == delivery.recorded.seq == delivery.after.seq
        self.seqs.extend(d.recorded.seq for d in deliveries)
        self.grew.set()

    async def reach(self, seq: int) -> None:
        while not self.seqs or self.seqs[-1] < seq:
            self.grew.clear()
            await self.grew.wait()


class Node:
    def __init__(self, journal: MemoryJournal, observer: ProcessorMetrics | None = None) -> None:
        self.published = Recording()
        self.processor = CommandProcessor(
            journal, initial_state(5), self.published, observer=observer
        )

    async def __aenter__(self) -> CommandProcessor:
        self.processor.start()
        return self.processor

    async def __aexit__(self, *exc: object) -> None:
        await self.processor.stop()


def ensure(name: str) -> c.EnsureAccount:
    return c.EnsureAccount(actor="system", at=T0, username=name, role="user", password_hash=HASH)


def join(name: str, room: str = "general") -> c.JoinRoom:
    return c.JoinRoom(actor=name, at=T0, room_name=room)


def send(name: str, text: str, cid: str | None = None) -> c.SendMessage:
    return c.SendMessage(actor=name, at=T0, room_id="general", text=text, client_msg_id=cid)


async def test_a_stale_append_catches_up_and_is_decided_again() -> None:
    journal = MemoryJournal(shared=True)
    a, b = Node(journal), Node(journal)
    async with a as pa, b as pb:
        await pa.submit(ensure("alice"))
        await pa.submit(join("alice"))
        # b has seen none of it: its first append is refused, it catches up and decides again
        # against the room alice created, so bob joins it rather than creating a second one.
        await pb.submit(ensure("bob"))
        outcome = await pb.submit(join("bob"))
        assert pb.state.seq == pa.state.seq + 2 == 5
        joined = [r.event for r in outcome.events]
        assert [type(x) for x in joined] == [e.UserJoined]
        # b published a's events (caught up) and its own, each once, in seq order.
        assert b.published.seqs == [1, 2, 3, 4, 5]


class NoTurns(MemoryJournal):
    """Writers that do not take turns (no writer lease): the conflict path, which stays as the
    safety net behind the lease, is what decides."""

    def writer_lease(self) -> WriterLease:
        return NoLease()


async def test_without_turns_a_stale_append_conflicts_and_is_decided_again() -> None:
    journal = NoTurns(shared=True)
    a, b = Node(journal), Node(journal)
    async with a as pa, b as pb:
        await pa.submit(ensure("alice"))
        await pa.submit(join("alice"))
        await pb.submit(ensure("bob"))
        outcome = await pb.submit(join("bob"))
        assert [type(r.event) for r in outcome.events] == [e.UserJoined]
        assert b.published.seqs == [1, 2, 3, 4, 5]


async def test_writers_taking_turns_never_conflict() -> None:
    journal = MemoryJournal(shared=True)
    metrics = ProcessorMetrics(CollectorRegistry())
    a, b = Node(journal), Node(journal, metrics)
    async with a as pa, b as pb:
        await pa.submit(ensure("alice"))
        await pb.submit(ensure("bob"))  # b takes the lease, catches up on alice, appends
        sends = [(pa if i % 2 else pb).submit(ensure(f"user{i}")) for i in range(100)]
        await asyncio.gather(*sends)
        assert metrics.conflicts == 0


async def test_a_stale_append_is_counted_as_a_conflict_for_metrics() -> None:
    journal = NoTurns(shared=True)
    metrics = ProcessorMetrics(CollectorRegistry())
    a, b = Node(journal), Node(journal, metrics)
    async with a as pa, b as pb:
        await pa.submit(ensure("alice"))
        await pb.submit(ensure("bob"))  # b had not seen alice: one conflict, one command
        assert (metrics.conflicts, metrics.conflicted_commands) == (1, 1)
        await pb.submit(ensure("carol"))  # b is at the head now: no conflict
        assert metrics.conflicts == 1
        assert metrics.commands[("ensure_account", "ok")] == 2


async def test_a_rejection_is_answered_only_from_a_fresh_state() -> None:
    journal = MemoryJournal(shared=True)
    a, b = Node(journal), Node(journal)
    async with a as pa, b as pb:
        await pb.submit(ensure("alice"))
        await pb.submit(ensure("bob"))
        await pa.sync()
        await pa.submit(join("alice"))
        # On b's stale state alice is no member of general: the rejection would be wrong.
        outcome = await pb.submit(send("alice", "hello"))
        assert [type(r.event) for r in outcome.events] == [e.MessageSent]
        # A real rejection still is one, once the head is seen where it was decided.
        with pytest.raises(NotAMember):
            await pb.submit(send("bob", "not a member"))


async def test_sync_waits_for_what_another_node_acknowledged() -> None:
    journal = MemoryJournal(shared=True)
    a, b = Node(journal), Node(journal)
    async with a as pa, b as pb:
        await pa.submit(ensure("alice"))
        await pa.submit(join("alice"))
        assert pb.state.seq == 0
        await pb.sync()
        assert pb.state.seq == pa.state.seq
        assert "general" in pb.state.rooms
        # advance_to (what a node's notice does) catches up without a caller waiting.
        await pa.submit(send("alice", "one"))
        pb.advance_to(await journal.head())
        await asyncio.wait_for(b.published.reach(pa.state.seq), 5)
        assert pb.state.seq == pa.state.seq


async def test_a_retried_client_msg_id_is_one_message_across_nodes() -> None:
    journal = MemoryJournal(shared=True)
    a, b = Node(journal), Node(journal)
    async with a as pa, b as pb:
        await pa.submit(ensure("alice"))
        await pa.submit(join("alice"))
        first = await pa.submit(send("alice", "once", "m-1"))
        retry = await pb.submit(send("alice", "once", "m-1"))
        assert retry.duplicate
        assert retry.events == first.events
        texts = [r.event.text async for page in journal.read() for r in _msgs(page)]
        assert texts == ["once"]


async def test_interleaved_writers_keep_one_gapless_order() -> None:
    journal = MemoryJournal(shared=True)
    a, b = Node(journal), Node(journal)
    async with a as pa, b as pb:
        await pa.submit(ensure("alice"))
        await pa.submit(join("alice"))
        await pb.sync()
        sends = [(pa if i % 2 else pb).submit(send("alice", f"m{i}", f"c{i}")) for i in range(200)]
        outcomes = await asyncio.gather(*sends)
        seqs = sorted(o.events[0].seq for o in outcomes)
        assert seqs == list(range(4, 204))
        await pa.sync()
        await pb.sync()
        assert a.published.seqs == b.published.seqs == list(range(1, 204))


async def test_a_journal_that_cannot_be_read_fails_the_waiting_reads() -> None:
    journal = BrokenReads(shared=True)
    a, b = Node(journal), Node(journal)
    async with a as pa, b as pb:
        await pa.submit(ensure("alice"))
        journal.broken = True
        with pytest.raises(InternalError):
            await asyncio.wait_for(pb.sync(), 5)
        journal.broken = False
        await pb.sync()
        assert pb.state.seq == 1


class BrokenReads(MemoryJournal):
    broken = False

    async def read(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def,override]
        if self.broken:
            raise JournalError("injected: the database is unreachable")
        async for page in super().read(*args, **kwargs):  # type: ignore[arg-type]
            yield page


def _msgs(page: list[e.Recorded]) -> list[e.Recorded]:
    return [r for r in page if isinstance(r.event, e.MessageSent)]
