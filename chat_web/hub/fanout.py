"""The hub: every open connection, and the fan-out of committed events to them.

It implements `chat_core.processor.Publisher`. `publish` runs synchronously right after each
commit, in commit order, so a connection registered in the same synchronous step as it took
its state snapshot (head H) receives exactly the events with seq > H, in order. What each
notification says and who gets it is `chat_core.protocol.notify`'s; the hub encodes and frames
it once (`chat_web.ws.direct.text_frame`) and the per-recipient work is one `Connection.send`
of the same str and bytes, or one `send_many` for a run of a commit's notifications to the same
room. It reads the committed
state through the `Committed` it is given at construction (presence and typing need it between
commits), and never writes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence

from chat_core.domain import events as e
from chat_core.domain.rules import is_disabled, user_key
from chat_core.domain.state import ChatState, current_room_of, initial_state
from chat_core.processor import Committed, Delivery
from chat_core.protocol.codes import Close
from chat_core.protocol.notify import notice
from chat_web.hub.notifications import encode
from chat_web.hub.presence import TypingTracker, presence_frame, sharing_users
from chat_web.nodes.presence import RemotePresence
from chat_web.ws.connection import Connection, new_round
from chat_web.ws.direct import text_frame

log = logging.getLogger(__name__)

# Seconds a user stays online for others after its last connection closes. A reconnect within
# it is no presence change at all, so connect/close loops cost the users who share a room with
# the looping one at most one `presence_changed` each way a second, not two a loop.
PRESENCE_LINGER: float = 1.0


class Hub:
    """Connections by user key, presence, typing, and the publisher of committed events."""

    def __init__(
        self,
        typing_timeout: float,
        presence_linger: float = PRESENCE_LINGER,
        *,
        committed: Committed | None = None,
    ) -> None:
        self.presence_linger = presence_linger
        self.committed = committed if committed is not None else Committed(initial_state())
        # A tuple, not a set, per user: nearly every user has one connection, and a set costs
        # ~0.2 KB more per idle connection (bench/run.py, idle memory). Never empty.
        self._by_user: dict[str, tuple[Connection, ...]] = {}
        self._count = 0
        self.typing = TypingTracker(typing_timeout, self._state, self.send_to)
        # During `close_all` only: the connections still to unregister, and the future resolved
        # when none is left (nothing per connection before then).
        self._closing: set[Connection] | None = None
        self._all_gone: asyncio.Future[None] | None = None
        # Users whose last connection closed less than PRESENCE_LINGER ago: still online for
        # others until the timer fires, unless they reconnect first (at most one per user).
        self._lingering: dict[str, asyncio.TimerHandle] = {}
        # Users with several connections: the lock their frames are handled under (`gate`).
        self._gates: dict[str, asyncio.Lock] = {}
        # For /metrics: notifications of committed events queued (counted per batch, not per
        # recipient), and closed connections by close code (None: no close frame, as 1006).
        self.delivered = 0
        self.closes: dict[int | None, int] = {}
        # Nodes on a shared journal (chat_web.nodes): who is online on the others, and where
        # this node's own presence changes are told (None on a single node).
        self.remote: RemotePresence | None = None
        self.announce: Callable[[str, str, bool], None] | None = None

    # --- connections ------------------------------------------------------------------------

    def register(self, conn: Connection, state: ChatState) -> None:
        """Add a connection (synchronously with its snapshot); first one: the user is online."""
        conns = self._by_user.get(conn.key, ())
        self._by_user[conn.key] = (*conns, conn)
        self._count += 1
        if conns:
            return
        lingering = self._lingering.pop(conn.key, None)
        if lingering is not None:
            lingering.cancel()  # back before anyone saw it leave: no change to announce
            return
        if self.remote is None or not self.remote.online(conn.key):
            self.send_to(sharing_users(state, conn.key), presence_frame(conn.username, True))
        if self.announce is not None:
            self.announce(conn.key, conn.username, True)

    def unregister(self, conn: Connection) -> None:
        """Remove a connection; the user's last one: it stops typing and goes offline."""
        self._closed(conn)
        conns = self._by_user.get(conn.key)
        if conns is None or conn not in conns:
            return
        self._count -= 1
        if len(conns) > 1:
            self._by_user[conn.key] = tuple(c for c in conns if c is not conn)
            return
        del self._by_user[conn.key]
        self._gates.pop(conn.key, None)
        self.typing.stop_user(conn.key)
        self._lingering[conn.key] = asyncio.get_running_loop().call_later(
            self.presence_linger, self._gone_offline, conn.key, conn.username
        )

    def _gone_offline(self, key: str, username: str) -> None:
        del self._lingering[key]
        if self.remote is None or not self.remote.online(key):
            self.send_to(sharing_users(self._state(), key), presence_frame(username, False))
        if self.announce is not None:
            self.announce(key, username, False)

    def remote_changed(self, changes: Iterable[tuple[str, str, bool]]) -> None:
        """Users came online on another node, or are online on none now: tell those who
        share a room with them here, unless they are online here anyway."""
        for key, username, online in changes:
            if key not in self._by_user and key not in self._lingering:
                self.send_to(sharing_users(self._state(), key), presence_frame(username, online))

    def local_users(self) -> list[tuple[str, str]]:
        """(key, username) of every user with a connection on this node."""
        return [(key, conns[0].username) for key, conns in self._by_user.items()]

    def _state(self) -> ChatState:
        return self.committed.state

    def is_online(self, key: str) -> bool:
        if key in self._by_user or key in self._lingering:
            return True
        return self.remote is not None and self.remote.online(key)

    def connections_of(self, key: str) -> tuple[Connection, ...]:
        return self._by_user.get(key, ())

    def gate(self, key: str) -> asyncio.Lock | None:
        """What a connection holds while it handles a frame: one lock per user with several
        connections (None for one), so a user's frames are handled one at a time, one a turn
        of the event loop, whatever its socket count.

        Fairness between users: without it, one user's 20 sockets put 20 frames of work
        (64 KB parses, history pages) in each turn of the event loop ahead of everyone
        else's (a bystander's ping p99 over 200 ms); with it, at most one.
        """
        if len(self._by_user.get(key, ())) < 2:
            return None
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = asyncio.Lock()
        return gate

    def all_connections(self) -> list[Connection]:
        return [conn for conns in self._by_user.values() for conn in conns]

    @property
    def connection_count(self) -> int:
        return self._count

    # --- fan-out ----------------------------------------------------------------------------

    def send_to(self, keys: Iterable[str], frame: str) -> int:
        """Queue one frame on every connection of the given users; how many it was queued on."""
        return self._send_run(keys, [frame])

    def _send_run(self, keys: Iterable[str], frames: list[str]) -> int:
        """Queue consecutive frames of one audience on each of its connections, in order:
        one call per connection for the run; how many deliveries that was."""
        by_user = self._by_user
        wires = [text_frame(frame.encode()) for frame in frames]
        sent = 0
        for key in keys:
            conns = by_user.get(key)
            if conns:
                sent += len(conns)
                for conn in conns:
                    conn.send_many(frames, wires)
        return sent * len(frames)

    def send_to_everyone(self, frame: str) -> int:
        wire = text_frame(frame.encode())
        for conns in self._by_user.values():
            for conn in conns:
                conn.send(frame, wire)
        return self._count

    def count_close(self, code: int | None) -> None:
        """A connection ended with `code` (/metrics)."""
        self.closes[code] = self.closes.get(code, 0) + 1

    def publish(self, deliveries: Sequence[Delivery], state: ChatState) -> None:
        """Fan out one committed batch, then apply its effects on connections."""
        # Written after the answers to the batch's commands, which the processor scheduled
        # just before: a command's ack and its deliveries leave the sender in one write.
        new_round()
        to_close: dict[str, int] = {}
        delivered = 0
        # Consecutive notifications to the same audience object (a room's members map, the
        # same while nobody joins or leaves) go out as one run: one call per socket for the
        # whole run, not one per message (bench/run.py, fan-out). A run is sent before
        # anything else is, so every socket still gets the batch's frames in commit order.
        run: list[str] = []
        run_users: Iterable[str] = ()
        for delivery in deliveries:
            recorded = delivery.recorded
            try:
                found = notice(recorded, delivery.before, delivery.after)
                frame = None if found is None else encode(found)
            except Exception:  # one bad event must not stop the others' delivery
                log.exception("cannot encode the notification of seq %d", recorded.seq)
                found = frame = None
            if found is not None and frame is not None:
                users = found.audience.users
                if run and (found.audience.everyone or users is not run_users):
                    delivered += self._send_run(run_users, run)
                    run = []
                if found.audience.everyone:
                    delivered += self.send_to_everyone(frame)
                else:
                    run_users = users
                    run.append(frame)
            if run and self.typing.active:
                # Its effect may send a typing notice: the run leaves first.
                delivered += self._send_run(run_users, run)
                run = []
            self._effects(recorded.event, state, to_close)
        if run:
            delivered += self._send_run(run_users, run)
        self.delivered += delivered
        # Closed after the whole batch: a kicked user first sees its kick and its user_left.
        for key, code in to_close.items():
            for conn in self.connections_of(key):
                conn.close_after_queued(code)

    def _effects(self, event: e.Event, state: ChatState, to_close: dict[str, int]) -> None:  # noqa: C901 (one case per kind: a flat match)
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
                to_close[user_key(event.username)] = Close.KICKED
                self.typing.stop_user(user_key(event.username))
            case e.UserBanned():
                to_close[user_key(event.username)] = Close.BANNED
                self.typing.stop_user(user_key(event.username))
            case e.PasswordChanged() if is_disabled(event.password_hash):
                # Its tokens are refused from now on; an open session ends as a revoked one.
                to_close[user_key(event.username)] = Close.UNAUTHORIZED
                self.typing.stop_user(user_key(event.username))
            case e.PasswordSet() | e.AccountDisabled() | e.TokensRevoked():
                # Every token issued before it is refused: open sessions end as revoked ones.
                to_close[user_key(event.username)] = Close.UNAUTHORIZED
                self.typing.stop_user(user_key(event.username))
            case e.TokenRevoked():
                # A logout ends the sessions of that one token only.
                for conn in self.connections_of(user_key(event.username)):
                    if conn.jti == event.jti:
                        conn.close_after_queued(Close.UNAUTHORIZED)
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
        for timer in self._lingering.values():
            timer.cancel()
        self._lingering.clear()
        conns = [conn for conns in self._by_user.values() for conn in conns]
        if not conns:
            return
        self._closing = set(conns)
        self._all_gone = gone = asyncio.get_running_loop().create_future()
        for conn in conns:
            conn.close_after_queued(code, grace)
        # Shielded: the timeout must not cancel the future that unregister resolves.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await asyncio.shield(gone)

    def _closed(self, conn: Connection) -> None:
        """During `close_all`: one connection fewer to wait for."""
        closing = self._closing
        if closing is None:
            return
        closing.discard(conn)
        gone = self._all_gone
        if not closing and gone is not None and not gone.done():
            gone.set_result(None)
