"""The reader loop of a connection: frames in, JSON-RPC responses queued out.

A frame's requests run in order; a batch's responses leave as one array frame; notifications
get no response; every request with an id gets exactly one. A failing request never closes
the socket, except an expired or revoked token (-32001, then close 4401), a binary frame
(1003) or, before it reaches us, an oversized frame (1009, closed by the WebSocket server).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Final

from chat_core.errors import ChatError, InternalError, Unauthenticated
from chat_core.rpc import Call, encode_batch, encode_error, encode_result, parse_frame
from chat_core.tokens import Claims
from chat_web.connection import Connection
from chat_web.methods import dispatch
from chat_web.runtime import Runtime

UNSUPPORTED_DATA: Final = 1003
UNAUTHORIZED: Final = 4401


async def read_frames(rt: Runtime, conn: Connection, claims: Claims) -> None:
    """Read and answer frames until the peer goes away or the connection is closing."""
    receive = conn.socket.receive
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
        await _answer(rt, conn, claims, text)


async def _answer(rt: Runtime, conn: Connection, claims: Claims, text: str) -> None:
    parsed = parse_frame(text)
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
        reply, revoked = await _run(rt, conn, claims, item)
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
    rt: Runtime, conn: Connection, claims: Claims, call: Call
) -> tuple[bytes | None, bool]:
    """(the encoded response or None for a notification, whether the session is over)."""
    error: ChatError | None = None
    result: Any = None
    if claims.exp <= time.time():
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
