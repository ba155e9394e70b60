"""Journal events as the durable notifications of docs/protocol.md section 5, encoded once.

`frame_of(recorded, user_count)` gives the text frame of an event's notification (None for
events clients never see). The live hub and the resume backlog both use it, so a resumed
client receives byte-for-byte what a connected one got. `user_count` (of `user_joined` and
`user_left`) is the room's size right after the event; `counts_after` works it out for a run of
events by rewinding from the state after the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, assert_never

import msgspec

from chat_core.domain import events as e
from chat_core.domain.codec import message_of
from chat_core.domain.state import ChatState
from chat_core.protocol.rpc import encode_notification


class _Notice(msgspec.Struct, frozen=True, kw_only=True):
    seq: int


class UserJoinedParams(_Notice, frozen=True, kw_only=True):
    room_id: str
    username: str
    user_count: int
    timestamp: datetime


class UserLeftParams(_Notice, frozen=True, kw_only=True):
    room_id: str
    username: str
    user_count: int
    reason: str
    timestamp: datetime


class UserKickedParams(_Notice, frozen=True, kw_only=True):
    username: str
    room_id: str | None
    reason: str | None
    by: str
    timestamp: datetime


class UserBannedParams(_Notice, frozen=True, kw_only=True):
    username: str
    reason: str | None
    by: str
    until: datetime | None
    timestamp: datetime


class UserUnbannedParams(_Notice, frozen=True, kw_only=True):
    username: str
    by: str
    timestamp: datetime


class RoleChangedParams(_Notice, frozen=True, kw_only=True):
    username: str
    role: str
    by: str
    timestamp: datetime


class AnnouncementParams(_Notice, frozen=True, kw_only=True):
    message: str
    level: str
    by: str
    timestamp: datetime


class RoomCreatedParams(_Notice, frozen=True, kw_only=True):
    room_id: str
    room_name: str
    created_by: str
    timestamp: datetime


class RoomDeletedParams(_Notice, frozen=True, kw_only=True):
    room_id: str
    room_name: str
    by: str
    timestamp: datetime


def notification_of(recorded: e.Recorded, user_count: int = 0) -> tuple[str, Any] | None:
    """(method, params) of an event's notification, or None if clients never see it."""
    event = recorded.event
    seq, at = recorded.seq, recorded.at
    match event:
        case e.MessageSent():
            return "message_received", message_of(seq, at, event)
        case e.UserJoined():
            return "user_joined", UserJoinedParams(
                seq=seq,
                room_id=event.room_id,
                username=event.username,
                user_count=user_count,
                timestamp=at,
            )
        case e.UserLeft():
            return "user_left", UserLeftParams(
                seq=seq,
                room_id=event.room_id,
                username=event.username,
                user_count=user_count,
                reason=event.reason,
                timestamp=at,
            )
        case e.UserKicked():
            return "user_kicked", UserKickedParams(
                seq=seq,
                username=event.username,
                room_id=event.room_id,
                reason=event.reason,
                by=event.by,
                timestamp=at,
            )
        case e.UserBanned():
            return "user_banned", UserBannedParams(
                seq=seq,
                username=event.username,
                reason=event.reason,
                by=event.by,
                until=event.until,
                timestamp=at,
            )
        case e.UserUnbanned():
            return "user_unbanned", UserUnbannedParams(
                seq=seq, username=event.username, by=event.by, timestamp=at
            )
        case e.RoleChanged():
            return "role_changed", RoleChangedParams(
                seq=seq, username=event.username, role=event.role, by=event.by, timestamp=at
            )
        case e.AnnouncementBroadcast():
            return "system_announcement", AnnouncementParams(
                seq=seq, message=event.message, level=event.level, by=event.by, timestamp=at
            )
        case e.RoomCreated():
            return "room_created", RoomCreatedParams(
                seq=seq,
                room_id=event.room_id,
                room_name=event.room_name,
                created_by=event.created_by,
                timestamp=at,
            )
        case e.RoomDeleted():
            return "room_deleted", RoomDeletedParams(
                seq=seq, room_id=event.room_id, room_name=event.room_name, by=event.by, timestamp=at
            )
        case e.AccountRegistered() | e.PasswordChanged():
            return None
        case _:
            assert_never(event)


def frame_of(recorded: e.Recorded, user_count: int = 0) -> str | None:
    """The text frame of an event's notification, or None."""
    found = notification_of(recorded, user_count)
    if found is None:
        return None
    # Decoded once here so every recipient's writer sends the same str as a text frame.
    return encode_notification(*found).decode()


def counts_after(records: Sequence[e.Recorded], final: ChatState) -> dict[int, int]:
    """seq -> the room's member count right after each join or leave in `records`.

    `final` is the state right after the last record. Walking back from it, a join added one
    member and a leave removed one; a deletion emptied a room of its recorded members.
    """
    counts: dict[str, int] = {}
    out: dict[int, int] = {}

    def current(room_id: str) -> int:
        if room_id not in counts:
            room = final.rooms.get(room_id)
            counts[room_id] = len(room.members) if room is not None else 0
        return counts[room_id]

    for recorded in reversed(records):
        event = recorded.event
        if isinstance(event, e.UserJoined):
            out[recorded.seq] = current(event.room_id)
            counts[event.room_id] = max(0, counts[event.room_id] - 1)
        elif isinstance(event, e.UserLeft):
            out[recorded.seq] = current(event.room_id)
            counts[event.room_id] += 1
        elif isinstance(event, e.RoomDeleted):
            counts[event.room_id] = len(event.members)
        elif isinstance(event, e.RoomCreated):
            counts[event.room_id] = 0
    return out
