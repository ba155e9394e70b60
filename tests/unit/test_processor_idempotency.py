"""Idempotency by command id, in the real CommandProcessor over the in-memory journal: a retry
of an (actor, command id) already recorded is not decided again; its Outcome is marked a
duplicate and carries what the first one recorded, whether the first is in the journal, in
the same batch, or in the batch still being appended. The processor knows no command type:
any command with a `command_id` gets it."""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from chat_core.domain import commands as c
from chat_core.domain import events as e
from chat_core.errors import ChatError
from chat_core.journal.memory import MemoryJournal
from chat_core.journal.replay import replay
from chat_core.processor import CommandProcessor, Outcome
from chat_kit import at, seed_commands

PROCESSOR = Path(__file__).resolve().parents[2] / "chat_core" / "processor.py"


class JoinRoomOnce(c.JoinRoom, frozen=True, kw_only=True):
    """A join with an id of its own: a command of another kind, recording two events when it
    creates its room."""

    request_id: str

    @property
    def command_id(self) -> str | None:
        return self.request_id


def send(text: str, cid: str | None, actor: str = "bob") -> c.SendMessage:
    return c.SendMessage(actor=actor, at=at(1), room_id="general", text=text, client_msg_id=cid)


async def _seeded(journal: MemoryJournal) -> CommandProcessor:
    state, _ = await replay(journal)
    processor = CommandProcessor(journal, state)
    processor.start()
    if state.seq == 0:
        for command in seed_commands():
            await processor.submit(command)
    return processor


async def _restarted(journal: MemoryJournal, processor: CommandProcessor) -> CommandProcessor:
    await processor.stop()
    return await _seeded(journal)


async def test_a_retry_after_a_restart_gets_the_first_result_from_the_journal() -> None:
    journal = MemoryJournal()
    processor = await _seeded(journal)
    first = await processor.submit(send("hello", "m1"))
    (sent,) = first.events
    assert first.duplicate is False and sent.command_id == "m1"
    # A new processor: nothing of the first send is in memory, only in the journal.
    processor = await _restarted(journal, processor)
    head = await journal.head()
    retry = await processor.submit(send("hello, edited", "m1"))
    assert retry.duplicate is True
    assert retry.events == (sent,)
    assert await journal.head() == head
    assert retry.state is processor.state
    # The same id from another user is another command.
    other = await processor.submit(send("mine", "m1", actor="Alice"))
    assert other.duplicate is False and other.events[0].seq == head + 1
    await processor.stop()


async def test_a_retry_in_the_same_batch_gets_the_first_result() -> None:
    journal = MemoryJournal()
    processor = await _seeded(journal)
    head = await journal.head()
    # Queued before the processor task runs: decided in one batch.
    futures = [await processor.enqueue(send(text, "m2")) for text in ("one", "two", "three")]
    first, *retries = [await future for future in futures]
    assert first.duplicate is False
    for retry in retries:
        assert retry.duplicate is True and retry.events == first.events
    assert await journal.head() == head + 1
    await processor.stop()


class GatedJournal(MemoryJournal):
    """The in-memory journal, whose appends wait until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()

    async def append(self, expected_head: int, records: Sequence[e.Recorded]) -> None:
        self.entered.set()
        await self.gate.wait()
        await super().append(expected_head, records)


async def test_a_retry_decided_while_the_first_is_appended_gets_the_first_result() -> None:
    journal = GatedJournal()
    processor = await _seeded(journal)
    head = await journal.head()
    journal.gate.clear()
    journal.entered.clear()
    first = await processor.enqueue(send("one", "m3"))
    await asyncio.wait_for(journal.entered.wait(), 5)
    # The first send's batch is being appended: the retry is decided against it.
    retry = await processor.enqueue(send("one", "m3"))
    journal.gate.set()
    assert (await retry).duplicate is True
    assert (await retry).events == (await first).events
    assert await journal.head() == head + 1
    await processor.stop()


async def test_a_command_of_any_kind_with_an_id_is_idempotent_and_its_first_event_has_it() -> None:
    journal = MemoryJournal()
    processor = await _seeded(journal)
    head = await journal.head()
    join = JoinRoomOnce(actor="bob", at=at(2), room_name="lobby", request_id="j1")
    first = await processor.submit(join)
    created, joined = first.events
    assert isinstance(created.event, e.RoomCreated) and isinstance(joined.event, e.UserJoined)
    # The journal's unique index is one row per (actor, command id): the first event has it.
    assert (created.command_id, joined.command_id) == ("j1", None)
    again = await processor.submit(join)
    assert again.duplicate is True and again.events == (created,)
    processor = await _restarted(journal, processor)
    after_restart = await processor.submit(join)
    assert after_restart.duplicate is True and after_restart.events == (created,)
    assert await journal.head() == head + 2
    await processor.stop()


async def test_a_command_without_an_id_is_decided_every_time() -> None:
    journal = MemoryJournal()
    processor = await _seeded(journal)
    outcomes: list[Outcome] = [await processor.submit(send("same", None)) for _ in range(2)]
    assert [o.duplicate for o in outcomes] == [False, False]
    assert outcomes[1].events[0].seq == outcomes[0].events[0].seq + 1
    assert outcomes[1].events[0].command_id is None
    await processor.stop()


async def test_a_rejected_command_leaves_its_id_free() -> None:
    journal = MemoryJournal()
    processor = await _seeded(journal)
    refused = await processor.enqueue(send("", "m4"))  # empty text: refused
    accepted = await processor.enqueue(send("now with text", "m4"))
    with pytest.raises(ChatError) as refusal:
        await refused
    assert refusal.value.reason == "empty_message"
    outcome = await accepted
    assert outcome.duplicate is False and outcome.events[0].command_id == "m4"
    await processor.stop()


def test_the_processor_names_no_command_or_event_type() -> None:
    """Idempotency is generic: the processor reads `command_id`, never a command's kind."""
    allowed = {("c", "Command"), ("e", "Recorded"), ("e", "Event")}
    named = {
        (node.value.id, node.attr)
        for node in ast.walk(ast.parse(PROCESSOR.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in ("c", "e")
    }
    assert named <= allowed, named - allowed
    assert ("c", "Command") in named  # the check sees the module's names at all
