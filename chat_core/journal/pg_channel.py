"""LISTEN and NOTIFY on a PostgreSQL connection of their own (nodes sharing a journal).

The connection is kept open: lost, it is opened again after a pause that doubles up to 5 s,
and `on_connected` runs each time, because what was notified meanwhile is gone (callers catch
up by reading the journal; docs/architecture.md section 6). Outgoing notifications wait in a
bounded outbox and leave together, one statement for all that queued during a round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)
_SEND_SQL = "SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload"
# Notifications waiting to leave at most: past it they are dropped (and counted); nodes
# resynchronise their presence on every reconnect, so a dropped one heals.
OUTBOX_LIMIT = 10_000
# PostgreSQL refuses a payload of 8,000 bytes or more.
MAX_PAYLOAD = 7_900


def driver_dsn(url: str) -> str:
    """The SQLAlchemy URL (`postgresql+asyncpg://...`) as asyncpg's own DSN."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Channel:
    """One connection that listens on `channels` and sends notifications on `channel`."""

    def __init__(
        self,
        url: str,
        listen: Sequence[str],
        channel: str,
        on_message: Callable[[str, str], None],
        on_connected: Callable[[], None],
    ) -> None:
        self._dsn = driver_dsn(url)
        self._listen = tuple(listen)
        self._channel = channel
        self._on_message = on_message
        self._on_connected = on_connected
        self._conn: Any = None
        self._lost: asyncio.Future[None] | None = None
        self._outbox: deque[str] = deque()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self.dropped = 0  # notifications dropped for a full outbox

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def send(self, payload: str) -> None:
        """Queue a notification (dropped while disconnected or when the outbox is full)."""
        if self._conn is None or len(self._outbox) >= OUTBOX_LIMIT:
            self.dropped += 1
            return
        self._outbox.append(payload)
        self._drained.clear()
        self._wake.set()

    async def drain(self) -> None:
        """Wait until every queued notification has left (callers bound the wait)."""
        if self._outbox:
            await self._drained.wait()

    async def run(self) -> None:
        """Listen until cancelled, reconnecting whenever the connection is lost."""
        pause = 0.2
        warned = False
        while True:
            try:
                conn = await asyncpg.connect(self._dsn, timeout=5)
            except _ERRORS as exc:
                if not warned:
                    log.warning("cannot reach PostgreSQL for notifications: %s", exc)
                    warned = True
                await asyncio.sleep(pause)
                pause = min(5.0, pause * 2)
                continue
            pause, warned = 0.2, False
            try:
                await self._serve(conn)
            finally:
                self._conn = None
                self._outbox.clear()
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(1):
                        await conn.close()
            log.warning("lost the PostgreSQL notification connection; reconnecting")

    async def _serve(self, conn: Any) -> None:
        lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._lost = lost

        def gone(_: object) -> None:
            if not lost.done():
                lost.set_result(None)

        conn.add_termination_listener(gone)
        try:
            for name in self._listen:
                await conn.add_listener(name, self._heard)
        except _ERRORS as exc:
            log.warning("cannot listen for notifications: %s", exc)
            return
        self._conn = conn
        self._on_connected()
        sender = asyncio.create_task(self._send_all(conn, lost))
        try:
            await lost
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    async def _send_all(self, conn: Any, lost: asyncio.Future[None]) -> None:
        outbox = self._outbox
        while True:
            await self._wake.wait()
            self._wake.clear()
            while outbox:
                payloads = list(outbox)
                outbox.clear()
                try:
                    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel
                    # that lands as the statement completes, and this task then never ends.
                    async with asyncio.timeout(5):
                        await conn.execute(_SEND_SQL, self._channel, payloads)
                except _ERRORS as exc:
                    log.warning("sending notifications failed: %s", exc)
                    if not lost.done():
                        lost.set_result(None)
                    return
            self._drained.set()

    def _heard(self, _conn: object, _pid: int, channel: str, payload: str) -> None:
        try:
            self._on_message(channel, payload)
        except Exception:  # one bad notification must not stop the others
            log.exception("handling a notification on %s failed", channel)
