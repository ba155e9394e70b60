"""The reader loop of a connection: frames in, JSON-RPC responses queued out.

A frame's requests run in order; a batch's responses leave as one array frame; notifications
get no response; every request with an id gets exactly one. A failing request never closes
the socket, except an expired or revoked token (-32001, then close 4401), a binary frame
(1003) or, before it reaches us, an oversized frame (1009, closed by the WebSocket server).

Pipelining: a frame holding a lone write (any method of `methods.WRITES`) does not hold up the
next frame while its command waits for the group commit (a client sending fast would otherwise
get one message per commit). Its checks run and its command is queued on the processor in
arrival order, as before; only the wait for the commit overlaps with reading on. Responses
still leave in request order, and any other frame first waits for every write in flight, as
does a write that names no room (it reads the connection's current room) and the frame after
a join (its answer sets that room): what a client observes is what it observed when frames
ran one after the other.

Throttling: after a request refused by the user's request budget, the connection's next frame
is read `conn.read_pause` later (see `methods.request_refusal`): TCP pushes back on the
client meanwhile, and nothing it sent is lost.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final, Literal

from chat_core.errors import ChatError, InternalError, Unauthenticated
from chat_core.processor import Outcome
from chat_core.protocol.codes import Close
from chat_core.protocol.rpc import (
    Call,
    Parsed,
    encode_batch,
    encode_error,
    encode_result,
    parse_frame,
)
from chat_web.audit import audit_call
from chat_web.methods import WRITES, Write, dispatch, request_refusal
from chat_web.runtime import Runtime
from chat_web.ws.connection import Connection
from chat_web.ws.direct import direct_inbox

# Lone write frames of one connection waiting for their commit at once; past this the
# reader stops reading (TCP pushes back on the client). Also at most a quarter of the send
# queue, so one commit's answers and echoes cannot overflow the sender's own queue.
MAX_PIPELINED: Final = 64


async def read_frames(rt: Runtime, conn: Connection, expires: int) -> None:
    """Read and answer frames until the peer goes away or the connection is closing.

    `expires` is the token's expiry (unix seconds): past it, requests are refused (-32001).
    """
    # The socket's inbox when the server keeps one (a text message as its str), else ASGI.
    inbox = direct_inbox(conn.socket.scope)
    receive = conn.socket.receive if inbox is None else inbox.next
    max_batch = rt.settings.server.max_batch_requests
    gate = rt.hub.gate
    # Made at the first lone write: most connections never send one. Commands still
    # in flight when the peer goes away commit and answer through their callbacks, which
    # send nothing once the connection is closing.
    sends: _Pipeline | None = None
    while True:
        if conn.read_pause:
            pause, conn.read_pause = conn.read_pause, 0.0
            await asyncio.sleep(pause)
        message: Any = await receive()
        if type(message) is str:
            text = message
        else:
            event = _event_text(conn, message, inbox is not None)
            if event is None:
                return
            if event is False:
                continue
            text = event
        if conn.closing:
            # Closing (kicked, banned, slow): nothing more is answered.
            continue
        turn = gate(conn.key)
        if turn is None:
            sends = await _handle(rt, conn, expires, parse_frame(text, max_batch), sends)
            continue
        async with turn:
            sends = await _handle(rt, conn, expires, parse_frame(text, max_batch), sends)
            # Still holding the turn, let the loop go round once: the user's other sockets
            # queue on the lock meanwhile, so the user gets one frame a turn, not one a socket.
            await asyncio.sleep(0)


def _event_text(
    conn: Connection, message: dict[str, Any], direct: bool
) -> str | Literal[False] | None:
    """The text of an ASGI receive event; None once the reader must stop (the peer is gone,
    a binary frame), False for an event to pass over."""
    kind = message["type"]
    if kind == "websocket.disconnect":
        code = message.get("code")
        if conn.close_code is None and isinstance(code, int):
            conn.close_code = code
        if direct:  # read past Litestar's receive: note it as that would have
            conn.socket.connection_state = "disconnect"
        return None
    if kind != "websocket.receive":
        return False
    text = message.get("text")
    if not isinstance(text, str):
        conn.log.info("binary frame, closing with %d", Close.UNSUPPORTED_DATA)
        conn.abort(Close.UNSUPPORTED_DATA)
        return None
    return text


async def _handle(
    rt: Runtime, conn: Connection, expires: int, parsed: Parsed, sends: _Pipeline | None
) -> _Pipeline | None:
    """Answer one parsed frame; the connection's pipeline (made at its first lone write)."""
    items = parsed.items
    if not parsed.is_batch and len(items) == 1:
        call = items[0]
        if isinstance(call, Call) and call.method in WRITES:
            if sends is None:
                sends = _Pipeline(rt, conn, expires)
            elif sends.barrier or getattr(call.params, "room_id", "") is None:
                # The connection's current room may still move with a write in flight.
                await sends.drain()
            await sends.add(call)
            return sends
    if sends is not None:
        await sends.drain()
    await _answer(rt, conn, expires, parsed)
    return sends


class _Pending:
    """A pipelined write's place in the response order, and its answer once known."""

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


class _Pipeline:
    """The lone write frames of a connection waiting for their commit.

    No task per write: the checks run and the command is queued on the processor from the
    reader itself, and the processor's future answers through a callback (a task per command
    was ~5% of the event loop's time under bench/run.py's durable load). Answers leave in
    request order: one that is ready waits in `pending` for those before it.
    """

    __slots__ = ("barrier", "conn", "depth", "expires", "pending", "rt", "waiter")

    def __init__(self, rt: Runtime, conn: Connection, expires: int) -> None:
        self.rt, self.conn, self.expires = rt, conn, expires
        self.pending: deque[_Pending] = deque()
        # Resolved whenever answers leave, for `add` (depth) and `drain` waiting on them.
        self.waiter: asyncio.Future[None] | None = None
        self.depth = max(1, min(MAX_PIPELINED, rt.settings.server.send_queue_limit // 4))
        # A write whose answer changes the connection is in flight: the next frame waits.
        self.barrier = False

    async def add(self, call: Call) -> None:
        while len(self.pending) >= self.depth:
            await self._answers_left()
        slot = _Pending(call)
        self.pending.append(slot)
        rt, conn = self.rt, self.conn
        write: Write | None = None
        # Counted as `_answer` counts a lone request: the budget first, then the token.
        refusal = request_refusal(rt, conn)
        try:
            if self.expires <= time.time():
                raise _expired()
            if refusal is not None:
                raise refusal
            started = WRITES[call.method](rt, conn, call.params, datetime.now(UTC))
            if isinstance(started, Write):
                write = started
                future = await rt.processor.enqueue(write.command)
                if write.barrier:
                    self.barrier = True
                future.add_done_callback(partial(self._committed, slot, write))
                return
            slot.answer(started)
        except ChatError as exc:
            _undo(write)
            _log_revoked(conn, exc)
            slot.answer(error=exc)
        except Exception:
            _undo(write)
            conn.log.exception("method %s failed (id=%r)", call.method, call.id)
            slot.answer(error=InternalError("internal error"))
        self._flush()

    def _committed(self, slot: _Pending, write: Write, future: asyncio.Future[Outcome]) -> None:
        call = slot.call
        if future.cancelled():
            _undo(write)
            slot.answer(error=InternalError("internal error"))
        elif (exc := future.exception()) is None:
            try:
                slot.answer(write.answer(future.result()))
            except Exception:
                self.conn.log.exception("method %s failed (id=%r)", call.method, call.id)
                slot.answer(error=InternalError("internal error"))
        elif isinstance(exc, ChatError):
            _undo(write)
            _log_revoked(self.conn, exc)
            slot.answer(error=exc)
        else:
            _undo(write)
            self.conn.log.error("method %s failed (id=%r): %r", call.method, call.id, exc)
            slot.answer(error=InternalError("internal error"))
        self._flush()

    def _flush(self) -> None:
        """Send the answers that are ready and have no unanswered request before them."""
        pending, conn = self.pending, self.conn
        if not pending or not pending[0].done:
            return
        while pending and pending[0].done:
            slot = pending.popleft()
            call = slot.call
            # Audited writes (moderation) are logged as their answer leaves, as `dispatch` does.
            audit_call(call.method, conn.username, conn.address, call.params, slot.outcome)
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


async def _answer(rt: Runtime, conn: Connection, expires: int, parsed: Parsed) -> None:
    # Members answered by nobody (invalid notifications) count against the budget too.
    for _ in range(parsed.members - len(parsed.items)):
        request_refusal(rt, conn)
    parts: list[bytes] = []
    size = 0
    revoked = False
    for item in parsed.items:
        refusal = request_refusal(rt, conn)
        if revoked:
            # After a revoked token nothing else runs; requests still get their one answer.
            if isinstance(item, Call) and not item.is_notification:
                parts.append(encode_error(item.id, _expired().error_object()))
            continue
        if not isinstance(item, Call):
            # Its own error, past the budget too (the read pause is what slows the client).
            reply: bytes | None = encode_error(item.id, item.error)
        else:
            reply, revoked = await _run(rt, conn, expires, item, refusal)
        if reply is not None:
            parts.append(reply)
            size += len(reply)
            if conn.would_overflow(size):
                # The answers would not fit in the send queue: stop building them (a batch of
                # history pages can be megabytes) and close as the queue would (4008).
                conn.log.warning(
                    "batch answer over send_queue_bytes, closing with %d", Close.SLOW_READER
                )
                conn.abort(Close.SLOW_READER)
                return
    if parts:
        frame = encode_batch(parts) if parsed.is_batch else parts[0]
        conn.send(frame.decode())
    if revoked:
        conn.close_after_queued(Close.UNAUTHORIZED)


def _undo(write: Write | None) -> None:
    """Take back what a failed write's checks counted (a room creation)."""
    if write is not None and write.undo is not None:
        write.undo()


def _log_revoked(conn: Connection, error: ChatError) -> None:
    if isinstance(error, Unauthenticated):
        conn.log.info("token no longer valid at %s: %s", datetime.now(UTC).isoformat(), error)


def _expired() -> Unauthenticated:
    return Unauthenticated("the token has expired", "token_expired")


async def _run(
    rt: Runtime, conn: Connection, expires: int, call: Call, refusal: ChatError | None
) -> tuple[bytes | None, bool]:
    """(the encoded response or None for a notification, whether the session is over).

    `refusal`: the budget's answer to this request, if it is spent.
    """
    error: ChatError | None = None
    result: Any = None
    if expires <= time.time():
        error = _expired()
    elif refusal is not None:
        error = refusal
    else:
        try:
            result = await dispatch(rt, conn, call)
        except ChatError as exc:
            error = exc
        except Exception:
            conn.log.exception("method %s failed (id=%r)", call.method, call.id)
            error = InternalError("internal error")
    revoked = isinstance(error, Unauthenticated)
    if error is not None:
        _log_revoked(conn, error)
    if call.is_notification:
        return None, revoked
    if error is not None:
        return encode_error(call.id, error.error_object()), revoked
    return encode_result(call.id, result), revoked
