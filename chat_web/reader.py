"""The reader loop of a connection: frames in, JSON-RPC responses queued out.

A frame's requests run in order; a batch's responses leave as one array frame; notifications
get no response; every request with an id gets exactly one. A failing request never closes
the socket, except an expired or revoked token (-32001, then close 4401), a binary frame
(1003) or, before it reaches us, an oversized frame (1009, closed by the WebSocket server).

Pipelining: a frame holding a lone `send_message` does not hold up the next frame while its
command waits for the group commit (a client sending fast would otherwise get one message
per commit). Its checks run and its command is queued on the processor in arrival order, as
before; only the wait for the commit overlaps with reading on. Responses still leave in
request order, and any other frame first waits for every send in flight, so what a client
observes is what it observed when frames ran one after the other.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any, Final

from chat_core.errors import ChatError, InternalError, Unauthenticated
from chat_core.rpc import Call, Parsed, encode_batch, encode_error, encode_result, parse_frame
from chat_web.connection import Connection
from chat_web.methods import dispatch
from chat_web.runtime import Runtime

UNSUPPORTED_DATA: Final = 1003
UNAUTHORIZED: Final = 4401
# Lone send_message frames of one connection waiting for their commit at once; past this the
# reader stops reading (TCP pushes back on the client). Also at most a quarter of the send
# queue, so one commit's answers and echoes cannot overflow the sender's own queue.
MAX_PIPELINED: Final = 64


async def read_frames(rt: Runtime, conn: Connection, expires: int) -> None:
    """Read and answer frames until the peer goes away or the connection is closing.

    `expires` is the token's expiry (unix seconds): past it, requests are refused (-32001).
    """
    receive = conn.socket.receive
    # Made at the first lone send_message: most connections never send one.
    sends: _Pipeline | None = None
    try:
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                code = message.get("code")
                if conn.close_code is None and isinstance(code, int):
                    conn.close_code = code
                return
            if kind != "websocket.receive":
                continue
            text = message.get("text")
            if not isinstance(text, str):
                conn.log.info("binary frame, closing with %d", UNSUPPORTED_DATA)
                conn.abort(UNSUPPORTED_DATA)
                return
            if conn.closing:
                # Closing (kicked, banned, slow): nothing more is answered.
                continue
            parsed = parse_frame(text)
            items = parsed.items
            if not parsed.is_batch and len(items) == 1:
                call = items[0]
                if isinstance(call, Call) and call.method == "send_message":
                    if sends is None:
                        sends = _Pipeline(rt, conn, expires)
                    await sends.add(call)
                    continue
            if sends is not None:
                await sends.drain()
            await _answer(rt, conn, expires, parsed)
    finally:
        if sends is not None:
            await sends.close()


class _Pipeline:
    """The lone send_message frames of a connection waiting for their commit."""

    __slots__ = ("conn", "depth", "expires", "last", "rt", "tasks")

    def __init__(self, rt: Runtime, conn: Connection, expires: int) -> None:
        self.rt, self.conn, self.expires = rt, conn, expires
        self.tasks: set[asyncio.Task[None]] = set()
        self.last: asyncio.Task[None] | None = None
        self.depth = max(1, min(MAX_PIPELINED, rt.settings.server.send_queue_limit // 4))

    async def add(self, call: Call) -> None:
        if len(self.tasks) >= self.depth:
            await asyncio.wait(self.tasks, return_when=asyncio.FIRST_COMPLETED)
        # Tasks start in creation order and each runs its checks and queues its command
        # before its first real wait, so commands reach the processor in arrival order.
        task = asyncio.create_task(self._one(call, self.last))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        self.last = task

    async def _one(self, call: Call, previous: asyncio.Task[None] | None) -> None:
        reply, revoked = await _run(self.rt, self.conn, self.expires, call)
        if previous is not None and not previous.done():
            # Responses leave in request order.
            await asyncio.wait((previous,))
        if self.conn.closing:
            return
        if reply is not None:
            self.conn.send(reply.decode())
        if revoked:
            self.conn.close_after_queued(UNAUTHORIZED)

    async def drain(self) -> None:
        """Wait until every send in flight is answered (before any other frame runs)."""
        if self.tasks:
            await asyncio.wait(self.tasks)

    async def close(self) -> None:
        """The socket is gone: let the commands in flight finish for a moment, then stop."""
        if self.tasks:
            _, pending = await asyncio.wait(self.tasks, timeout=5.0)
            for task in pending:
                task.cancel()


async def _answer(rt: Runtime, conn: Connection, expires: int, parsed: Parsed) -> None:
    parts: list[bytes] = []
    revoked = False
    for item in parsed.items:
        if revoked:
            # After a revoked token nothing else runs; requests still get their one answer.
            if isinstance(item, Call) and not item.is_notification:
                parts.append(encode_error(item.id, _expired().error_object()))
            continue
        if not isinstance(item, Call):
            parts.append(encode_error(item.id, item.error))
            continue
        reply, revoked = await _run(rt, conn, expires, item)
        if reply is not None:
            parts.append(reply)
    if parts:
        frame = encode_batch(parts) if parsed.is_batch else parts[0]
        conn.send(frame.decode())
    if revoked:
        conn.close_after_queued(UNAUTHORIZED)


def _expired() -> Unauthenticated:
    return Unauthenticated("the token has expired", "token_expired")


async def _run(
    rt: Runtime, conn: Connection, expires: int, call: Call
) -> tuple[bytes | None, bool]:
    """(the encoded response or None for a notification, whether the session is over)."""
    error: ChatError | None = None
    result: Any = None
    if expires <= time.time():
        error = _expired()
    else:
        try:
            result = await dispatch(rt, conn, call)
        except ChatError as exc:
            error = exc
        except Exception:
            conn.log.exception("method %s failed (id=%r)", call.method, call.id)
            error = InternalError("internal error")
    revoked = isinstance(error, Unauthenticated)
    if revoked:
        conn.log.info("token no longer valid at %s: %s", datetime.now(UTC).isoformat(), error)
    if call.is_notification:
        return None, revoked
    if error is not None:
        return encode_error(call.id, error.error_object()), revoked
    return encode_result(call.id, result), revoked
