"""The WebSocket protocol client: JSON-RPC calls, notifications, reconnect and resume.

One `Session` is one logical chat session that may span several sockets. A runner task keeps
a socket open; when it drops for a reason worth retrying (server restart, network, slow
reader 4008) it reconnects with exponential backoff and jitter and resumes with
`since=<last seq seen>` (docs/protocol.md section 5). Given several server URLs (the nodes of
one chat), it opens the first that answers, and each try after a drop goes to the next URL
in turn, so a dead node is left for a live one within one short delay. Durable
notifications are deduplicated by seq, so nothing is shown twice; the server's resume
guarantees nothing is lost. Requests that are safe to repeat (reads, joins, messages with a
`client_msg_id`) are re-sent after a reconnect; others fail with `ConnectionLost` because
they may or may not have happened.

The consumer reads `SessionEvent`s from `events` (a bounded queue: when the UI falls behind,
the socket reader waits, and the server's own send queue limit decides, as for any slow
client).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from chat_cli import wire
from chat_core.protocol import notifications as n
from chat_core.protocol import params as p
from chat_core.protocol.codes import Close

R = TypeVar("R", bound=msgspec.Struct)
EndKind = Literal["kicked", "banned", "unauthenticated", "protocol", "closed", "unreachable"]
# Closes after which a new connection would be refused or pointless: the session is over.
_FINAL: dict[int, EndKind] = {
    Close.KICKED: "kicked",
    Close.BANNED: "banned",
    Close.UNAUTHORIZED: "unauthenticated",
    Close.UNSUPPORTED_DATA: "protocol",
    Close.TOO_BIG: "protocol",
}
# Methods that are harmless to send twice (reads, idempotent joins). `send_message` joins
# them when it carries a client_msg_id: the server then returns the first result again.
_RETRYABLE: tuple[type[p.Params], ...] = (
    p.JoinRoomParams,
    p.ListRoomsParams,
    p.ListMembersParams,
    p.GetHistoryParams,
    p.WhoamiParams,
    p.PingParams,
)


class RpcError(Exception):
    """A JSON-RPC error response (docs/protocol.md section 3)."""

    def __init__(self, code: int, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data or {}
        self.reason = str(self.data.get("reason", ""))


class ConnectionLost(Exception):
    """The socket dropped while a request that must not be repeated was in flight."""


class SessionEnded(Exception):
    """The session is over for good (`kind` says why); raised by calls made after it ended."""

    def __init__(self, kind: EndKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Notice:
    """A server notification (durable ones already deduplicated), decoded by the catalogue."""

    method: str
    params: n.Notice


@dataclass(frozen=True)
class Status:
    """The connection changed: connected (first time), reconnecting (with the delay), resumed
    (`detail`: the server URL connected to, or the delay before the next try in seconds)."""

    state: Literal["connected", "reconnecting", "resumed"]
    detail: str = ""
    info: n.ConnectionEstablished | None = None  # connection_established params
    retry_at: float | None = None  # reconnecting: when the next try starts (time.monotonic)
    why: str = ""  # reconnecting after a failed try: what went wrong


@dataclass(frozen=True)
class Ended:
    """The last event of a session."""

    error: SessionEnded


SessionEvent = Notice | Status | Ended


def ws_url(server: str, since: int | None) -> str:
    """The WebSocket endpoint of a server base URL (http -> ws, https -> wss).

    `batch=1`: the client reads frames holding several messages (docs/protocol.md section 2).
    """
    base = server.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base.removeprefix("https://")
    elif base.startswith("http://"):
        base = "ws://" + base.removeprefix("http://")
    return f"{base}/ws?batch=1" + (f"&since={since}" if since is not None else "")


def backoff_delay(attempt: int, base: float = 0.5, cap: float = 10.0) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, so a crowd of
    clients that lost one server spreads out instead of reconnecting in lock-step. Capped at
    10 s: a restarted server is found again within seconds, not half a minute."""
    ceiling = min(cap, base * 2.0**attempt)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


@dataclass
class _Pending:
    payload: bytes
    future: asyncio.Future[msgspec.Raw]
    retryable: bool
    generation: int = 0  # the connection it was last sent on (0: not sent yet)


class Session:
    """A chat session over one or more WebSocket connections. Use `start()`, then `call()`."""

    def __init__(
        self,
        servers: str | list[str],
        token: str,
        *,
        reconnect: bool = True,
        open_timeout: float = 10.0,
        queue_size: int = 10_000,
    ) -> None:
        self.servers = [servers] if isinstance(servers, str) else list(servers)
        self._index = 0  # the server of the current (or last) connection
        self._token = token
        self._reconnect = reconnect
        self._open_timeout = open_timeout
        self.events: asyncio.Queue[SessionEvent] = asyncio.Queue(maxsize=queue_size)
        self.last_seq: int | None = None  # the last durable seq seen: where a resume starts
        self.info: n.ConnectionEstablished | None = None  # the latest connection_established
        self._ws: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._ids = itertools.count(1)
        self._generation = 0  # counts connections, so a request is sent once on each
        self._pending: dict[int, _Pending] = {}
        self._runner: asyncio.Task[None] | None = None
        self._ended: SessionEnded | None = None
        self._closing = False

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> n.ConnectionEstablished:
        """Open the first connection; its `connection_established` params.

        Raises SessionEnded when no server can be reached or one refuses the token: each URL
        is tried once, in order, and none twice, so a typo in a URL fails fast.
        """
        failures: list[str] = []
        for index in range(len(self.servers)):
            self._index = index
            try:
                ws, info = await self._open(since=None)
                break
            except _Retry as exc:
                failures.append(str(exc))
        else:
            raise SessionEnded("unreachable", "; ".join(failures))
        self._attach(ws, info)
        await self._emit(Status("connected", self.server, info=info))
        self._runner = asyncio.create_task(self._run(ws), name="chat-session")
        return info

    async def close(self) -> None:
        """Close the socket normally (1000) and stop; pending calls fail with SessionEnded."""
        self._closing = True
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):  # TimeoutError included
                async with asyncio.timeout(2.0):
                    await ws.close()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner
        self._finish(SessionEnded("closed", "session closed"), emit=False)

    @property
    def ended(self) -> SessionEnded | None:
        return self._ended

    @property
    def server(self) -> str:
        """The URL of the current connection (or of the last one, or of the next try)."""
        return self.servers[self._index]

    @property
    def connected(self) -> bool:
        return self._ended is None and self._connected.is_set()

    async def wait_connected(self) -> bool:
        """Wait for a connection; False when the session is over instead."""
        await self._connected.wait()
        return self._ended is None

    # -- calls -----------------------------------------------------------------------------

    async def call(self, params: p.Params, result: type[R], within: float = 15.0) -> R:
        """Call the method of `params` and wait for its `result` (the catalogue's struct for
        that method); RpcError for an error response."""
        wire.check_result_type(params, result)
        if self._ended is not None:
            raise self._ended
        request_id = next(self._ids)
        retryable = isinstance(params, _RETRYABLE) or (
            isinstance(params, p.SendMessageParams) and bool(params.client_msg_id)
        )
        future: asyncio.Future[msgspec.Raw] = asyncio.get_running_loop().create_future()
        pending = _Pending(wire.encode_request(request_id, params), future, retryable)
        self._pending[request_id] = pending
        try:
            async with asyncio.timeout(within):
                await self._connected.wait()
                await self._send(pending)
                raw = await future
        except TimeoutError:
            method = wire.method_of(params)
            raise ConnectionLost(f"no answer to {method} within {within:g} s") from None
        finally:
            self._pending.pop(request_id, None)
        try:
            return wire.decode_result(raw, result)
        except msgspec.ValidationError as exc:
            raise RpcError(-32603, f"the server's answer was not understood: {exc}") from exc

    async def notify(self, params: p.Params) -> None:
        """Send a JSON-RPC notification (no answer); dropped while disconnected."""
        ws = self._ws
        if ws is None or not self._connected.is_set():
            return
        with contextlib.suppress(ConnectionClosed):
            await ws.send(wire.encode_request(None, params).decode())

    async def _send(self, pending: _Pending) -> None:
        ws = self._ws
        if ws is None or pending.generation == self._generation:
            return  # not connected (re-sent after the reconnect), or already sent on this one
        pending.generation = self._generation
        with contextlib.suppress(ConnectionClosed):
            # Text frames: the protocol closes binary frames with 1003.
            await ws.send(pending.payload.decode())

    # -- connection ------------------------------------------------------------------------

    async def _open(self, since: int | None) -> tuple[ClientConnection, n.ConnectionEstablished]:
        """Connect and read `connection_established`; SessionEnded if refused for good."""
        url = ws_url(self.server, since)
        try:
            ws = await connect(
                url,
                additional_headers={"Authorization": f"Bearer {self._token}"},
                open_timeout=self._open_timeout,
                max_size=2**22,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status == 401:
                raise SessionEnded(
                    "unauthenticated", "the server refused the token (expired or revoked)"
                ) from exc
            if status == 403:
                raise SessionEnded("banned", "you are banned from this server") from exc
            raise _Retry(f"handshake refused with HTTP {status}") from exc
        except InvalidURI as exc:
            raise SessionEnded("unreachable", f"invalid server URL {self.server!r}") from exc
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise _Retry(f"cannot reach {self.server} ({exc or type(exc).__name__})") from exc
        try:
            async with asyncio.timeout(self._open_timeout):
                first = await ws.recv()
        except ConnectionClosed as exc:
            raise _closed_error(exc) from exc
        except TimeoutError as exc:
            await ws.close()
            raise _Retry("no connection_established from the server") from exc
        messages = wire.decode_frame(first)
        info = wire.decode_notice(messages[0]) if len(messages) == 1 else None
        if not isinstance(info, n.ConnectionEstablished):
            await ws.close()
            raise _Retry("the server's first frame was not connection_established")
        return ws, info

    def _attach(self, ws: ClientConnection, info: n.ConnectionEstablished) -> None:
        self._ws = ws
        self._generation += 1
        self.info = info
        if self.last_seq is None:
            # A fresh session hears only what follows journal_seq: resume from there.
            self.last_seq = info.journal_seq
        self._connected.set()

    async def _run(self, ws: ClientConnection) -> None:
        attempt = 0
        while True:
            error = await self._read(ws)
            self._ws = None
            self._connected.clear()
            self._fail_unrepeatable()
            if self._closing:
                return
            if error is not None or not self._reconnect:
                self._finish(error or SessionEnded("closed", "the server closed the connection"))
                return
            why = ""
            while True:
                # One round of the servers per step of the backoff: a dead node is passed
                # over after one short delay, a whole chat down is retried ever more slowly.
                delay = backoff_delay(attempt // len(self.servers))
                attempt += 1
                self._index = (self._index + 1) % len(self.servers)
                retry_at = time.monotonic() + delay
                await self._emit(Status("reconnecting", f"{delay:.1f}", retry_at=retry_at, why=why))
                await asyncio.sleep(delay)
                try:
                    ws, info = await self._open(since=self.last_seq)
                except _Retry as failed:
                    why = str(failed)
                    continue
                except SessionEnded as ended:
                    self._finish(ended)
                    return
                break
            attempt = 0
            self._attach(ws, info)
            await self._emit(Status("resumed", self.server, info=info))
            for pending in list(self._pending.values()):
                await self._send(pending)

    async def _read(self, ws: ClientConnection) -> SessionEnded | None:
        """Dispatch frames until the socket closes; a final error, or None to reconnect."""
        try:
            async for frame in ws:
                for message in wire.decode_frame(frame):
                    await self._dispatch(message)
        except ConnectionClosed as exc:
            error = _closed_error(exc)
            return error if isinstance(error, SessionEnded) else None
        # A clean close by the server (1000/1001/1012) ends the iteration: resume it.
        code = ws.close_code
        if code in _FINAL:
            return SessionEnded(_FINAL[code], ws.close_reason or "")
        return None

    async def _dispatch(self, message: wire.Incoming) -> None:
        if message.is_response:
            request_id = message.id
            pending = self._pending.get(request_id) if isinstance(request_id, int) else None
            if pending is None or pending.future.done():
                return
            error = message.error
            if error is not None:
                pending.future.set_exception(RpcError(error.code, error.message, error.data))
            else:
                pending.future.set_result(message.result)
            return
        params = wire.decode_notice(message)
        if params is None or message.method is None:
            return  # a notification this client does not know: ignored
        seq = getattr(params, "seq", None)
        if isinstance(seq, int):
            # One order per connection, at most once: anything at or below the last seq seen
            # is a replay of what was already shown (a resume overlapping the live stream).
            if self.last_seq is not None and seq <= self.last_seq:
                return
            self.last_seq = seq
        elif isinstance(params, n.ResyncRequired):
            self.last_seq = params.journal_seq
        await self._emit(Notice(message.method, params))

    def _fail_unrepeatable(self) -> None:
        for pending in self._pending.values():
            if not pending.retryable and not pending.future.done():
                pending.future.set_exception(
                    ConnectionLost("connection lost; the command may or may not have been done")
                )

    def _finish(self, error: SessionEnded, *, emit: bool = True) -> None:
        if self._ended is not None:
            return
        self._ended = error
        self._connected.set()  # wake waiting calls, which then see the end
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(error)
        if emit:
            with contextlib.suppress(asyncio.QueueFull):
                self.events.put_nowait(Ended(error))

    async def _emit(self, event: SessionEvent) -> None:
        await self.events.put(event)


class _Retry(Exception):
    """A failed connection attempt worth retrying."""


def _closed_error(exc: ConnectionClosed) -> SessionEnded | _Retry:
    close = exc.rcvd
    if close is not None and close.code in _FINAL:
        return SessionEnded(_FINAL[close.code], close.reason)
    code = close.code if close is not None else 1006
    return _Retry(f"connection closed ({code})")
