"""The hub: every open connection, and the fan-out of committed events to them.

It implements `chat_core.processor.Publisher`. `publish` runs synchronously right after each
commit, in commit order, so a connection registered in the same synchronous step as it took
its state snapshot (head H) receives exactly the events with seq > H, in order. Each
notification is encoded once; the per-recipient work is one `put_nowait` of the same str.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence

from chat_core import events as e
from chat_core.processor import Delivery
from chat_core.rules import user_key
from chat_core.state import ChatState, current_room_of, initial_state
from chat_web.connection import Connection
from chat_web.notifications import counts_after, frame_of
from chat_web.presence import TypingTracker, presence_frame, sharing_users

log = logging.getLogger(__name__)

KICKED: int = 4001
BANNED: int = 4403


class Hub:
    """Connections by user key, presence, typing, and the publisher of committed events."""

    def __init__(self, typing_timeout: float) -> None:
        self._by_user: dict[str, set[Connection]] = {}
        self._all: set[Connection] = set()
        # Set by the server once the processor exists; the hub reads, never writes, the state.
        self.state_of: Callable[[], ChatState] = initial_state
        self.typing = TypingTracker(typing_timeout, lambda: self.state_of(), self.send_to)
        # Resolved when the connection unregisters (a future: an Event costs ~0.9 KB each).
        self._done: dict[Connection, asyncio.Future[None]] = {}

    # --- connections ------------------------------------------------------------------------

    def register(self, conn: Connection, state: ChatState) -> None:
        """Add a connection (synchronously with its snapshot); first one: the user is online."""
        conns = self._by_user.setdefault(conn.key, set())
        first = not conns
        conns.add(conn)
        self._all.add(conn)
        self._done[conn] = asyncio.get_running_loop().create_future()
        if first:
            self.send_to(sharing_users(state, conn.key), presence_frame(conn.username, True))

    def unregister(self, conn: Connection) -> None:
        """Remove a connection; the user's last one: it stops typing and goes offline."""
        self._all.discard(conn)
        done = self._done.pop(conn, None)
        if done is not None and not done.done():
            done.set_result(None)
        conns = self._by_user.get(conn.key)
        if conns is None:
            return
        conns.discard(conn)
        if conns:
            return
        del self._by_user[conn.key]
        self.typing.stop_user(conn.key)
        state = self.state_of()
        self.send_to(sharing_users(state, conn.key), presence_frame(conn.username, False))

    def is_online(self, key: str) -> bool:
        return key in self._by_user

    def connections_of(self, key: str) -> set[Connection]:
        return self._by_user.get(key, set())

    @property
    def connection_count(self) -> int:
        return len(self._all)

    # --- fan-out ----------------------------------------------------------------------------

    def send_to(self, keys: Iterable[str], frame: str) -> None:
        """Queue one frame on every connection of the given users."""
        by_user = self._by_user
        for key in keys:
            conns = by_user.get(key)
            if conns:
                for conn in conns:
                    conn.send(frame)

    def send_to_everyone(self, frame: str) -> None:
        for conn in self._all:
            conn.send(frame)

    def publish(self, deliveries: Sequence[Delivery], state: ChatState) -> None:
        """Fan out one committed batch, then apply its effects on connections."""
        counts = counts_after([d.recorded for d in deliveries], state)
        to_close: dict[str, int] = {}
        for delivery in deliveries:
            recorded = delivery.recorded
            try:
                frame = frame_of(recorded, counts.get(recorded.seq, 0))
            except Exception:  # one bad event must not stop the others' delivery
                log.exception("cannot encode the notification of seq %d", recorded.seq)
                frame = None
            if frame is not None:
                if delivery.audience.everyone:
                    self.send_to_everyone(frame)
                else:
                    self.send_to(delivery.audience.users, frame)
            self._effects(recorded.event, state, to_close)
        # Closed after the whole batch: a kicked user first sees its kick and its user_left.
        for key, code in to_close.items():
            for conn in list(self.connections_of(key)):
                conn.close_after_queued(code)

    def _effects(self, event: e.Event, state: ChatState, to_close: dict[str, int]) -> None:
        """What an event changes in the hub: typing, current rooms, closing sockets."""
        match event:
            case e.UserLeft():
                key = user_key(event.username)
                self.typing.stop(key, event.room_id)
                self._move_current_room(key, event.room_id, state)
            case e.RoomDeleted():
                self.typing.drop_room(event.room_id)
                for username in event.members:
                    self._move_current_room(user_key(username), event.room_id, state)
            case e.MessageSent():
                self.typing.stop(user_key(event.username), event.room_id)
            case e.UserKicked() if event.room_id is None:
                to_close[user_key(event.username)] = KICKED
                self.typing.stop_user(user_key(event.username))
            case e.UserBanned():
                to_close[user_key(event.username)] = BANNED
                self.typing.stop_user(user_key(event.username))
            case _:
                pass

    def _move_current_room(self, key: str, room_id: str, state: ChatState) -> None:
        for conn in self.connections_of(key):
            if conn.current_room == room_id:
                conn.current_room = current_room_of(state, conn.username)

    # --- shutdown ---------------------------------------------------------------------------

    async def close_all(self, code: int, grace: float) -> None:
        """Close every connection with `code` (queued frames first) and wait, up to `grace` s."""
        self.typing.cancel_all()
        # Shielded: the timeout below must not cancel the futures unregister resolves.
        waits = [asyncio.shield(done) for done in self._done.values()]
        for conn in list(self._all):
            conn.close_after_queued(code, grace)
        if waits:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waits), grace)
