"""`GET /ws`: authenticate, register with the hub, send the preamble, then read frames.

Refusals (docs/protocol.md section 2) happen before the handshake completes, as an HTTP answer
through the ASGI `websocket.http.response` extension (uvicorn has it); a server without it gets
an accepted socket closed at once with the matching 44xx code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qsl

import msgspec
from litestar import WebSocket, websocket
from litestar.types import WebSocketResponseBodyEvent, WebSocketResponseStartEvent

from chat_core.domain.decider import authorize
from chat_core.domain.rules import SYSTEM_ACTOR, user_key
from chat_core.domain.state import (
    ChatState,
    active_ban,
    current_room_of,
    rooms_of,
    token_refused,
)
from chat_core.errors import Banned, ChatError, Unauthenticated
from chat_core.protocol.codes import HTTP_STATUS, Close, RefusalReason
from chat_core.protocol.notifications import ConnectionEstablished, Notice, ResyncRequired
from chat_core.protocol.rpc import encode_notification
from chat_web.runtime import Runtime
from chat_web.tokens import Claims, verify_token
from chat_web.ws.connection import Connection
from chat_web.ws.direct import direct_writer
from chat_web.ws.reader import read_frames
from chat_web.ws.resume import backlog

log = logging.getLogger(__name__)

# A connection whose token has expired is closed with 4401 this long after the expiry if it
# has sent nothing since (a request after the expiry is answered -32001 first, then closed).
EXPIRY_GRACE_SECONDS: Final = 2.0
# A handshake refused for the connect rate waits this long at most before its answer.
MAX_CONNECT_PAUSE: Final = 1.0
_encoder = msgspec.json.Encoder()


class _Refusal(Exception):
    def __init__(self, code: Close, reason: RefusalReason | str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def _token_of(socket: WebSocket[Any, Any, Any]) -> str:
    # Read from the raw scope: `socket.headers` and `socket.query_params` would build and
    # keep (in the scope, for the socket's lifetime) a header map and a parsed query string,
    # ~2 KB per connection (bench/run.py, idle memory).
    for name, raw in socket.scope["headers"]:
        if name.lower() == b"authorization":
            scheme, _, value = raw.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                return value.strip()
            break
    token = _query_param(socket, "token")
    if not token:
        raise _Refusal(Close.UNAUTHORIZED, "missing_token", "no token given")
    return token


def _query_param(socket: WebSocket[Any, Any, Any], name: str) -> str | None:
    """The first value of a query parameter, parsed as Litestar does, but not kept."""
    query = socket.scope.get("query_string", b"")
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True, separator="&"):
        if key == name:
            return value
    return None


def _since_of(socket: WebSocket[Any, Any, Any]) -> int | None:
    text = _query_param(socket, "since")
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise _Refusal(Close.BAD_REQUEST, "invalid_since", "since must be a non-negative integer")
    return int(text)


def _batch_of(socket: WebSocket[Any, Any, Any]) -> bool:
    """Whether the client accepts several messages in one frame (`batch=1`)."""
    text = _query_param(socket, "batch")
    if text is None or text in ("0", "false"):
        return False
    if text in ("1", "true"):
        return True
    raise _Refusal(Close.BAD_REQUEST, "invalid_batch", "batch must be 1, true, 0 or false")


def _check_account(state: ChatState, token: Claims) -> str:
    """The account's canonical username, or a refusal (gone or revoked: 4401, banned: 4403)."""
    subject = token.sub
    if user_key(subject) == SYSTEM_ACTOR:
        # The server's own actor has no account and can never hold a session.
        raise _Refusal(Close.UNAUTHORIZED, "invalid_token", "invalid token")
    try:
        account = authorize(state, subject, datetime.now(UTC))
        if token_refused(state, account, token.tep, token.jti):
            raise _Refusal(Close.UNAUTHORIZED, "invalid_token", "the token was revoked")
        return account.username
    except Unauthenticated as exc:
        raise _Refusal(Close.UNAUTHORIZED, exc.reason, exc.message) from exc
    except Banned as exc:
        ban = active_ban(state, subject, datetime.now(UTC))
        until = ban.until.isoformat() if ban is not None and ban.until is not None else None
        raise _Refusal(Close.BANNED, "banned", f"banned until {until or 'further notice'}") from exc


async def _refuse(socket: WebSocket[Any, Any, Any], refusal: _Refusal, accepted: bool) -> None:
    """Refuse with an HTTP status when the server can, else accept and close with the code."""
    extensions = socket.scope.get("extensions") or {}
    body = _encoder.encode({"error": refusal.message, "reason": refusal.reason})
    with contextlib.suppress(Exception):
        if not accepted and "websocket.http.response" in extensions:
            await socket.receive()  # the websocket.connect event
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
            if refusal.code in (Close.TOO_MANY, Close.SERVER_ERROR):
                # As every 429 and 503 (docs/protocol.md section 1): a slot frees as a socket
                # closes; a node reaches its database again.
                headers.append((b"retry-after", b"1"))
            start: WebSocketResponseStartEvent = {
                "type": "websocket.http.response.start",
                "status": HTTP_STATUS[refusal.code],
                "headers": headers,
            }
            end: WebSocketResponseBodyEvent = {
                "type": "websocket.http.response.body",
                "body": body,
                "more_body": False,
            }
            await socket.send(start)
            await socket.send(end)
            return
        if not accepted:
            await socket.accept()
        await socket.close(refusal.code, refusal.reason)


@websocket("/ws")
async def chat_socket(socket: WebSocket[Any, Any, Any]) -> None:
    """One client connection, from handshake to close."""
    # One coroutine for the socket's whole life, keeping only what it needs (the token's
    # subject and expiry, not its claims, the snapshot or the preamble): a nested coroutine or
    # a kept local is held by every idle connection (bench/run.py, idle memory).
    rt: Runtime = socket.app.state.runtime
    address = socket.client.host if socket.client is not None else "unknown"
    try:
        since = _since_of(socket)
        batching = _batch_of(socket)
        token = _verify(rt.secret, _token_of(socket))
        subject, expires = token.sub, token.exp
        await _fresh(rt)
        _check_account(rt.processor.state, token)
        if rt.connections is not None and not rt.connections.try_acquire(address):
            raise _Refusal(Close.TOO_MANY, "too_many_connections", "too many connections from here")
    except _Refusal as refusal:
        # Debug, as the connection lines: a flood of refused handshakes must not flood the log.
        log.debug("websocket refused (%s) [addr=%s]", refusal.reason, address)
        await _refuse(socket, refusal, accepted=False)
        return
    try:
        wait = rt.connects.take(user_key(subject)) if rt.connects is not None else 0.0
        if wait > 0:
            # Held before the answer, in one of the address's slots: a connect/close loop
            # then costs one refused handshake a second a slot, not a core's worth of them.
            await asyncio.sleep(min(MAX_CONNECT_PAUSE, wait))
            too_fast = _Refusal(
                Close.TOO_MANY, "rate_limited", "too many connections opened; slow down"
            )
            await _refuse(socket, too_fast, accepted=False)
            return
        await socket.accept()
        try:
            conn = _open(rt, socket, token, since, address, batching)
        except _Refusal as refusal:  # the account changed during the handshake
            await _refuse(socket, refusal, accepted=True)
            return
        del token  # the connection keeps its jti; the claims need not live as long
        # An idle session must not outlive its token: nothing else would end it.
        expiry = asyncio.get_running_loop().call_later(
            max(0.0, expires + EXPIRY_GRACE_SECONDS - time.time()), _expire, conn
        )
        try:
            await read_frames(rt, conn, expires)
        except Exception:
            conn.log.exception("connection failed")
            conn.abort(Close.SERVER_ERROR)
        finally:
            expiry.cancel()
            rt.hub.unregister(conn)
            await conn.finish()
            rt.hub.count_close(conn.close_code)
            conn.log.debug("disconnected (code=%s)", conn.close_code)
    finally:
        if rt.connections is not None:
            rt.connections.release(address)


async def _fresh(rt: Runtime) -> None:
    """A node of a shared journal checks the token against every command acknowledged
    anywhere (an account registered, a password changed, a ban on another node)."""
    try:
        await rt.fresh()
    except ChatError as exc:
        raise _Refusal(
            Close.SERVER_ERROR, "unavailable", "the journal cannot be reached; try again"
        ) from exc


def _expire(conn: Connection) -> None:
    conn.log.info("token expired, closing with %d", Close.UNAUTHORIZED)
    conn.close_after_queued(Close.UNAUTHORIZED)


def _verify(secret: str, token: str) -> Claims:
    """The claims of a genuine, current token, else a refusal."""
    try:
        return verify_token(secret, token)
    except Unauthenticated as exc:
        raise _Refusal(Close.UNAUTHORIZED, exc.reason, exc.message) from exc


def _open(
    rt: Runtime,
    socket: WebSocket[Any, Any, Any],
    token: Claims,
    since: int | None,
    address: str,
    batching: bool,
) -> Connection:
    """The connection, registered with the hub and with its writer started."""
    # One synchronous step, no await: the snapshot (head H) and the registration, so the hub
    # delivers exactly the events after H to this connection.
    snapshot = rt.processor.state
    # The account may have changed meanwhile (a revocation included): checked again here, in
    # the step that registers, so a later revocation's event reaches this connection.
    username = _check_account(snapshot, token)
    account = snapshot.accounts[user_key(username)]
    conn = Connection(
        socket,
        connection_id=rt.next_connection_id(),
        username=username,
        key=user_key(username),
        address=address,
        current_room=current_room_of(snapshot, username),
        queue_limit=rt.settings.server.send_queue_limit,
        queue_bytes=rt.settings.server.send_queue_bytes,
        batching=batching,
        jti=token.jti,
        direct=direct_writer(socket.scope),
    )
    rt.hub.register(conn, snapshot)
    established = ConnectionEstablished(
        connection_id=conn.id,
        username=username,
        role=account.role,
        journal_seq=snapshot.seq,
        rooms=rooms_of(snapshot, username),
        current_room=conn.current_room,
        resumed=since is not None,
    )
    first = _notification("connection_established", established)

    async def preamble() -> None:
        await conn.write_now(first)
        if since is None or since >= snapshot.seq:
            return
        try:
            frames = await backlog(
                rt.journal,
                snapshot,
                username,
                since,
                rt.settings.chat.max_resume_events,
                rt.settings.server.send_queue_bytes,
            )
        except ChatError as exc:
            conn.log.error("resume from %d failed: %s", since, exc)
            frames = None
        if frames is None:
            conn.log.info("resume from %d: too much missed, resync_required", since)
            await conn.write_now(
                _notification("resync_required", ResyncRequired(journal_seq=snapshot.seq))
            )
            return
        await conn.write_all_now(frames)

    # Debug: one line per connect and per close would be most of the log under churn.
    conn.log.debug("connected (since=%s, head=%d)", since, snapshot.seq)
    conn.start_writer(preamble)
    return conn


def _notification(method: str, params: Notice) -> str:
    return encode_notification(method, params).decode()
