"""One WebSocket connection: its identity, its bounded send queue and its single writer.

Everything that reaches the socket goes through `send` (never blocks: a full queue closes the
connection with 4008) and the one writer task, so frames leave in the order they were queued
and nobody ever awaits a slow client. `close_after_queued` lets the frames already queued out
first (a kick or ban notification), `abort` drops them and closes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Final

from litestar import WebSocket
from litestar.types import WebSocketCloseEvent, WebSocketSendEvent

from chat_web.logging_setup import ConnectionLogger

SLOW_READER: Final = 4008
# How long a close waits for queued frames and the closing handshake before giving up.
CLOSE_TIMEOUT: Final = 5.0


class _Close:
    """A queue item: close the socket with `code` once the frames before it are written."""

    __slots__ = ("code",)

    def __init__(self, code: int) -> None:
        self.code = code


class Connection:
    """A connected, authenticated socket of one user."""

    def __init__(
        self,
        socket: WebSocket[Any, Any, Any],
        *,
        connection_id: str,
        username: str,
        key: str,
        address: str,
        current_room: str | None,
        queue_limit: int,
        log: ConnectionLogger,
    ) -> None:
        self.socket = socket
        self.id = connection_id
        self.username = username  # canonical spelling at connect time
        self.key = key
        self.address = address
        self.current_room = current_room
        self.log = log
        self._queue: asyncio.Queue[str | _Close] = asyncio.Queue(maxsize=queue_limit)
        self.closing = False  # once set, nothing more is queued
        self.close_code: int | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    # --- queueing (synchronous: called from the hub's fan-out) ------------------------------

    def send(self, frame: str) -> None:
        """Queue a text frame; a full queue means a slow reader, which is closed with 4008."""
        if self.closing:
            return
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.log.warning("send queue overflow, closing with %d", SLOW_READER)
            self.abort(SLOW_READER)

    def close_after_queued(self, code: int, timeout: float = CLOSE_TIMEOUT) -> None:
        """Close with `code` after the frames already queued, or at the latest after `timeout`."""
        if self.closing:
            return
        self.closing = True
        self.close_code = code
        try:
            self._queue.put_nowait(_Close(code))
        except asyncio.QueueFull:
            self.abort(code)
            return
        self._timer = asyncio.get_running_loop().call_later(timeout, self.abort, code)

    def abort(self, code: int) -> None:
        """Drop whatever is queued and close with `code` now."""
        self.closing = True
        if self._closer is not None:
            return
        if self.close_code is None:
            self.close_code = code
        if self._writer is not None:
            self._writer.cancel()
        self._closer = asyncio.create_task(self._close(code), name=f"close-{self.id}")

    # --- the writer task --------------------------------------------------------------------

    def start_writer(self, preamble: Callable[[], Awaitable[None]]) -> None:
        """Start the writer: `preamble` (the first frames: established, backlog), then the queue."""
        self._writer = asyncio.create_task(self._write(preamble), name=f"writer-{self.id}")

    async def write_now(self, frame: str) -> None:
        """Write a frame directly: only for the preamble, which runs inside the writer."""
        await self.socket.send(_text(frame))

    async def _write(self, preamble: Callable[[], Awaitable[None]]) -> None:
        try:
            await preamble()
            while True:
                item = await self._queue.get()
                if isinstance(item, _Close):
                    self._cancel_timer()
                    if self._closer is None:
                        self._closer = asyncio.create_task(self._close(item.code))
                    return
                await self.socket.send(_text(item))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the peer went away mid-send: the reader loop sees it too
            self.log.debug("writer stopped: %r", exc)
            self.closing = True

    async def _close(self, code: int) -> None:
        self._cancel_timer()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self.socket.send(_close_event(code)),
                CLOSE_TIMEOUT,
            )

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def finish(self) -> None:
        """Stop the writer and any close in flight (the socket is gone or closing)."""
        self.closing = True
        self._cancel_timer()
        for task in (self._writer, self._closer):
            if task is not None and not task.done():
                if task is self._writer:
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, CLOSE_TIMEOUT)


def _text(frame: str) -> WebSocketSendEvent:
    return {"type": "websocket.send", "text": frame, "bytes": None}


def _close_event(code: int) -> WebSocketCloseEvent:
    return {"type": "websocket.close", "code": code, "reason": ""}
