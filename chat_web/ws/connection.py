"""One WebSocket connection: its identity, its bounded send queue and its single writer.

Everything that reaches the socket goes through `send` (never blocks: a full queue closes the
connection with 4008) and the one writer task, so frames leave in the order they were queued
and nobody ever awaits a slow client. `close_after_queued` lets the frames already queued out
first (a kick or ban notification), `abort` drops them and closes at once.

A client that connected with `batch=1` (docs/protocol.md section 2) gets whatever is queued when
the writer wakes as one array frame: under load most of a frame's cost is the socket write,
so a command's answer and its room's deliveries leaving together cost about one write instead
of five (bench/run.py, durable). Nothing waits to fill a frame, so it costs no latency.

Direct writes: when the server gives the socket's raw-write path (`chat_web.ws.direct`), what
is sent after the preamble does not go through the writer task and ASGI `send` but is kept
as framed bytes (the hub frames a notification once for all its recipients) and written in one
`transport.write`. The connections with bytes pending are on the event loop's `Flusher`: one
callback per turn of the loop writes every one of them (a fan-out to N sockets schedules one
callback, not N), so whatever a turn queued for a socket leaves together, a lone message at
the end of its turn: nothing waits to fill a write. The transport's buffer is the send queue:
unsent bytes past `server.send_queue_bytes` close the connection with 4008. The preamble and
the closing handshake still go through ASGI.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final

from litestar import WebSocket
from litestar.types import WebSocketCloseEvent, WebSocketSendEvent

from chat_core.protocol.codes import Close
from chat_web.logging_setup import ConnectionLogger, connection_logger
from chat_web.ws.direct import DirectWriter, text_frame

# How long a close waits for queued frames and the closing handshake before giving up.
CLOSE_TIMEOUT: Final = 5.0
# A batching client's array frame: at most this many messages, and no message added once it
# holds this many characters (a frame is at most this plus one message).
MAX_BATCH: Final = 256
MAX_BATCH_CHARS: Final = 65_536

log = logging.getLogger(__name__)


class _Close:
    """A queue item: close the socket with `code` once the frames before it are written."""

    __slots__ = ("code",)

    def __init__(self, code: int) -> None:
        self.code = code


class Flusher:
    """The connections of one event loop with direct-write bytes pending, and the one callback
    per turn of the loop that writes each of them (`Connection._flush`).

    A round is the list of connections one scheduled callback writes; a connection is on at
    most one (`Connection._round`). `new_round` (the hub calls it before fanning out a commit)
    starts a list written by a callback scheduled from then on, so after the callbacks already
    scheduled: the reader's answers to that commit's commands, which its futures schedule just
    before. A connection touched again moves to the new round (the old one skips it), so a
    command's ack and its room's deliveries leave the sender's socket in one write, in order.
    """

    # No reference to its loop: the loop is the key of `_FLUSHERS`, a weak one.
    __slots__ = ("_scheduled", "dirty")

    def __init__(self) -> None:
        self.dirty: list[Connection] = []
        self._scheduled = False

    def mark(self, conn: Connection) -> None:
        """`conn` has bytes pending: write them in the current round."""
        dirty = self.dirty
        conn._round = dirty
        dirty.append(conn)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._run, dirty)

    def new_round(self) -> None:
        """What is sent from now on leaves after the callbacks already scheduled."""
        if self._scheduled:
            self.dirty = []
            self._scheduled = False

    def _run(self, dirty: list[Connection]) -> None:
        if dirty is self.dirty:
            self.dirty = []
            self._scheduled = False
        for conn in dirty:
            if conn._round is dirty:  # else it moved to a later round
                conn._round = None
                try:
                    conn._flush()
                except Exception:  # one socket must not stop the others' writes
                    log.exception("writing to connection %s failed", conn.id)
                    conn.abort(Close.SERVER_ERROR)


_FLUSHERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Flusher] = (
    weakref.WeakKeyDictionary()
)


def flusher_of(loop: asyncio.AbstractEventLoop) -> Flusher:
    """The loop's flusher (made at its first direct-write connection)."""
    flusher = _FLUSHERS.get(loop)
    if flusher is None:
        flusher = _FLUSHERS[loop] = Flusher()
    return flusher


def new_round() -> None:
    """Start a new round of the running loop's flusher, if it has one (see `Flusher`)."""
    with contextlib.suppress(RuntimeError):  # no running loop: nothing is pending
        flusher = _FLUSHERS.get(asyncio.get_running_loop())
        if flusher is not None:
            flusher.new_round()


class Connection:
    """A connected, authenticated socket of one user."""

    # Slots, not a __dict__: ~0.9 KB less per idle connection (bench/run.py, idle memory).
    # A new attribute must be listed here.
    __slots__ = (
        "_byte_limit",
        "_closer",
        "_direct",
        "_flusher",
        "_limit",
        "_max_out",
        "_out",
        "_queue",
        "_queued_bytes",
        "_ready",
        "_round",
        "_timer",
        "_unsent_seen",
        "_wakeup",
        "_writer",
        "address",
        "batching",
        "close_code",
        "closing",
        "current_room",
        "id",
        "jti",
        "key",
        "read_pause",
        "refusals",
        "socket",
        "username",
    )

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
        queue_bytes: int = 0,
        batching: bool = False,
        jti: str = "",
        direct: DirectWriter | None = None,
    ) -> None:
        self.socket = socket
        self.jti = jti  # the token's id: a logout of that token closes this connection
        self.id = connection_id
        self.username = username  # canonical spelling at connect time
        self.key = key
        self.address = address
        self.current_room = current_room
        self.batching = batching
        # Seconds the reader waits before its next frame: set when the request budget ran out
        # (methods.request_refusal), taken by chat_web.ws.reader.
        self.read_pause = 0.0
        # Requests refused by the budget in a row: each doubles the next read pause.
        self.refusals = 0
        # A bare deque and one wake-up future, not an asyncio.Queue: the queue costs ~3 KB per
        # idle connection (three deques, an Event), this ~0.8 KB (bench/run.py, idle memory).
        # Made once, not dropped when drained: a new deque per burst costs the fan-out more.
        self._queue: deque[str | _Close] = deque()
        self._limit = queue_limit if queue_limit > 0 else None
        # Bounded in bytes too: one frame can be large (a batch's responses, a history page).
        # Counted as characters of JSON text: bytes for ASCII, at most 4 bytes a character.
        self._byte_limit = queue_bytes if queue_bytes > 0 else None
        self._queued_bytes = 0
        self._wakeup: asyncio.Future[None] | None = None
        self.closing = False  # once set, nothing more is queued
        self.close_code: int | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        # Direct writes: the pending frames (bytes framed by the hub; a batching client's
        # texts, joined at the write), the loop's flusher and the round of it that writes them
        # (None: not on its list), and whether the preamble is out (nothing is written before).
        self._direct = direct
        self._flusher = flusher_of(asyncio.get_running_loop()) if direct is not None else None
        self._round: list[Connection] | None = None
        self._out: list[Any] = []
        self._max_out = self._limit if self._limit is not None else sys.maxsize
        self._ready = False
        self._unsent_seen = 0

    @property
    def log(self) -> ConnectionLogger:
        """A logger tagged with this connection; built when needed, as lines are rare."""
        return connection_logger("chat_web.ws", self.id, self.username, self.address)

    # --- queueing (synchronous: called from the hub's fan-out) ------------------------------

    def send(self, frame: str, wire: bytes | None = None) -> None:
        """Queue a text frame (`wire`: the same, already framed); a full queue
        (`server.send_queue_limit` frames or `server.send_queue_bytes`) means a slow reader,
        which is closed with 4008."""
        if self.closing:
            return
        flusher = self._flusher
        if flusher is None:  # no direct writes: the writer task's queue
            if not self._put(frame):
                self._overflow()
            return
        # Direct writes: the per-recipient work of a fan-out, kept to a list append; the byte
        # bound is checked once per write, in `_flush`.
        out = self._out
        if self.batching:
            out.append(frame)  # joined with its neighbours into one array at the write
        elif wire is not None:
            out.append(wire)
        else:
            out.append(text_frame(frame.encode()))
        self._grew(flusher)

    def send_many(self, frames: list[str], wires: list[bytes]) -> None:
        """`send` of each frame in turn (`wires`: the same, framed), in one call."""
        if self.closing:
            return
        flusher = self._flusher
        if flusher is None:
            for frame in frames:
                self.send(frame)
            return
        self._out.extend(frames if self.batching else wires)
        self._grew(flusher)

    def _grew(self, flusher: Flusher) -> None:
        """Frames were added to the pending list: past the frame bound close with 4008, else
        be written in the flusher's current round (once the preamble is out)."""
        if len(self._out) > self._max_out:
            self._overflow()
        elif self._round is not flusher.dirty and self._ready:
            flusher.mark(self)

    def _overflow(self) -> None:
        self.log.warning("send queue overflow, closing with %d", Close.SLOW_READER)
        self.abort(Close.SLOW_READER)

    def _flush(self) -> None:
        """Write every pending frame in one write (direct writes only)."""
        out = self._out
        direct = self._direct
        if not out or direct is None:
            return
        # (b"".join of one bytes object returns that object: no copy for a lone frame)
        data = _array_frames(out) if self.batching else b"".join(out)
        out.clear()
        limit = self._byte_limit
        if limit is not None:
            # The transport's unsent bytes as of the last write: it only drains between
            # writes, so this overestimates; only a write that may pass the bound asks again.
            size = len(data)
            if self._unsent_seen + size > limit and direct.unsent_bytes() + size > limit:
                self._overflow()
                return
        if not direct.write_frames(data):
            self.closing = True  # the peer is gone or a close was sent: the reader ends it
            return
        self._unsent_seen = unsent = direct.unsent_bytes()
        if limit is not None and unsent > limit:
            self.log.warning("send buffer overflow, closing with %d", Close.SLOW_READER)
            self.abort(Close.SLOW_READER)

    @property
    def queued_frames(self) -> int:
        """How many items the queue holds (/metrics: send-queue depth)."""
        return len(self._queue) + len(self._out)

    @property
    def queued_bytes(self) -> int:
        """What the queue holds, in characters of JSON text (with direct writes: the bytes
        pending and those the transport has not yet handed to the kernel)."""
        return self._queued_bytes + sum(map(len, self._out)) + self._unsent()

    def _unsent(self) -> int:
        return self._direct.unsent_bytes() if self._direct is not None else 0

    def would_overflow(self, size: int) -> bool:
        """Whether `size` more characters would pass `server.send_queue_bytes`."""
        return self._byte_limit is not None and self.queued_bytes + size > self._byte_limit

    def _put(self, item: str | _Close) -> bool:
        """Append to the queue and wake the writer; False if the queue is full."""
        if self._limit is not None and len(self._queue) >= self._limit:
            return False
        if isinstance(item, str):
            if self.would_overflow(len(item)):
                return False
            self._queued_bytes += len(item)
        self._queue.append(item)
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            if not wakeup.done():
                wakeup.set_result(None)
        return True

    def close_after_queued(self, code: int, timeout: float = CLOSE_TIMEOUT) -> None:
        """Close with `code` after the frames already queued, or at the latest after `timeout`."""
        if self.closing:
            return
        self.closing = True
        self.close_code = code
        if self._direct is not None:
            # Pending frames leave now; the close follows them through ASGI (after the
            # preamble: the writer task starts it once that is out).
            if self._ready:
                self._flush()
                self._closer = asyncio.create_task(self._close(code), name=f"close-{self.id}")
            self._timer = asyncio.get_running_loop().call_later(timeout, self.abort, code)
            return
        if not self._put(_Close(code)):
            self.abort(code)
            return
        self._timer = asyncio.get_running_loop().call_later(timeout, self.abort, code)

    def abort(self, code: int) -> None:
        """Drop whatever is queued and close with `code` now."""
        self.closing = True
        # Nothing queued will be written: free it now, not when the socket is gone.
        self._queue.clear()
        self._queued_bytes = 0
        self._out.clear()
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

    async def write_all_now(self, frames: Iterable[str]) -> None:
        """Write frames directly (the preamble's resume backlog), joined for a batching client."""
        pending: deque[str | _Close] = deque(frames)
        while pending:
            first = pending.popleft()
            assert isinstance(first, str)
            await self.socket.send(_text(_coalesce(first, pending)[0] if self.batching else first))

    async def _write(self, preamble: Callable[[], Awaitable[None]]) -> None:
        try:
            await preamble()
            del preamble  # its closure holds the connect-time snapshot
            if self._direct is not None:
                # From now on frames are written by `_flush`; this task's work is done.
                self._ready = True
                self._flush()
                if self.closing and self.close_code is not None and self._closer is None:
                    self._cancel_timer()
                    self._closer = asyncio.create_task(self._close(self.close_code))
                return
            queue = self._queue
            loop = asyncio.get_running_loop()
            while True:
                if not queue:
                    self._wakeup = wakeup = loop.create_future()
                    await wakeup
                    continue
                item = queue.popleft()
                if isinstance(item, _Close):
                    self._cancel_timer()
                    if self._closer is None:
                        self._closer = asyncio.create_task(self._close(item.code))
                    return
                self._queued_bytes -= len(item)
                if self.batching and queue:
                    item = self._coalesce(item)
                await self.socket.send(_text(item))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 (the peer went away mid-send; the reader sees it)
            self.log.debug("writer stopped: %r", exc)
            self.closing = True

    def _coalesce(self, first: str) -> str:
        frame, taken = _coalesce(first, self._queue)
        self._queued_bytes -= taken
        return frame

    async def _close(self, code: int) -> None:
        self._cancel_timer()
        with contextlib.suppress(Exception):  # TimeoutError included: the peer is stuck
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self.socket.send(_close_event(code))

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
                await _ended(task)


async def _ended(task: asyncio.Task[None]) -> None:
    """Wait for `task` to end, at most CLOSE_TIMEOUT (then it is cancelled); how it ended is
    not the caller's error, but a cancellation of the caller itself still propagates.

    `asyncio.timeout`, not `wait_for`: on Python 3.11, `wait_for` can swallow a cancel that
    lands as the awaited task ends."""
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
    except Exception:  # noqa: BLE001 (the writer or close failed: the socket is gone anyway)
        return


def _coalesce(first: str, queue: deque[str | _Close]) -> tuple[str, int]:
    """`first` and the frames queued after it, as one array frame (a batching client); and
    the characters taken from the queue."""
    if first[0] == "[":  # already an array (a batch's responses): never nested
        return first, 0
    parts = [first]
    size = len(first)
    while queue and len(parts) < MAX_BATCH and size < MAX_BATCH_CHARS:
        item = queue[0]
        if isinstance(item, _Close) or item[0] == "[":
            break
        parts.append(item)
        queue.popleft()
        size += len(item)
    if len(parts) == 1:
        return first, 0
    return "[" + ",".join(parts) + "]", size - len(first)


def _array_frames(texts: list[str]) -> bytes:
    """A batching client's pending messages, framed as the writer task joins them: one array
    frame in the usual case (no batch answer among them, within MAX_BATCH and
    MAX_BATCH_CHARS), else as `_coalesce` splits them."""
    if len(texts) == 1:
        return text_frame(texts[0].encode())
    if (
        len(texts) <= MAX_BATCH
        and sum(map(len, texts)) < MAX_BATCH_CHARS
        and not any(text[0] == "[" for text in texts)
    ):
        return text_frame(("[" + ",".join(texts) + "]").encode())
    return b"".join(text_frame(f.encode()) for f in _arrays(texts))


def _arrays(texts: list[str]) -> Iterable[str]:
    """A batching client's pending messages as array frames, as the writer task joins them."""
    pending: deque[str | _Close] = deque(texts)
    while pending:
        first = pending.popleft()
        assert isinstance(first, str)
        yield _coalesce(first, pending)[0]


def _text(frame: str) -> WebSocketSendEvent:
    return {"type": "websocket.send", "text": frame, "bytes": None}


def _close_event(code: int) -> WebSocketCloseEvent:
    return {"type": "websocket.close", "code": code, "reason": ""}
