"""Ephemeral state of the hub: presence and typing (docs/protocol.md sections 4 and 5).

Neither is ever journaled. Presence is derived from the hub's connections; this module only
encodes its notification. Typing is one timer per (user, room): a repeated `start_typing`
re-arms it instead of adding one, so the number of timers is bounded by users times rooms.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from chat_core.domain.state import ChatState
from chat_core.protocol.notifications import PresenceChanged, Typing
from chat_core.protocol.rpc import encode_notification


def presence_frame(username: str, online: bool) -> str:
    params = PresenceChanged(username=username, online=online)
    return encode_notification("presence_changed", params).decode()


def typing_frame(started: bool, room_id: str, username: str) -> str:
    method = "user_started_typing" if started else "user_stopped_typing"
    return encode_notification(method, Typing(room_id=room_id, username=username)).decode()


def room_peers(state: ChatState, room_id: str, key: str) -> list[str]:
    """The user keys of a room's members other than `key`."""
    room = state.rooms.get(room_id)
    if room is None:
        return []
    return [member for member in room.members if member != key]


def sharing_users(state: ChatState, key: str) -> set[str]:
    """The users who share at least one room with `key`, `key` excluded."""
    users: set[str] = set()
    for room_id in state.memberships.get(key, {}):
        room = state.rooms.get(room_id)
        if room is not None:
            users.update(room.members.keys())
    users.discard(key)
    return users


class TypingTracker:
    """Who is typing where, with a server-side expiry per (user, room)."""

    def __init__(
        self,
        timeout: float,
        state_of: Callable[[], ChatState],
        send_to: Callable[[Iterable[str], str], object],
    ) -> None:
        self.timeout = timeout
        self._state_of = state_of
        self._send_to = send_to
        # (user key, room id) -> (username spelling, expiry timer, typed on this node)
        self._typing: dict[tuple[str, str], tuple[str, asyncio.TimerHandle, bool]] = {}
        # Nodes on a shared journal: where this node's own typing changes are told (every
        # start, so that the other nodes re-arm their timers too).
        self.relay: Callable[[str, str, str, bool], None] | None = None

    def start(self, key: str, username: str, room_id: str, *, local: bool = True) -> None:
        """Start (or keep alive) a typing state; peers hear of it only when it starts.
        `local=False`: typed on another node (not relayed back)."""
        slot = (key, room_id)
        loop = asyncio.get_running_loop()
        timer = loop.call_later(self.timeout, self.stop, key, room_id)
        previous = self._typing.get(slot)
        self._typing[slot] = (username, timer, local)
        if local and self.relay is not None:
            self.relay(key, username, room_id, True)
        if previous is not None:
            previous[1].cancel()
            return
        peers = room_peers(self._state_of(), room_id, key)
        self._send_to(peers, typing_frame(True, room_id, username))

    @property
    def active(self) -> bool:
        """Whether anyone is typing (a stop may then send a notice)."""
        return bool(self._typing)

    def stop(self, key: str, room_id: str, notify: bool = True) -> None:
        """End a typing state, telling the room's other members (nothing if none was on)."""
        entry = self._typing.pop((key, room_id), None)
        if entry is None:
            return
        username, timer, local = entry
        timer.cancel()
        if local and self.relay is not None:
            self.relay(key, username, room_id, False)
        if notify:
            peers = room_peers(self._state_of(), room_id, key)
            self._send_to(peers, typing_frame(False, room_id, username))

    def stop_user(self, key: str) -> None:
        """End every typing state of a user (disconnect, chat-wide kick, ban)."""
        for slot in [slot for slot in self._typing if slot[0] == key]:
            self.stop(*slot)

    def drop_room(self, room_id: str) -> None:
        """Forget a deleted room's typing states: nobody is left to tell."""
        for slot in [slot for slot in self._typing if slot[1] == room_id]:
            self.stop(*slot, notify=False)

    def cancel_all(self) -> None:
        for _, timer, _ in self._typing.values():
            timer.cancel()
        self._typing.clear()
