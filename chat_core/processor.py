"""The command processor: one task that decides, journals (group commit) and publishes.

Callers `submit` a command and await its `Outcome`. The task takes whatever is queued (up to
`max_batch`), decides each command against the latest state (later commands in a batch see
the events of earlier ones), appends the batch's events in one transaction, and only then
moves the live state forward, completes the callers' futures and hands the recorded events to
the publisher. If the append fails, nobody is acknowledged: the live state is reloaded from
the journal and every caller of the batch gets an `InternalError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import msgspec

from chat_core import commands as c
from chat_core import events as e
from chat_core.audience import Audience, audience
from chat_core.decider import decide
from chat_core.errors import ChatError, InternalError, JournalError
from chat_core.evolve import evolve
from chat_core.journal import Journal
from chat_core.state import ChatState

log = logging.getLogger(__name__)


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What a command did: its recorded events and the state right after it.

    `duplicate` is the first result of an idempotent retry (nothing was appended then).
    """

    events: tuple[e.Recorded, ...]
    state: ChatState
    duplicate: c.MessageRef | None = None


class Delivery(msgspec.Struct, frozen=True):
    """A recorded event and who receives its notification."""

    recorded: e.Recorded
    audience: Audience


class Publisher(Protocol):
    """Receives every committed batch, in commit order (the web layer's hub)."""

    def publish(self, deliveries: Sequence[Delivery], state: ChatState) -> None: ...


class NullPublisher:
    def publish(self, deliveries: Sequence[Delivery], state: ChatState) -> None:
        return None


_Job = tuple[c.Command, "asyncio.Future[Outcome]"]


class CommandProcessor:
    """Owns the live state; the only writer of the journal in this process."""

    def __init__(
        self,
        journal: Journal,
        state: ChatState,
        publisher: Publisher | None = None,
        *,
        queue_limit: int = 10_000,
        max_batch: int = 1_000,
        reload: Callable[[], Awaitable[ChatState]] | None = None,
    ) -> None:
        self.journal = journal
        self.state = state
        self.publisher: Publisher = publisher or NullPublisher()
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(maxsize=queue_limit)
        self._max_batch = max_batch
        self._reload = reload
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="command-processor")

    async def stop(self) -> None:
        """Finish every command already queued, then stop."""
        self._closing = True
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def submit(self, command: c.Command) -> Outcome:
        """Queue a command and wait until it is decided and, if it appended, committed."""
        if self._closing:
            raise InternalError("the server is shutting down", "shutting_down")
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        # A full queue makes the caller wait here (backpressure), never grows without bound.
        await self._queue.put((command, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._process(batch)
            except Exception:  # the processor must outlive any one batch
                log.exception("command batch failed")
                for _, future in batch:
                    if not future.done():
                        future.set_exception(InternalError("internal error"))
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _process(self, batch: list[_Job]) -> None:
        batch = await self._attach_priors(batch)
        start = self.state
        state = start
        records: list[e.Recorded] = []
        deliveries: list[Delivery] = []
        decided: list[tuple[asyncio.Future[Outcome], Outcome]] = []
        seen_ids: dict[tuple[str, str], c.MessageRef] = {}
        for command, future in batch:
            if isinstance(command, c.SendMessage) and command.client_msg_id and not command.prior:
                prior = seen_ids.get((command.actor, command.client_msg_id))
                if prior is not None:
                    command = msgspec.structs.replace(command, prior=prior)
            try:
                new_events = decide(command, state)
            except ChatError as rejected:
                if not future.done():
                    future.set_exception(rejected)
                continue
            recorded_now: list[e.Recorded] = []
            for event in new_events:
                command_id = (
                    command.client_msg_id
                    if isinstance(command, c.SendMessage) and isinstance(event, e.MessageSent)
                    else None
                )
                recorded = e.Recorded(
                    seq=state.seq + 1,
                    at=command.at,
                    actor=command.actor,
                    event=event,
                    command_id=command_id,
                )
                deliveries.append(Delivery(recorded, audience(recorded, state)))
                state = evolve(state, recorded)
                recorded_now.append(recorded)
                if command_id is not None and isinstance(event, e.MessageSent):
                    seen_ids[(command.actor, command_id)] = c.MessageRef(
                        message_id=event.message_id,
                        room_id=event.room_id,
                        seq=recorded.seq,
                        timestamp=recorded.at,
                    )
            records.extend(recorded_now)
            duplicate = command.prior if isinstance(command, c.SendMessage) else None
            decided.append(
                (future, Outcome(events=tuple(recorded_now), state=state, duplicate=duplicate))
            )
        if records:
            try:
                await self.journal.append(start.seq, records)
            except JournalError as exc:
                log.error("journal append failed, nothing acknowledged: %s", exc)
                await self._restore()
                for future, _ in decided:
                    if not future.done():
                        future.set_exception(InternalError("the journal could not be written"))
                return
        self.state = state
        for future, outcome in decided:
            if not future.done():
                future.set_result(outcome)
        if deliveries:
            self.publisher.publish(deliveries, state)

    async def _attach_priors(self, batch: list[_Job]) -> list[_Job]:
        """Look up in the journal the earlier results of re-sent client_msg_ids, in one query."""
        keys = [
            (command.actor, command.client_msg_id)
            for command, _ in batch
            if isinstance(command, c.SendMessage) and command.client_msg_id
        ]
        if not keys:
            return batch
        found = await self.journal.find_messages(keys)
        if not found:
            return batch
        out: list[_Job] = []
        for command, future in batch:
            if isinstance(command, c.SendMessage) and command.client_msg_id:
                prior = found.get((command.actor, command.client_msg_id))
                if prior is not None:
                    command = msgspec.structs.replace(command, prior=prior)
            out.append((command, future))
        return out

    async def _restore(self) -> None:
        """After a failed append, make the live state equal what the journal holds."""
        try:
            head = await self.journal.head()
        except JournalError:
            head = None
        if head == self.state.seq:
            return  # nothing of the batch reached the journal: the live state is exact
        if self._reload is not None:
            self.state = await self._reload()
