"""The command processor: one task that decides, journals (group commit) and publishes.

Callers `submit` a command and await its `Outcome`. The task takes whatever is queued (up to
`max_batch`), decides each command against the latest state (later commands in a batch see
the events of earlier ones), appends the batch's events in one transaction, and only then
moves the live state forward, completes the callers' futures and hands the recorded events to
the publisher. If the append fails, nobody is acknowledged: the live state catches up with
what the journal holds and every caller of the batch gets an `InternalError`.

Pipelining: while batch N's append is in flight (in the driver's thread), the task takes the
commands that arrive and decides them as batch N+1 against the state N would leave (the
speculative state). Nothing of N+1 is acknowledged, rejected or published before N has
committed and then N+1 itself has: its rejections too wait, since they were decided against
state that is not yet durable. N+1 is appended only after N committed (one writer, commit
order = seq order). If N's append fails, N's callers get `InternalError`, the live state is
restored from the journal, and N+1's commands are decided again, from scratch, against the
restored state: they do not fail because N did.

`state` is always the committed state: what the journal holds.

Other writers (nodes on one PostgreSQL journal, docs/architecture.md section 6) take turns:
the processor appends only while it holds the journal's writer lease, catching up (folding and
publishing the others' events like its own) when it takes it. An append whose expected head is
stale anyway is refused (`JournalConflict`), caught up and decided again. `advance_to` and
`sync` make it catch up between batches too, while the writer is free.

An `Observer` (the web layer's metrics) hears of each settled batch once, never of each
command: the hot path stays one call per batch, and this module stays free of any framework.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence

from chat_core.batch import Attached, Batch, Job
from chat_core.catch_up import Waiters, catch_up
from chat_core.commit import Committed, Delivery, NullPublisher, Observer, Outcome, Publisher
from chat_core.domain import commands as c
from chat_core.domain.state import ChatState
from chat_core.errors import InternalError, JournalConflict, JournalError
from chat_core.journal.port import JournalPort

__all__ = [
    "CommandProcessor",
    "Committed",
    "Delivery",
    "NullPublisher",
    "Observer",
    "Outcome",
    "Publisher",
]

log = logging.getLogger(__name__)


# How long a processor of a shared journal keeps the writer lease while it has more to append,
# before it lets the others take a turn: long enough for a few group commits.
LEASE_SECONDS = 0.05
# Journal conflicts caught up and retried in a row before a batch fails: each retry follows a
# commit of another writer, so only a writer starved by others for this long gives up.
_MAX_RETRIES = 100


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
        observer: Observer | None = None,
    ) -> None:
        self.journal = journal
        self.observer = observer
        self.committed = state if isinstance(state, Committed) else Committed(state)
        self.publisher: Publisher = publisher or NullPublisher()
        self._jobs: deque[Job] = deque()
        self._queue_limit = max(1, queue_limit)
        self._space: deque[asyncio.Future[None]] = deque()  # submitters waiting for room
        self._max_batch = max(1, max_batch)
        # The journal head some other writer is known to have reached (catch up to it), and
        # the reads waiting until the committed state holds a given seq.
        self._target = 0
        self._syncs = Waiters()
        # Other processes append too (nodes on PostgreSQL): a batch that appends nothing is
        # answered only after a look at the head (`_append`).
        self._shared = journal.shared
        self._writer = journal.writer_lease()
        self._leased_at: float | None = None  # when this processor took the writer lease
        # Conflicts that caught up since the last commit: a bound on retries (see _settle).
        self._retries = 0
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._wake: asyncio.Future[None] | None = None  # the processor task, waiting for work
        self._inflight: Batch | None = None  # being appended
        self._pending: Batch | None = None  # decided against the in-flight batch's state

    @property
    def state(self) -> ChatState:
        """The committed state: what the journal holds."""
        return self.committed.state

    @state.setter
    def state(self, state: ChatState) -> None:
        self.committed.state = state
        self._syncs.release(state.seq)  # a read waiting for a seq our own commit reached

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
            self._syncs.fail(InternalError("the server is shutting down", "shutting_down"))
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
            elif self._target > self.state.seq:
                # The writer is free and others appended: fold their events in first.
                await self._follow()
                continue
            elif self._pending is not None:
                # The writer is free: append the batch decided while the last one was written
                # (on a shared journal, once this processor holds the writer lease).
                if self._shared and self._pending.records and await self._lease():
                    continue
                pending, self._pending = self._pending, None
                self._launch(pending)
                continue
            if self._jobs and (self._pending is None or len(self._pending.jobs) < self._max_batch):
                await self._take()
                continue
            if self._leased_at is not None and inflight is None and self._pending is None:
                await self._unlease()  # idle: the other nodes' turn
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
                batch = Batch(self.state, None)
            else:
                batch = Batch(inflight.state, inflight.seen)
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

    async def _decide(self, batch: Batch, taken: list[Job]) -> None:
        """Decide `taken` after the batch's commands; on an unexpected error, fail them."""
        try:
            commands = await self._attach_priors(taken)
            batch.decide(taken, commands)
        except Exception as exc:  # the processor must outlive any one batch
            if isinstance(exc, JournalError):  # the database is down: no traceback to tell
                log.error("deciding a command batch failed: %s", exc)
            else:
                log.exception("deciding a command batch failed")
            for _, future in taken:
                if not future.done():
                    future.set_exception(InternalError("internal error"))

    def _launch(self, batch: Batch) -> None:
        """Start appending `batch` (the writer is free), or settle it now if it has no events."""
        if not batch.records and not self._shared:
            self._resolve(batch)
            return
        task = asyncio.get_running_loop().create_task(self._append(batch))
        task.add_done_callback(self._poke)
        batch.task = task
        self._inflight = batch

    async def _append(self, batch: Batch) -> None:
        if not batch.records:
            # A shared journal, nothing to append (rejections, no-ops, retries): answer only
            # if no other writer moved the head, else the decisions were made on stale state.
            if await self.journal.head() != batch.start.seq:
                raise JournalConflict("another writer appended since the batch was decided")
            return
        started = time.perf_counter()
        try:
            await self.journal.append(batch.start.seq, batch.records)
        finally:
            batch.seconds = time.perf_counter() - started

    async def _settle(self, batch: Batch, task: asyncio.Task[None]) -> None:
        """The in-flight batch's append finished: acknowledge it, or fail it and recover."""
        exc = task.exception()
        if exc is None:
            self.state = batch.state
            self._retries = 0
            pending = self._pending
            if (
                pending is not None
                and pending.records
                and self._target <= batch.state.seq
                and not self._lease_over()
            ):
                # Keep the writer busy: the next batch is appended while this one is answered.
                self._pending = None
                self._launch(pending)
            self._resolve(batch)
            return
        if isinstance(exc, JournalConflict) and await self._retry(batch):
            return
        self._leased_at = None  # a lease lives on the writer connection the failure took
        log.error("journal append failed, nothing acknowledged: %s", exc)
        if self.observer is not None:
            self.observer.append_failed(len(batch.jobs), batch.seconds or 0.0)
        failure = InternalError("the journal could not be written")
        for _, future in batch.jobs:
            if not future.done():
                future.set_exception(failure)
        try:
            await self._restore()
        except JournalError as error:
            log.error("catching up after a failed append failed: %s", error)
        except Exception:  # the processor must outlive any one batch
            log.exception("restoring the live state after a failed append failed")
        pending = self._pending
        if pending is not None:
            # Decided against a state that never became durable: decide again, from scratch.
            fresh = Batch(self.state, None)
            self._pending = fresh
            await self._decide(fresh, pending.jobs)

    def _resolve(self, batch: Batch) -> None:
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

    async def _attach_priors(self, batch: list[Job]) -> Sequence[Attached]:
        """Each command with what the journal already holds for its (actor, command id): the
        earlier results of retried commands, looked up in one query."""
        keys = [
            (command.actor, cid) for command, _ in batch if (cid := command.command_id) is not None
        ]
        found = await self.journal.find_commands(keys) if keys else None
        if not found:
            return [(command, None) for command, _ in batch]
        attached: list[Attached] = []
        for command, _ in batch:
            cid = command.command_id
            recorded = None if cid is None else found.get((command.actor, cid))
            attached.append((command, None if recorded is None else (recorded,)))
        return attached

    async def _restore(self) -> None:
        """After a failed append, make the live state equal what the journal holds: what it
        did not commit was never applied; what it may have committed (a commit whose answer
        was lost) is folded like another writer's events."""
        await self._catch_up()

    # --- other writers ----------------------------------------------------------------------

    def advance_to(self, head: int) -> None:
        """The journal is known to reach `head` (another node appended): catch up soon."""
        if head > self._target:
            self._target = head
            self._poke()

    async def sync(self, head: int | None = None) -> None:
        """Return once the committed state holds every event up to `head` (the journal's
        head now, if None): a read then reflects every command acknowledged before it, on
        any node. Free when no other writer appended."""
        if head is None:
            head = await self.journal.head()
        if head <= self.state.seq:
            return
        if self._closing:
            raise InternalError("the server is shutting down", "shutting_down")
        future = self._syncs.add(head)
        self.advance_to(head)
        await future

    def _lease_over(self) -> bool:
        """Held longer than one turn should last (`LEASE_SECONDS`): give the others theirs."""
        leased = self._leased_at
        return leased is not None and time.monotonic() - leased > LEASE_SECONDS

    async def _lease(self) -> bool:
        """Make sure this processor holds the writer lease before appending. True when the
        loop must look again: the lease was just taken (and what others appended before it
        caught up, the pending batch decided again if that moved the state), or taking it
        failed (the pending batch failed)."""
        if self._lease_over():
            await self._unlease()
        try:
            taken = await self._writer.hold()
        except Exception as exc:  # noqa: BLE001 (the journal is down: fail the batch, go on)
            log.error("cannot take the journal's writer lease: %s", exc)
            pending, self._pending = self._pending, None
            failure = InternalError("the journal could not be written")
            for _, future in pending.jobs if pending is not None else ():
                if not future.done():
                    future.set_exception(failure)
            return True
        if not taken:
            return False
        self._leased_at = time.monotonic()
        await self._follow()
        return True

    async def _unlease(self) -> None:
        self._leased_at = None
        try:
            await self._writer.release()
        except Exception as exc:  # noqa: BLE001 (a lost connection has released it already)
            log.error("giving the journal's writer lease back failed: %s", exc)

    async def _retry(self, batch: Batch) -> bool:
        """The append met another writer's rows: catch up and decide the batch (and the one
        decided after it) again. False when there was nothing to catch up with (a real
        conflict: the caller fails the batch) or after too many tries in a row."""
        if self.observer is not None:
            self.observer.append_conflicted(len(batch.jobs))
        self._retries += 1
        if self._retries > _MAX_RETRIES:
            log.error("gave up after %d journal conflicts in a row", _MAX_RETRIES)
            return False
        try:
            caught = await self._catch_up()
        except Exception as exc:  # noqa: BLE001 (the processor must outlive any one batch)
            log.error("catching up after a journal conflict failed: %s", exc)
            return False
        if not caught:
            return False
        pending, self._pending = self._pending, None
        jobs = batch.jobs + (pending.jobs if pending is not None else [])
        fresh = Batch(self.state, None)
        self._pending = fresh
        await self._decide(fresh, jobs)
        return True

    async def _follow(self) -> None:
        """Catch up while the writer is free; the pending batch, decided against the state
        before, is decided again."""
        try:
            caught = await self._catch_up()
        except Exception as exc:  # noqa: BLE001 (the processor must outlive a journal that is down)
            log.error("catching up with the journal failed: %s", exc)
            self._target = self.state.seq  # until the next notice; reads waiting fail now
            self._syncs.fail(InternalError("the journal could not be read"))
            return
        if self._target > self.state.seq:
            self._target = self.state.seq  # a notice ahead of what is readable: forget it
            self._syncs.fail(InternalError("the journal could not be read"))
        pending = self._pending
        if caught and pending is not None:
            fresh = Batch(self.state, None)
            self._pending = fresh
            await self._decide(fresh, pending.jobs)

    async def _catch_up(self) -> int:
        """Fold and publish every event after the committed state; how many there were.
        Callers hold the writer (nothing in flight)."""
        caught = await catch_up(self.journal, self.committed, self.publisher)
        self._syncs.release(self.state.seq)
        return caught
