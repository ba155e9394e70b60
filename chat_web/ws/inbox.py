"""A socket's received messages on their way from uvicorn's protocol to the reader.

uvicorn hands each message to the application as an ASGI event dict on an `asyncio.Queue`,
and stops reading the socket after every message until the application has taken it: a
pause and a resume of the socket, a dict, a queue put and get, and Litestar's receive wrapper
per frame (py-spy: about a tenth of the server's CPU under bench/run.py's durable load, without
the pause and resume). `DirectWebSocketProtocol`
(`chat_web.ws.direct`) puts an `Inbox` in the queue's place: a text message is kept as its
`str`, the reader takes it with `next`, and the socket stops being read only while the inbox
holds `MESSAGES` messages or `CHARS` characters (256 Ki), so a client's frames are bounded here as
before, in items and in bytes, and TCP pushes back on a client that sends faster than it is
answered. What uvicorn itself queues (connect, disconnect, binary messages) stays an ASGI event,
and `get` still gives every item as one, for Litestar's `accept` and for anyone else reading the
ASGI way.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any, Final

# Unread messages past which the socket stops being read (resumed once the reader took all).
MESSAGES: Final = 64
# The same in characters of text. With what one read of the socket brings in past it, an
# inbox holds at most about twice what uvicorn's queue could (one read, 256 KiB).
CHARS: Final = 1 << 18

Item = str | dict[str, Any]


class Inbox:
    """What uvicorn's protocol calls its queue (`put_nowait`, `get`, `empty`), plus the
    reader's `next`. Not an asyncio.Queue: one reader, no maxsize, no per-item future."""

    __slots__ = ("_chars", "_items", "_on_empty", "_waiter")

    def __init__(self, on_empty: Callable[[], None]) -> None:
        self._items: deque[Item] = deque()
        self._chars = 0
        self._waiter: asyncio.Future[None] | None = None
        # Called when the reader took the last item (the protocol resumes reading).
        self._on_empty = on_empty

    def put_nowait(self, item: Item) -> None:
        """Keep an item: a text message's str, or an ASGI event."""
        self._items.append(item)
        if type(item) is str:
            self._chars += len(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    @property
    def full(self) -> bool:
        """Whether the socket should stop being read for now."""
        return len(self._items) >= MESSAGES or self._chars >= CHARS

    def empty(self) -> bool:
        return not self._items

    async def next(self) -> Item:
        """The next item, as kept: a str for a text message."""
        items = self._items
        while not items:
            self._waiter = waiter = asyncio.get_running_loop().create_future()
            await waiter
        item = items.popleft()
        if type(item) is str:
            self._chars -= len(item)
        if not items:
            self._on_empty()
        return item

    async def get(self) -> dict[str, Any]:
        """The next item as an ASGI receive event."""
        item = await self.next()
        if type(item) is str:
            return {"type": "websocket.receive", "text": item}
        assert isinstance(item, dict)
        return item
