"""What `chat-cli chat` does while disconnected: the outbox and the connection's status line.

The outbox holds the messages typed and not acknowledged yet, sent in order.
Every message the user types goes through it, connected or not, with a `client_msg_id` drawn
once: while the connection is down it waits here, and after the resume it is sent (again, if
it was in flight when the socket dropped) with the same id, which the server deduplicates, so
it appears once (docs/protocol.md section 4, `send_message`). The outbox is bounded in
messages and in bytes; a line that does not fit is refused, never dropped quietly.

`LinkStatus` follows the session's `Status` events: one line when the connection is lost,
then a countdown to the next try in the status line (a line a try in a dumb terminal, which
has no status line), and one line when it is back.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from prompt_toolkit.utils import is_dumb_terminal
from rich.text import Text

from chat_cli import ui
from chat_cli.session import ConnectionLost, RpcError, Session, SessionEnded, Status
from chat_core.protocol import params as p
from chat_core.protocol import results as r

MAX_ITEMS = 50  # messages waiting at most
MAX_BYTES = 64 * 1024  # their text, UTF-8, at most


@dataclass(frozen=True)
class Outgoing:
    room_id: str
    text: str
    client_msg_id: str

    @property
    def size(self) -> int:
        return len(self.text.encode())


class Outbox:
    """A bounded FIFO of messages to send, and the one task that sends them."""

    def __init__(
        self,
        session: Session,
        show: Callable[[Text], None],
        *,
        max_items: int = MAX_ITEMS,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.session = session
        self.show = show
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._queue: deque[Outgoing] = deque()
        self._bytes = 0
        self._sender: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def refusal(self, text: str) -> str | None:
        """Why `text` cannot be queued now (None: it can)."""
        if len(self._queue) >= self.max_items:
            return f"{self.max_items} messages are already waiting to be sent"
        if self._bytes + len(text.encode()) > self.max_bytes:
            return f"the messages waiting to be sent would pass {_size(self.max_bytes)}"
        return None

    def put(self, room_id: str, text: str) -> Outgoing:
        """Queue a message (the caller checked `refusal` first) and make sure it is sent."""
        item = Outgoing(room_id=room_id, text=text, client_msg_id=uuid.uuid4().hex)
        self._queue.append(item)
        self._bytes += item.size
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send_all())
        return item

    def _pop(self) -> None:
        item = self._queue.popleft()
        self._bytes -= item.size

    async def _send_all(self) -> None:
        """Send the queue's head until the queue is empty, one at a time (so in the order
        typed); a send that found no answer is repeated, with its id, once connected."""
        while self._queue:
            item = self._queue[0]
            if not await self.session.wait_connected():
                return  # the session is over: nothing more will be sent
            params = p.SendMessageParams(
                room_id=item.room_id, text=item.text, client_msg_id=item.client_msg_id
            )
            try:
                await self.session.call(params, r.SendMessageResult)
            except RpcError as exc:
                self.show(ui.error(f"not sent: {rpc_text(exc)}"))
            except ConnectionLost:
                continue  # the socket dropped or the answer was late: the same id again
            except SessionEnded:
                return
            self._pop()

    async def close(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)


class LinkStatus:
    """The connection as the user sees it: lines when it changes, a countdown meanwhile."""

    def __init__(self, show: Callable[[Text], None], redraw: Callable[[], None]) -> None:
        self.show = show
        self.redraw = redraw
        self.reconnecting = False
        self._retry_at: float | None = None  # while reconnecting: the next try (monotonic)
        self._ticker: asyncio.Task[None] | None = None
        self._server = ""  # the URL connected to last

    def update(self, status: Status, queued: int) -> None:
        if status.state == "reconnecting":
            if not self.reconnecting:
                self.show(
                    ui.error(f"connection lost; reconnecting (next try in {status.detail} s)")
                )
            elif is_dumb_terminal():
                # No status line to count down in: a line a try instead.
                why = f" ({status.why})" if status.why else ""
                self.show(ui.error(f"still disconnected{why}; next try in {status.detail} s"))
            self.reconnecting = True
            self._retry_at = status.retry_at
            if self._ticker is None or self._ticker.done():
                self._ticker = asyncio.get_running_loop().create_task(self._count_down())
        elif status.state == "resumed":
            self.reconnecting = False
            self._retry_at = None
            moved = f" to {status.detail}" if status.detail != self._server else ""
            sending = f"; sending {ui.plural(queued, 'queued message')}" if queued else ""
            self.show(ui.info(f"reconnected{moved}{sending}; missed messages follow"))
        if status.state != "reconnecting":
            self._server = status.detail

    def note(self, queued: int) -> str:
        """The status line's part about the connection ("" while connected)."""
        if not self.reconnecting:
            return ""
        left = max(0.0, (self._retry_at or 0.0) - time.monotonic())
        note = f"disconnected: next try in {left:.0f} s" if left >= 0.5 else "reconnecting..."
        if queued:
            note += f"; {ui.plural(queued, 'message')} queued"
        return note

    async def _count_down(self) -> None:
        """Redraw the status line every second while disconnected: its countdown moves."""
        while self.reconnecting:
            self.redraw()
            await asyncio.sleep(1.0)

    def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()


def _size(count: int) -> str:
    return f"{count // 1024} KiB" if count >= 1024 else f"{count} bytes"


def rpc_text(exc: RpcError) -> str:
    """An error answer in one line for the user (a rate limit says when to try again)."""
    if exc.reason == "rate_limited" and "retry_after_ms" in exc.data:
        return f"slow down: try again in {int(exc.data['retry_after_ms']) / 1000:.1f} s"
    return exc.message
