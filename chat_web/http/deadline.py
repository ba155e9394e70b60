"""uvicorn's HTTP protocol with a deadline on each request's arrival.

uvicorn closes a keep-alive connection that idles between requests, but not one that sends a
request slowly: a socket trickling one header line every few seconds was held for ever, and a
thousand of them kept real clients out. Here each request must have arrived (its headers, and
its body unless it is a WebSocket upgrade) within `server.header_timeout_seconds` of its first
byte, or the connection is closed. It is a deadline, not an idle timer: trickling does not
extend it. A fresh connection is timed from its opening, which is no later than its first byte.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class DeadlineHttpProtocol(HttpToolsProtocol):
    """HttpToolsProtocol closing a connection whose request is not in by `header_timeout`."""

    header_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # The first byte of a later request on a keep-alive connection.
        if self._deadline is None:
            self._arm()

    def on_headers_complete(self) -> None:
        if self.parser.should_upgrade():
            # A WebSocket: once upgraded, the WebSocket protocol owns the connection.
            self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def deadline_protocol(header_timeout: float) -> type[DeadlineHttpProtocol]:
    """The protocol class uvicorn instantiates per connection, with the configured deadline."""
    return type("DeadlineHttpProtocol", (DeadlineHttpProtocol,), {"header_timeout": header_timeout})
