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
ran one after the other. The writes of one batch frame are queued together the same way
(`pipeline.BatchWrites`): they share a group commit, and the batch's answer leaves with their
deliveries; a read in the batch, a write naming no room and the write after a join first wait
for the writes before them.

Throttling: after a request refused by the user's request budget, the connection's next frame
is read `conn.read_pause` later (see `methods.request_refusal`): TCP pushes back on the
client meanwhile, and nothing it sent is lost.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

from chat_core.errors import ChatError, InternalError, Unauthenticated
from chat_core.protocol.codes import Close
from chat_core.protocol.rpc import (
    Call,
    ErrorReply,
    Parsed,
    encode_batch,
    encode_error,
    encode_result,
    parse_frame,
)
from chat_web.methods import WRITES, dispatch, request_refusal
from chat_web.runtime import Runtime
from chat_web.ws.connection import Connection
from chat_web.ws.direct import direct_inbox
from chat_web.ws.pipeline import BatchWrites, Pending, Pipeline, expired, log_revoked, needs_settled


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
    sends: Pipeline | None = None
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
    rt: Runtime, conn: Connection, expires: int, parsed: Parsed, sends: Pipeline | None
) -> Pipeline | None:
    """Answer one parsed frame; the connection's pipeline (made at its first lone write)."""
    items = parsed.items
    if not parsed.is_batch and len(items) == 1:
        call = items[0]
        if isinstance(call, Call) and call.method in WRITES:
            if sends is None:
                sends = Pipeline(rt, conn, expires)
            elif sends.barrier or needs_settled(call):
                # The connection's current room may still move with a write in flight.
                await sends.drain()
            await sends.add(call)
            return sends
    if sends is not None:
        await sends.drain()
    await _answer(rt, conn, expires, parsed)
    return sends


async def _answer(rt: Runtime, conn: Connection, expires: int, parsed: Parsed) -> None:
    # Members answered by nobody (invalid notifications) count against the budget too.
    for _ in range(parsed.members - len(parsed.items)):
        request_refusal(rt, conn)
    answers = _Answers(rt, conn, expires, parsed.is_batch)
    for item in parsed.items:
        if not await answers.take(item):
            return
    await answers.send()


class _Answers:
    """One frame's answers in request order: those known, and a batch's writes waiting for
    their commit (`BatchWrites`)."""

    def __init__(self, rt: Runtime, conn: Connection, expires: int, is_batch: bool) -> None:
        self.rt, self.conn, self.expires, self.is_batch = rt, conn, expires, is_batch
        self.answers: list[bytes | Pending] = []
        self.writes = BatchWrites()
        self.size = 0
        self.revoked = False

    async def take(self, item: Call | ErrorReply) -> bool:
        """Answer or start one request; False once the connection is closed (4008)."""
        rt, conn, answers = self.rt, self.conn, self.answers
        refusal = request_refusal(rt, conn)
        is_write = self.is_batch and isinstance(item, Call) and item.method in WRITES
        if isinstance(item, Call) and self._waits(item, is_write):
            self.revoked = await self._settle()
        if self.revoked:
            # After a revoked token nothing else runs; requests still get their one answer.
            if isinstance(item, Call) and not item.is_notification:
                answers.append(encode_error(item.id, expired().error_object()))
            return True
        if not isinstance(item, Call):
            # Its own error, past the budget too (the read pause is what slows the client).
            answers.append(encode_error(item.id, item.error))
            return True
        if is_write:
            slot = Pending(item)
            answers.append(slot)
            await self.writes.start(rt, conn, self.expires, slot, refusal)
            return True
        reply, self.revoked = await _run(rt, conn, self.expires, item, refusal)
        if reply is not None:
            answers.append(reply)
            self.size += len(reply)
            return not _too_big(conn, self.size)
        return True

    def _waits(self, call: Call, is_write: bool) -> bool:
        """Whether `call` must wait for the batch's writes so far: anything but a write does
        (a read sees them), as do a write naming no room and the write after a join."""
        writes = self.writes
        if not writes.left or self.revoked:
            return False
        return not is_write or writes.barrier or needs_settled(call)

    async def _settle(self) -> bool:
        """Wait for the batch's writes so far; whether one found the session over."""
        await self.writes.settle()
        return any(isinstance(a, Pending) and a.revoked for a in self.answers)

    async def send(self) -> None:
        """Send the answers (one array for a batch) once the last write is answered."""
        await self.writes.then(self._send_now)

    def _send_now(self) -> None:
        conn, answers = self.conn, self.answers
        parts = _replies(conn, answers)
        if parts:
            if _too_big(conn, sum(map(len, parts))):
                return
            frame = encode_batch(parts) if self.is_batch else parts[0]
            conn.send(frame.decode())
        if self.revoked or any(isinstance(a, Pending) and a.revoked for a in answers):
            conn.close_after_queued(Close.UNAUTHORIZED)


def _replies(conn: Connection, answers: list[bytes | Pending]) -> list[bytes]:
    """The batch's answers in request order (its writes audited as they are answered)."""
    parts: list[bytes] = []
    for answer in answers:
        if isinstance(answer, Pending):
            answer.audit(conn)
            if answer.reply is not None:
                parts.append(answer.reply)
        else:
            parts.append(answer)
    return parts


def _too_big(conn: Connection, size: int) -> bool:
    """The answers would not fit in the send queue: stop building them (a batch of history
    pages can be megabytes) and close as the queue would (4008)."""
    if not conn.would_overflow(size):
        return False
    conn.log.warning("batch answer over send_queue_bytes, closing with %d", Close.SLOW_READER)
    conn.abort(Close.SLOW_READER)
    return True


async def _run(
    rt: Runtime, conn: Connection, expires: int, call: Call, refusal: ChatError | None
) -> tuple[bytes | None, bool]:
    """(the encoded response or None for a notification, whether the session is over).

    `refusal`: the budget's answer to this request, if it is spent.
    """
    error: ChatError | None = None
    result: Any = None
    if expires <= time.time():
        error = expired()
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
        log_revoked(conn, error)
    if call.is_notification:
        return None, revoked
    if error is not None:
        return encode_error(call.id, error.error_object()), revoked
    return encode_result(call.id, result), revoked
