"""A JSON-RPC 2.0 client of the chat's WebSocket protocol, for tests: over a real WebSocket
(the end-to-end tests, `Client.open`) or over anything with the same `send`, `recv` and
`close` (tests/web/frames_kit.py: the server's reader in process, no socket).

Every wait has a timeout and waits for a frame or an event, never for a fixed time.
"""

# The waits take an explicit `timeout` (seconds) on purpose: tests tune it per wait.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

DEFAULT_TIMEOUT = 5.0

Notification = dict[str, Any]


class RpcError(Exception):
    """A JSON-RPC error response, with its `code`, `reason` and whole `data`."""

    def __init__(self, error: dict[str, Any], request_id: Any = None) -> None:
        self.error = error
        self.code = error.get("code")
        self.message = error.get("message")
        self.data: dict[str, Any] = error.get("data") or {}
        self.reason = self.data.get("reason")
        self.request_id = request_id
        super().__init__(f"{self.code} {self.reason}: {self.message}")


class ConnectionLost(AssertionError):
    """The socket closed while a call or a wait was pending."""

    def __init__(self, what: str, code: int | None, reason: str) -> None:
        self.code = code
        super().__init__(f"{what}: the connection closed with {code} {reason!r}")


class HandshakeRefused(Exception):
    """The server refused the WebSocket: by HTTP status, or by closing before any frame."""

    def __init__(
        self,
        status: int | None = None,
        close_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.close_code = close_code
        self.headers = headers or {}  # the HTTP refusal's headers, names lowercased
        super().__init__(f"refused: HTTP {status}, close code {close_code}")


def unique(prefix: str = "u") -> str:
    """A fresh name (valid as a username and as a room name) so tests sharing a server never
    meet."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def parse_time(value: str) -> datetime:
    """An RFC 3339 UTC timestamp as an aware datetime; fails on anything else."""
    assert isinstance(value, str), value
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None and parsed.utcoffset() == UTC.utcoffset(None), value
    return parsed


def rpc_frame(request_id: str, method: str, params: dict[str, Any] | None = None) -> str:
    """A JSON-RPC request as a text frame (for `raw_send` and `request_raw`)."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return json.dumps(message)


def durable(notifications: list[Notification]) -> list[tuple[str, int]]:
    """(method, seq) of the notifications that carry a seq, in arrival order."""
    return [(n["method"], n["params"]["seq"]) for n in notifications if "seq" in n["params"]]


class Client:
    """One WebSocket connection speaking JSON-RPC 2.0.

    A background task reads every frame: answers to `call` resolve their futures,
    notifications go to `notifications` (everything, in order) and to a buffer consumed by
    `next_notification`, and any other frame (answers to `raw_send`) to `next_frame`.
    """

    def __init__(
        self, ws: ClientConnection, established: Notification, *, batch: bool = False
    ) -> None:
        self.ws = ws
        self.established = established
        # batch=True: the client asked for `batch=1`, so an array frame is several messages.
        self.batch = batch
        self.frame_sizes: list[int] = []  # messages per frame received after the first
        self.notifications: list[Notification] = [established]
        self._buffer: list[Notification] = []
        self._frames: list[Any] = []
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self.close_code: int | None = None
        self.close_reason = ""
        self._reader = asyncio.create_task(self._read())

    # --- opening and closing ------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        ws_url: str,
        token: str | None,
        since: int | None = None,
        *,
        via: str = "header",
        timeout: float = DEFAULT_TIMEOUT,
        batch: bool = False,
        **ws_options: Any,
    ) -> Client:
        """Connect and read the first frame, which must be `connection_established`."""
        if batch:
            ws_options["extra_query"] = {**ws_options.get("extra_query", {}), "batch": "1"}
        ws = await open_socket(ws_url, token, since, via=via, timeout=timeout, **ws_options)
        try:
            async with asyncio.timeout(timeout):
                first = await ws.recv()
        except ConnectionClosed as e:
            await ws.close()
            code = e.rcvd.code if e.rcvd else None
            raise HandshakeRefused(close_code=code) from e
        except BaseException:
            await ws.close()
            raise
        message = json.loads(first)
        if message.get("method") != "connection_established":
            await ws.close()
            raise AssertionError(f"the first frame is not connection_established: {message}")
        return cls(ws, message, batch=batch)

    async def close(self) -> None:
        """Close the socket (1000) and wait for the reader to finish."""
        await self.ws.close()
        await asyncio.wait_for(asyncio.shield(self._reader), DEFAULT_TIMEOUT)

    async def wait_closed(self, timeout: float = DEFAULT_TIMEOUT) -> int | None:
        """Wait until the server closes the socket; its close code."""
        async with asyncio.timeout(timeout):
            await asyncio.shield(self._reader)
        return self.close_code

    @property
    def is_closed(self) -> bool:
        return self._reader.done()

    # --- reading ------------------------------------------------------------------------------

    async def _read(self) -> None:
        try:
            while True:
                raw = await self.ws.recv()
                self._dispatch(raw)
                async with self._changed:
                    self._changed.notify_all()
        except ConnectionClosed as e:
            self.close_code = e.rcvd.code if e.rcvd else 1006
            self.close_reason = e.rcvd.reason if e.rcvd else ""
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionLost("call", self.close_code, self.close_reason))
            self._pending.clear()
            async with self._changed:
                self._changed.notify_all()

    def _dispatch(self, raw: str | bytes) -> None:
        message = json.loads(raw)
        if self.batch and isinstance(message, list):
            self.frame_sizes.append(len(message))
            for item in message:
                assert isinstance(item, dict), f"a nested array in a batched frame: {raw!r}"
                self._dispatch_one(item)
            return
        self.frame_sizes.append(1)
        self._dispatch_one(message)

    def _dispatch_one(self, message: Any) -> None:
        if isinstance(message, dict) and "method" in message and "id" not in message:
            message["_received_at"] = time.monotonic()
            self.notifications.append(message)
            self._buffer.append(message)
            return
        if isinstance(message, dict) and isinstance(message.get("id"), str):
            future = self._pending.pop(message["id"], None)
            if future is not None:
                if not future.done():
                    future.set_result(message)
                return
        self._frames.append(message)

    async def _wait_for(self, pick: Callable[[], Any], what: str, timeout: float) -> Any:
        """Wait until `pick()` returns something other than None."""
        try:
            async with asyncio.timeout(timeout), self._changed:
                while True:
                    found = pick()
                    if found is not None:
                        return found
                    if self.is_closed:
                        raise ConnectionLost(what, self.close_code, self.close_reason)
                    await self._changed.wait()
        except TimeoutError:
            seen = [n["method"] for n in self._buffer]
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what}; unread notifications: {seen}"
            ) from None

    async def next_notification(
        self,
        method: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> Notification:
        """The next unread notification (of `method`, with params satisfying `where`).

        Other notifications stay in the buffer for later calls.
        """

        def pick() -> Notification | None:
            for index, message in enumerate(self._buffer):
                if method is not None and message["method"] != method:
                    continue
                if where is not None and not where(message["params"]):
                    continue
                return self._buffer.pop(index)
            return None

        return await self._wait_for(pick, f"notification {method or '(any)'}", timeout)

    async def params_of(
        self,
        method: str,
        timeout: float = DEFAULT_TIMEOUT,
        **expected: Any,
    ) -> dict[str, Any]:
        """The params of the next `method` notification whose params include `expected`."""

        def matches(params: dict[str, Any]) -> bool:
            return all(params.get(key) == value for key, value in expected.items())

        message = await self.next_notification(method, timeout, where=matches)
        return message["params"]

    def unread(self, method: str | None = None) -> list[Notification]:
        """The buffered notifications (of `method`) not consumed yet."""
        return [m for m in self._buffer if method is None or m["method"] == method]

    def received(self, method: str) -> list[dict[str, Any]]:
        """The params of every notification of `method` received so far, in order."""
        return [m["params"] for m in self.notifications if m["method"] == method]

    async def next_frame(self, timeout: float = DEFAULT_TIMEOUT) -> Any:
        """The next frame that is neither a notification nor an answer to `call`."""
        return await self._wait_for(
            lambda: self._frames.pop(0) if self._frames else None, "a response frame", timeout
        )

    @property
    def stray_frames(self) -> list[Any]:
        return list(self._frames)

    # --- writing ------------------------------------------------------------------------------

    async def raw_send(self, data: str | bytes) -> None:
        """Send one frame as it is (a str is a text frame, bytes a binary frame)."""
        await self.ws.send(data)

    async def request(
        self, method: str, params: dict[str, Any] | None, timeout: float = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        """Send a request and return the whole response object."""
        request_id = f"c{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        try:
            await self.ws.send(json.dumps(message))
        except ConnectionClosed as e:
            self._pending.pop(request_id, None)
            raise ConnectionLost(method, e.rcvd.code if e.rcvd else None, "") from e
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            self._pending.pop(request_id, None)
            raise AssertionError(f"no response to {method} within {timeout}s") from None

    async def request_raw(
        self, frame: str, request_id: str, timeout: float = DEFAULT_TIMEOUT * 6
    ) -> dict[str, Any]:
        """Send a frame as it is, and return the response whose id is `request_id` (a string
        not of the `c<n>` form `request` uses); many may be in flight at once."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await self.ws.send(frame)
        except ConnectionClosed as e:
            self._pending.pop(request_id, None)
            raise ConnectionLost(request_id, e.rcvd.code if e.rcvd else None, "") from e
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            self._pending.pop(request_id, None)
            raise AssertionError(f"no response to {request_id} within {timeout}s") from None

    async def call(self, method: str, /, **params: Any) -> dict[str, Any]:
        """Call `method` with named params; its result, or RpcError."""
        response = await self.request(method, params)
        assert response.get("jsonrpc") == "2.0", response
        if "error" in response:
            raise RpcError(response["error"], response.get("id"))
        result = response["result"]
        assert isinstance(result, dict), f"{method} returned {result!r}, not an object"
        return result

    async def notify(self, method: str, /, **params: Any) -> None:
        """Send a JSON-RPC notification (no id)."""
        await self.ws.send(json.dumps({"jsonrpc": "2.0", "method": method, "params": params}))

    async def error_of(self, method: str, /, **params: Any) -> RpcError:
        """Call `method`, which must fail; its error."""
        try:
            result = await self.call(method, **params)
        except RpcError as e:
            return e
        raise AssertionError(f"{method}({params}) succeeded with {result}, expected an error")


async def open_socket(
    ws_url: str,
    token: str | None,
    since: int | None = None,
    *,
    via: str = "header",
    timeout: float = DEFAULT_TIMEOUT,
    extra_query: dict[str, str] | None = None,
    **ws_options: Any,
) -> ClientConnection:
    """Open a raw WebSocket to /ws with the token in the header or the query."""
    query: dict[str, str] = dict(extra_query or {})
    headers: dict[str, str] = {}
    if token is not None:
        if via == "header":
            headers["Authorization"] = f"Bearer {token}"
        else:
            query["token"] = token
    if since is not None:
        query["since"] = str(since)
    url = ws_url + (f"?{urlencode(query)}" if query else "")
    options: dict[str, Any] = {
        "additional_headers": headers,
        "proxy": None,
        "open_timeout": timeout,
        "close_timeout": timeout,
        "compression": None,
    }
    options.update(ws_options)
    try:
        return await ws_connect(url, **options)
    except InvalidStatus as e:
        headers = {name.lower(): value for name, value in e.response.headers.raw_items()}
        raise HandshakeRefused(status=e.response.status_code, headers=headers) from e
