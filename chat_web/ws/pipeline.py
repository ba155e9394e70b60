"""Writes waiting for their commit while the reader reads on: a connection's lone write frames
(`Pipeline`) and the writes of one batch frame (`BatchWrites`).

A write's checks run and its command is queued on the processor from the reader itself, in
arrival order; the processor's future answers it through a callback (no task per write: a task
per command was ~5% of the event loop's time under bench/run.py's durable load). Whatever waits
for a commit meanwhile is bounded: `Pipeline.depth` lone frames, a batch's
`server.max_batch_requests` members.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final

from chat_core.errors import ChatError, InternalError, Unauthenticated
from chat_core.processor import Outcome
from chat_core.protocol.codes import Close
from chat_core.protocol.rpc import Call, encode_error, encode_result
from chat_web.audit import audit_call
from chat_web.methods import WRITES, Write, request_refusal
from chat_web.runtime import Runtime
from chat_web.ws.connection import Connection

# Lone write frames of one connection waiting for their commit at once; past this the
# reader stops reading (TCP pushes back on the client). Also at most a quarter of the send
# queue, so one commit's answers and echoes cannot overflow the sender's own queue.
MAX_PIPELINED: Final = 64


class Pending:
    """A write's place in the response order, and its answer once known."""

    __slots__ = ("call", "done", "outcome", "reply", "revoked")

    def __init__(self, call: Call) -> None:
        self.call = call
        self.done = False
        self.outcome = "ok"  # or the refusal's reason (for the audit line)
        self.reply: bytes | None = None
        self.revoked = False

    def answer(self, result: Any = None, error: ChatError | None = None) -> None:
        call = self.call
        self.done = True
        self.revoked = isinstance(error, Unauthenticated)
        if error is not None:
            self.outcome = error.reason
        if call.is_notification:
            return
        if error is not None:
            self.reply = encode_error(call.id, error.error_object())
        else:
            self.reply = encode_result(call.id, result)

    def audit(self, conn: Connection) -> None:
        """The audit line of a moderation write, as it is answered (`dispatch` does the same)."""
        call = self.call
        audit_call(call.method, conn.username, conn.address, call.params, self.outcome)


def needs_settled(call: Call) -> bool:
    """Whether a write must wait for the writes before it: naming no room, it reads the
    connection's current room, which an earlier join's answer may still move."""
    return getattr(call.params, "room_id", "") is None


async def start_write(
    rt: Runtime,
    conn: Connection,
    expires: int,
    slot: Pending,
    refusal: ChatError | None,
    settled: Callable[[], None],
) -> Write | None:
    """Run a write's checks and queue its command: the write once queued (`slot` is answered
    after its commit, then `settled` is called), None when `slot` is answered already (a
    refusal, an unjournaled message). `refusal`: the request budget's answer, if spent."""
    call = slot.call
    write: Write | None = None
    try:
        if expires <= time.time():
            raise expired()
        if refusal is not None:
            raise refusal
        started = WRITES[call.method](rt, conn, call.params, datetime.now(UTC))
        if isinstance(started, Write):
            write = started
            future = await rt.processor.enqueue(write.command)
            future.add_done_callback(partial(_committed, conn, slot, write, settled))
            return write
        slot.answer(started)
    except ChatError as exc:
        _undo(write)
        log_revoked(conn, exc)
        slot.answer(error=exc)
    except Exception:
        _undo(write)
        conn.log.exception("method %s failed (id=%r)", call.method, call.id)
        slot.answer(error=InternalError("internal error"))
    return None


def _committed(
    conn: Connection,
    slot: Pending,
    write: Write,
    settled: Callable[[], None],
    future: asyncio.Future[Outcome],
) -> None:
    call = slot.call
    if future.cancelled():
        _undo(write)
        slot.answer(error=InternalError("internal error"))
    elif (exc := future.exception()) is None:
        try:
            slot.answer(write.answer(future.result()))
        except Exception:
            conn.log.exception("method %s failed (id=%r)", call.method, call.id)
            slot.answer(error=InternalError("internal error"))
    elif isinstance(exc, ChatError):
        _undo(write)
        log_revoked(conn, exc)
        slot.answer(error=exc)
    else:
        _undo(write)
        conn.log.error("method %s failed (id=%r): %r", call.method, call.id, exc)
        slot.answer(error=InternalError("internal error"))
    settled()


class Pipeline:
    """The lone write frames of a connection waiting for their commit. Answers leave in
    request order: one that is ready waits in `pending` for those before it."""

    __slots__ = ("barrier", "conn", "depth", "expires", "pending", "rt", "waiter")

    def __init__(self, rt: Runtime, conn: Connection, expires: int) -> None:
        self.rt, self.conn, self.expires = rt, conn, expires
        self.pending: deque[Pending] = deque()
        # Resolved whenever answers leave, for `add` (depth) and `drain` waiting on them.
        self.waiter: asyncio.Future[None] | None = None
        self.depth = max(1, min(MAX_PIPELINED, rt.settings.server.send_queue_limit // 4))
        # A write whose answer changes the connection is in flight: the next frame waits.
        self.barrier = False

    async def add(self, call: Call) -> None:
        while len(self.pending) >= self.depth:
            await self._answers_left()
        slot = Pending(call)
        self.pending.append(slot)
        rt, conn = self.rt, self.conn
        # Counted as a lone request is: the budget first, then the token.
        refusal = request_refusal(rt, conn)
        write = await start_write(rt, conn, self.expires, slot, refusal, self._flush)
        if write is None:
            self._flush()
        elif write.barrier:
            self.barrier = True

    def _flush(self) -> None:
        """Send the answers that are ready and have no unanswered request before them."""
        pending, conn = self.pending, self.conn
        if not pending or not pending[0].done:
            return
        while pending and pending[0].done:
            slot = pending.popleft()
            slot.audit(conn)
            if slot.reply is not None:
                conn.send(slot.reply.decode())
            if slot.revoked:
                conn.close_after_queued(Close.UNAUTHORIZED)
        if not pending:
            self.barrier = False
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def _answers_left(self) -> None:
        if self.waiter is None:
            self.waiter = asyncio.get_running_loop().create_future()
        await self.waiter

    async def drain(self) -> None:
        """Wait until every write in flight is answered (before any other frame runs)."""
        while self.pending:
            await self._answers_left()


class BatchWrites:
    """The writes of one batch frame waiting for their commit: queued together, so they
    share a group commit, and the batch's answer (one array, after its last commit) leaves in
    the same write as their deliveries. A write that names no room, the write after a join and
    any other request first wait for them (`settle`), as in a batch run one request at a time."""

    __slots__ = ("barrier", "last", "left", "waiter")

    def __init__(self) -> None:
        self.left = 0  # queued, not yet answered
        self.barrier = False
        self.waiter: asyncio.Future[None] | None = None
        # Run by the callback that answers the last write (see `then`).
        self.last: Callable[[], None] | None = None

    async def start(
        self, rt: Runtime, conn: Connection, expires: int, slot: Pending, refusal: ChatError | None
    ) -> None:
        write = await start_write(rt, conn, expires, slot, refusal, self._settled)
        if write is not None:
            self.left += 1
            self.barrier = self.barrier or write.barrier

    def _settled(self) -> None:
        self.left -= 1
        if self.left:
            return
        last, self.last = self.last, None
        if last is not None:
            last()
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def then(self, last: Callable[[], None]) -> None:
        """Run `last` as soon as every write queued is answered, and return after it.

        Run by the commit's own callback, not by the awaiting task one turn later: the batch's
        answer is then queued in the same turn as the commit's deliveries and leaves in the
        same write (a task woken by the callback would run after the turn's flush)."""
        if not self.left:
            last()
            return
        self.last = last
        await self.settle()

    async def settle(self) -> None:
        """Wait until every write queued so far is answered."""
        while self.left:
            self.waiter = waiter = asyncio.get_running_loop().create_future()
            await waiter
        self.barrier = False


def _undo(write: Write | None) -> None:
    """Take back what a failed write's checks counted (a room creation)."""
    if write is not None and write.undo is not None:
        write.undo()


def log_revoked(conn: Connection, error: ChatError) -> None:
    if isinstance(error, Unauthenticated):
        conn.log.info("token no longer valid at %s: %s", datetime.now(UTC).isoformat(), error)


def expired() -> Unauthenticated:
    return Unauthenticated("the token has expired", "token_expired")
