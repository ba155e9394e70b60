"""Read models of the JSON-RPC reads (docs/protocol.md section 4), pure functions of the state.

The server answers `list_rooms`, `list_members` and `whoami` with these; the offline replay
tool can print the same shapes from a replayed state. Presence is ephemeral (it lives in the
server's hub), so it comes in as a predicate over user keys; offline, everyone is offline.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import msgspec

from chat_core.domain.state import ChatState, Room, current_room_of, rooms_of


def _nobody_online(_key: str) -> bool:
    return False


class RoomRow(msgspec.Struct, frozen=True, kw_only=True):
    room_id: str
    room_name: str
    user_count: int
    online_count: int
    created_by: str
    created_at: datetime


class RoomList(msgspec.Struct, frozen=True, kw_only=True):
    rooms: list[RoomRow]


class Member(msgspec.Struct, frozen=True, kw_only=True):
    username: str
    role: str
    online: bool


class MemberList(msgspec.Struct, frozen=True, kw_only=True):
    room_id: str
    members: list[Member]


class WhoAmI(msgspec.Struct, frozen=True, kw_only=True):
    username: str
    role: str
    rooms: list[str]
    current_room: str | None


def room_row(room: Room, online: Callable[[str], bool] = _nobody_online) -> RoomRow:
    return RoomRow(
        room_id=room.room_id,
        room_name=room.room_name,
        user_count=len(room.members),
        online_count=sum(1 for key in room.members if online(key)),
        created_by=room.created_by,
        created_at=room.created_at,
    )


def list_rooms(state: ChatState, online: Callable[[str], bool] = _nobody_online) -> RoomList:
    """Every room, sorted by room id (room ids are already lowercase)."""
    return RoomList(
        rooms=[room_row(state.rooms[key], online) for key in sorted(state.rooms.keys())]
    )


def list_members(
    state: ChatState, room: Room, online: Callable[[str], bool] = _nobody_online
) -> MemberList:
    """A room's members sorted case-insensitively (by user key), with role and presence."""
    members = []
    for key in sorted(room.members.keys()):
        account = state.accounts.get(key)
        members.append(
            Member(
                username=room.members[key],
                role=account.role if account is not None else "user",
                online=online(key),
            )
        )
    return MemberList(room_id=room.room_id, members=members)


def whoami(
    state: ChatState, username: str, role: str, current_room: str | bool | None = False
) -> WhoAmI:
    """The caller's identity and rooms; `current_room` False means "the user's latest room"."""
    current = current_room_of(state, username) if current_room is False else current_room
    return WhoAmI(
        username=username,
        role=role,
        rooms=rooms_of(state, username),
        current_room=current if isinstance(current, str) else None,
    )
