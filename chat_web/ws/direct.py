"""uvicorn's Sans-I/O WebSocket protocol with a raw-write path for pre-framed messages.

The hub frames a notification once (`text_frame`) and every recipient writes the same bytes;
a connection writes what is pending for it in one `transport.write`. uvicorn's ASGI `send`
would frame the text again per recipient and write per message (bench/run.py, fan-out).

The protocol puts itself in the scope as `scope["extensions"]["chat.direct"]` (ASGI lets a
server add extensions); `chat_web.ws.connection` uses it when present, else the ASGI `send`.
Only data frames go this way: the handshake, pings and the closing handshake stay uvicorn's,
and nothing is written once a close was sent or the peer is gone.
"""

from __future__ import annotations

import struct
from typing import Any, Final, Protocol

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

from chat_web.ws.inbox import Inbox

EXTENSION: Final = "chat.direct"


class DirectWriter(Protocol):
    """What a connection needs of the socket to write pre-framed bytes."""

    def write_frames(self, data: bytes) -> bool: ...

    def unsent_bytes(self) -> int: ...


class DirectWebSocketProtocol(WebSocketsSansIOProtocol):
    """WebSocketsSansIOProtocol exposing `write_frames` to the application, and keeping what
    it receives in an `Inbox` (`chat_web.ws.inbox`) instead of an asyncio.Queue."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue: Any = Inbox(self._inbox_empty)

    @property
    def inbox(self) -> Inbox:
        inbox: Inbox = self.queue
        return inbox

    def send_receive_event_to_app(self) -> None:
        """uvicorn's, but a text message is kept as its str, and reading stops only while
        the inbox is full, not after every message."""
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if self.close_sent:
            return  # past `websocket.close`: dropped, as uvicorn does
        if self.curr_msg_data_type == "text":
            try:
                text = data.decode()
            except UnicodeDecodeError:
                self.logger.info("invalid UTF-8 in a text frame, closing with 1007")
                self.conn.send_close(1007)
                self.handle_parser_exception()
                return
            self.queue.put_nowait(text)
        else:
            self.queue.put_nowait({"type": "websocket.receive", "bytes": bytes(data)})
        if not self.read_paused and self.queue.full:
            self.read_paused = True
            self.transport.pause_reading()

    async def receive(self) -> Any:
        return await self.queue.get()

    def _inbox_empty(self) -> None:
        if self.read_paused and not self.disconnected:
            self.read_paused = False
            self.transport.resume_reading()

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        # The ASGI task is created but not started yet: it sees the extension.
        scope: Any = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][EXTENSION] = self

    def write_frames(self, data: bytes) -> bool:
        """Write already framed server messages; False once the socket is closing or gone."""
        if (
            self.close_sent
            or self.disconnected
            or not self.handshake_complete
            or self.transport.is_closing()
        ):
            return False
        self.transport.write(data)
        return True

    def unsent_bytes(self) -> int:
        """What the transport holds, written but not yet taken by the kernel."""
        return int(self.transport.get_write_buffer_size())


def _direct(scope: Any) -> DirectWebSocketProtocol | None:
    """The socket's protocol, if the server put it in the scope."""
    extensions = scope.get("extensions") or {}
    protocol = extensions.get(EXTENSION)
    return protocol if isinstance(protocol, DirectWebSocketProtocol) else None


def direct_inbox(scope: Any) -> Inbox | None:
    """The socket's inbox, if the server gave one."""
    protocol = _direct(scope)
    return None if protocol is None else protocol.inbox


def direct_writer(scope: Any) -> DirectWriter | None:
    """The socket's raw-write path, if the server gave one."""
    return _direct(scope)


_SHORT: Final = struct.Struct("!BBH")
_LONG: Final = struct.Struct("!BBQ")


def text_frame(payload: bytes) -> bytes:
    """A whole unmasked text frame (FIN, opcode 1) as a server sends it (RFC 6455 5.2)."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65_536:
        return _SHORT.pack(0x81, 126, size) + payload
    return _LONG.pack(0x81, 127, size) + payload
