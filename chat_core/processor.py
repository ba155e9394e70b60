"""The command processor: one task that decides, journals (group commit) and publishes.

Callers `submit` a command and await its `Outcome`. The task takes whatever is queued (up to
`max_batch`), decides each command against the latest state (later commands in a batch see
the events of earlier ones), appends the batch's events in one transaction, and only then
moves the live state forward, completes the callers' futures and hands the recorded events to
the publisher. If the append fails, nobody is acknowledged: the live state is reloaded from
the journal and every caller of the batch gets an `InternalError`.

Pipelining: while batch N's append is in flight (in the driver's thread), the task takes the
commands that arrive and decides them as batch N+1 against the state N would leave (the
speculative state). Nothing of N+1 is acknowledged, rejected or published before N has
committed and then N+1 itself has: its rejections too wait, since they were decided against
state that is not yet durable. N+1 is appended only after N committed (one writer, commit
order = seq order). If N's append fails, N's callers get `InternalError`, the live state is
restored from the journal, and N+1's commands are decided again, from scratch, against the
restored state: they do not fail because N did.

`state` is always the committed state: what the journal holds.

An `Observer` (the web layer's metrics) hears of each settled batch once, never of each
command: the hot path stays one call per batch, and this module stays free of any framework.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import msgspec

from chat_core.domain import commands as c
from chat_core.domain import events as e
from chat_core.domain.decider import decide
from chat_core.domain.evolve import evolve
from chat_core.domain.state import ChatState
from chat_core.errors import ChatError, InternalError
from chat_core.journal.port import JournalPort

log = logging.getLogger(__name__)


class Outcome(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What a command did: its recorded events and the state right after it.

    `duplicate`: a retry of a command id already recorded; it was not decided again, nothing
    was appended, and `events` are what the first one recorded (the events carrying its id).
    """

    events: tuple[e.Recorded, ...]
    state: ChatState
    duplicate: bool = False


class Delivery(msgspec.Struct, frozen=True, gc=False):
    """A recorded event and the states just before and after it (what its notification says
    depends on both: `chat_core.protocol.notify`)."""

    recorded: e.Recorded
    before: ChatState
    after: ChatState


class Committed:
    """The committed state, shared by reference: the processor writes it, the hub reads it.

    Made before both, so the hub need not know the processor (nor the processor the hub
    beyond its `Publisher` interface).
    """

    __slots__ = ("state",)

    def __init__(self, state: ChatState) -> None:
        self.state = state


class Publisher(Protocol):
    """Receives every committed batch, in commit order (the web layer's hub)."""

    def publish(self, deliveries: Sequence[Delivery], state: ChatState) -> None: ...


class NullPublisher:
    def publish(self, deliveries: Sequence[Delivery], state: ChatState) -> None:
        return None


class Observer(Protocol):
    """Hears of every settled batch (metrics); called on the processor task, must not block."""

    def batch_settled(
        self,
        commands: Sequence[c.Command],
        results: Sequence[Outcome | ChatError],
        events: int,
        append_seconds: float | None,
    ) -> None:
        """`results[i]` is what `commands[i]` got; `append_seconds` is None when nothing was
        appended (every command rejected or a no-op)."""
        ...

    def append_failed(self, commands: int, append_seconds: float) -> None: ...


_Job = tuple[c.Command, "asyncio.Future[Outcome]"]
# Idempotency: (actor, command id) -> what the command recorded first (see `_attach_priors`).
_Key = tuple[str, str]
_Prior = tuple[e.Recorded, ...]
# A command, and what an earlier one with its (actor, command id) recorded, if the journal has it.
_Attached = tuple[c.Command, _Prior | None]

_Recorded = e.Recorded


class _Batch:
    """Commands decided together and appended in one transaction (or none, if no events)."""

    __slots__ = (
        "before",
        "deliveries",
        "jobs",
        "records",
        "results",
        "seconds",
        "seen",
        "start",
        "state",
        "task",
    )

    def __init__(self, start: ChatState, before: dict[_Key, _Prior] | None) -> None:
        self.jobs: list[_Job] = []  # as submitted: what is decided again after a failure
        self.start = start  # the state this batch was decided from
        self.state = start  # the state after it
        self.records: list[e.Recorded] = []
        self.deliveries: list[Delivery] = []
        # per job: its Outcome, or the ChatError that rejected it
        self.results: list[Outcome | ChatError] = []
        # Command ids recorded by this batch, and by the batch in flight when it was decided:
        # not yet in the journal, so the idempotency look-up cannot find them.
        self.seen: dict[_Key, _Prior] = {}
        self.before: dict[_Key, _Prior] = {} if before is None else before
        self.task: asyncio.Task[None] | None = None
        self.seconds: float | None = None  # how long its append took


class CommandProcessor:
    """Owns the live state; the only writer of the journal in this process."""

    def __init__(
        self,
        journal: JournalPort,
        state: ChatState | Committed,
        publisher: Publisher | None = None,
        *,
        queue_limit: int = 10_000,
        max_batch: int = 1_000,
        reload: Callable[[], Awaitable[ChatState]] | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.journal = journal
        self.observer = observer
        self.committed = state if isinstance(state, Committed) else Committed(state)
        self.publisher: Publisher = publisher or NullPublisher()
        self._jobs: deque[_Job] = deque()
        self._queue_limit = max(1, queue_limit)
        self._space: deque[asyncio.Future[None]] = deque()  # submitters waiting for room
        self._max_batch = max(1, max_batch)
        self._reload = reload
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._wake: asyncio.Future[None] | None = None  # the processor task, waiting for work
        self._inflight: _Batch | None = None  # being appended
        self._pending: _Batch | None = None  # decided against the in-flight batch's state

    @property
    def state(self) -> ChatState:
        """The committed state: what the journal holds."""
        return self.committed.state

    @state.setter
    def state(self, state: ChatState) -> None:
        self.committed.state = state

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="command-processor")

    async def stop(self) -> None:
        """Finish every command already queued, then stop."""
        self._closing = True
        task = self._task
        if task is None:
            return
        self._poke()
        try:
            await task
        finally:
            self._task = None
            # Submitters still waiting for room in the queue when the processor stopped.
            while self._space:
                waiter = self._space.popleft()
                if not waiter.done():
                    waiter.set_result(None)

    async def submit(self, command: c.Command) -> Outcome:
        """Queue a command and wait until it is decided and, if it appended, committed."""
        return await (await self.enqueue(command))

    async def enqueue(self, command: c.Command) -> asyncio.Future[Outcome]:
        """Queue a command; the future resolves as `submit` returns.

        Waits only while the queue is full (backpressure), so a caller that must not wait for
        the commit (the reader's pipelined sends) keeps its commands in arrival order.
        """
        if self._closing:
            raise InternalError("the server is shutting down", "shutting_down")
        loop = asyncio.get_running_loop()
        jobs = self._jobs
        # A full queue makes the caller wait here (backpressure), never grows without bound.
        while len(jobs) >= self._queue_limit:
            space: asyncio.Future[None] = loop.create_future()
            self._space.append(space)
            await space
            if self._closing and self._task is None:
                raise InternalError("the server is shutting down", "shutting_down")
        future: asyncio.Future[Outcome] = loop.create_future()
        jobs.append((command, future))
        wake = self._wake
        if wake is not None:
            self._wake = None
            if not wake.done():
                wake.set_result(None)
        return future

    def _poke(self, _: object = None) -> None:
        wake = self._wake
        if wake is not None:
            self._wake = None
            if not wake.done():
                wake.set_result(None)

    # --- the processor task ---------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            inflight = self._inflight
            if inflight is not None:
                task = inflight.task
                assert task is not None
                if task.done():
                    self._inflight = None
                    await self._settle(inflight, task)
                    continue
            elif self._pending is not None:
                # The writer is free: append the batch decided while the last one was written.
                pending, self._pending = self._pending, None
                self._launch(pending)
                continue
            if self._jobs and (self._pending is None or len(self._pending.jobs) < self._max_batch):
                await self._take()
                continue
            if self._closing and not self._jobs and inflight is None:
                return
            wake: asyncio.Future[None] = loop.create_future()
            self._wake = wake
            await wake

    async def _take(self) -> None:
        """Take queued commands and decide them into the pending batch."""
        batch = self._pending
        if batch is None:
            inflight = self._inflight
            if inflight is None:
                batch = _Batch(self.state, None)
            else:
                batch = _Batch(inflight.state, inflight.seen)
            self._pending = batch
        jobs = self._jobs
        n = min(len(jobs), self._max_batch - len(batch.jobs))
        popleft = jobs.popleft
        taken = [popleft() for _ in range(n)]
        space = self._space
        while space and len(jobs) < self._queue_limit:
            waiter = space.popleft()
            if not waiter.done():
                waiter.set_result(None)
        await self._decide(batch, taken)

    async def _decide(self, batch: _Batch, taken: list[_Job]) -> None:
        """Decide `taken` after the batch's commands; on an unexpected error, fail them."""
        try:
            commands = await self._attach_priors(taken)
            self._decide_all(batch, taken, commands)
        except Exception:  # the processor must outlive any one batch
            log.exception("deciding a command batch failed")
            for _, future in taken:
                if not future.done():
                    future.set_exception(InternalError("internal error"))

    def _decide_all(self, batch: _Batch, taken: list[_Job], commands: Sequence[_Attached]) -> None:
        # Work on locals; the batch takes them only if every command was decided.
        state = batch.state
        seq = state.seq
        records: list[e.Recorded] = []
        deliveries: list[Delivery] = []
        results: list[Outcome | ChatError] = []
        seen = batch.seen
        before = batch.before
        new_seen: dict[_Key, _Prior] = {}
        for command, prior in commands:
            cid = command.command_id
            if cid is not None:
                key = (command.actor, cid)
                if prior is None:
                    prior = new_seen.get(key) or seen.get(key) or before.get(key)
                if prior is not None:
                    # A retry: the first decision stands; it is not decided again.
                    results.append(Outcome(events=prior, state=state, duplicate=True))
                    continue
            try:
                new_events = decide(command, state)
            except ChatError as rejected:
                results.append(rejected)
                continue
            if not new_events:
                results.append(Outcome(events=(), state=state))
                continue
            at = command.at
            actor = command.actor
            first = len(records)
            for event in new_events:
                seq += 1
                # Only a command's first event carries its id: the journal's unique index
                # is one row per (actor, command id).
                recorded = _Recorded(
                    seq=seq,
                    at=at,
                    actor=actor,
                    event=event,
                    command_id=cid if len(records) == first else None,
                )
                after = evolve(state, recorded)
                deliveries.append(Delivery(recorded, state, after))
                state = after
                records.append(recorded)
            mine = (records[first],) if len(new_events) == 1 else tuple(records[first:])
            if cid is not None:
                new_seen[(actor, cid)] = (records[first],)
            results.append(Outcome(events=mine, state=state))
        batch.jobs.extend(taken)
        batch.results.extend(results)
        batch.records.extend(records)
        batch.deliveries.extend(deliveries)
        if new_seen:
            seen.update(new_seen)
        batch.state = state

    def _launch(self, batch: _Batch) -> None:
        """Start appending `batch` (the writer is free), or settle it now if it has no events."""
        if not batch.records:
            self._resolve(batch)
            return
        task = asyncio.get_running_loop().create_task(self._append(batch))
        task.add_done_callback(self._poke)
        batch.task = task
        self._inflight = batch

    async def _append(self, batch: _Batch) -> None:
        started = time.perf_counter()
        try:
            await self.journal.append(batch.start.seq, batch.records)
        finally:
            batch.seconds = time.perf_counter() - started

    async def _settle(self, batch: _Batch, task: asyncio.Task[None]) -> None:
        """The in-flight batch's append finished: acknowledge it, or fail it and recover."""
        exc = task.exception()
        if exc is None:
            self.state = batch.state
            pending = self._pending
            if pending is not None and pending.records:
                # Keep the writer busy: the next batch is appended while this one is answered.
                self._pending = None
                self._launch(pending)
            self._resolve(batch)
            return
        log.error("journal append failed, nothing acknowledged: %s", exc)
        if self.observer is not None:
            self.observer.append_failed(len(batch.jobs), batch.seconds or 0.0)
        failure = InternalError("the journal could not be written")
        for _, future in batch.jobs:
            if not future.done():
                future.set_exception(failure)
        try:
            await self._restore()
        except Exception:  # the processor must outlive any one batch
            log.exception("restoring the live state after a failed append failed")
        pending = self._pending
        if pending is not None:
            # Decided against a state that never became durable: decide again, from scratch.
            fresh = _Batch(self.state, None)
            self._pending = fresh
            await self._decide(fresh, pending.jobs)

    def _resolve(self, batch: _Batch) -> None:
        """Answer a batch's callers (after its commit, if it had events) and publish it."""
        for (_, future), result in zip(batch.jobs, batch.results, strict=True):
            if future.done():
                continue
            if type(result) is Outcome:
                future.set_result(result)
            else:
                future.set_exception(result)  # type: ignore[arg-type]
        observer = self.observer
        if observer is not None:
            try:
                commands = [command for command, _ in batch.jobs]
                observer.batch_settled(commands, batch.results, len(batch.records), batch.seconds)
            except Exception:
                log.exception("observing a settled batch failed")
        if batch.deliveries:
            try:
                self.publisher.publish(batch.deliveries, batch.state)
            except Exception:
                log.exception("publishing a committed batch failed")

    async def _attach_priors(self, batch: list[_Job]) -> Sequence[_Attached]:
        """Each command with what the journal already holds for its (actor, command id): the
        earlier results of retried commands, looked up in one query."""
        keys = [
            (command.actor, cid) for command, _ in batch if (cid := command.command_id) is not None
        ]
        found = await self.journal.find_commands(keys) if keys else None
        if not found:
            return [(command, None) for command, _ in batch]
        attached: list[_Attached] = []
        for command, _ in batch:
            cid = command.command_id
            recorded = None if cid is None else found.get((command.actor, cid))
            attached.append((command, None if recorded is None else (recorded,)))
        return attached

    async def _restore(self) -> None:
        """After a failed append, make the live state equal what the journal holds."""
        try:
            head = await self.journal.head()
        except Exception:  # noqa: BLE001 (a boundary: unknown head, reload below)
            head = None
        if head == self.state.seq:
            return  # nothing of the batch reached the journal: the live state is exact
        if self._reload is not None:
            self.state = await self._reload()
