"""Params of the server's notifications (docs/protocol.md sections 2 and 5), one frozen struct
each. Durable ones carry the event's `seq` and `timestamp`; the others do not."""

from __future__ import annotations

from datetime import datetime

import msgspec


class Notice(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every notification's params."""


class ConnectionEstablished(Notice, frozen=True, kw_only=True):
    connection_id: str
    username: str
    role: str
    journal_seq: int
    rooms: list[str]
    current_room: str | None
    resumed: bool


class MessageReceived(Notice, frozen=True, kw_only=True, omit_defaults=True):
    # No seq for a live-only message (`chat.persist_messages = false`): the field is left out.
    seq: int | None = None
    message_id: int
    room_id: str
    username: str
    text: str
    timestamp: datetime
    client_msg_id: str | None = None


class UserJoined(Notice, frozen=True, kw_only=True):
    seq: int
    room_id: str
    username: str
    user_count: int
    timestamp: datetime


class UserLeft(Notice, frozen=True, kw_only=True):
    seq: int
    room_id: str
    username: str
    user_count: int
    reason: str
    timestamp: datetime


class UserKicked(Notice, frozen=True, kw_only=True):
    seq: int
    username: str
    # None for a chat-wide kick.
    room_id: str | None
    reason: str | None
    by: str
    timestamp: datetime


class UserBanned(Notice, frozen=True, kw_only=True):
    seq: int
    username: str
    reason: str | None
    by: str
    until: datetime | None
    timestamp: datetime


class UserUnbanned(Notice, frozen=True, kw_only=True):
    seq: int
    username: str
    by: str
    timestamp: datetime


class RoleChanged(Notice, frozen=True, kw_only=True):
    seq: int
    username: str
    role: str
    by: str
    timestamp: datetime


class SystemAnnouncement(Notice, frozen=True, kw_only=True):
    seq: int
    message: str
    level: str
    by: str
    timestamp: datetime


class RoomCreated(Notice, frozen=True, kw_only=True):
    seq: int
    room_id: str
    room_name: str
    created_by: str
    timestamp: datetime


class RoomDeleted(Notice, frozen=True, kw_only=True):
    seq: int
    room_id: str
    room_name: str
    by: str
    timestamp: datetime


class PresenceChanged(Notice, frozen=True, kw_only=True):
    username: str
    online: bool


class Typing(Notice, frozen=True, kw_only=True):
    """`user_started_typing` and `user_stopped_typing`."""

    room_id: str
    username: str


class ResyncRequired(Notice, frozen=True, kw_only=True):
    journal_seq: int
