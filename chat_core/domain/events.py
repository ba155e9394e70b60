"""Events: the facts the journal records, past tense, each with a tag never renamed or reused.

Every event is a frozen msgspec Struct tagged by its `type` field. Time, position and actor
live in the `Recorded` envelope (journal columns), not in the payload. A new field needs a
default; any other change needs an upcaster in `codec.py` and a frozen sample in tests/data.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from chat_core.domain.rules import LeaveReason, Level, Role


class _Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", gc=False):
    """Base of every event."""


class AccountRegistered(_Event, frozen=True, kw_only=True, tag="account_registered"):
    username: str
    password_hash: str
    role: Role = "user"
    display_name: str | None = None


class PasswordChanged(_Event, frozen=True, kw_only=True, tag="password_changed"):
    username: str
    password_hash: str


class RoleChanged(_Event, frozen=True, kw_only=True, tag="role_changed"):
    username: str
    role: Role
    by: str
    previous: Role | None = None  # lets resume rebuild a user's role at an earlier seq


class RoomCreated(_Event, frozen=True, kw_only=True, tag="room_created"):
    room_id: str
    room_name: str
    created_by: str


class RoomDeleted(_Event, frozen=True, kw_only=True, tag="room_deleted"):
    room_id: str
    room_name: str
    by: str
    members: tuple[str, ...] = ()  # who lost their membership (for resume and the hub)


class UserJoined(_Event, frozen=True, kw_only=True, tag="user_joined"):
    room_id: str
    username: str


class UserLeft(_Event, frozen=True, kw_only=True, tag="user_left"):
    room_id: str
    username: str
    reason: LeaveReason = "left"


class MessageSent(_Event, frozen=True, kw_only=True, tag="message_sent"):
    message_id: int
    room_id: str
    username: str
    text: str
    client_msg_id: str | None = None


class UserKicked(_Event, frozen=True, kw_only=True, tag="user_kicked"):
    """A kick from one room (`room_id`) or from the whole chat (`room_id` None).

    `rooms` lists the rooms the target was removed from; one `UserLeft` follows per room.
    """

    username: str
    room_id: str | None
    rooms: tuple[str, ...]
    reason: str | None
    by: str


class UserBanned(_Event, frozen=True, kw_only=True, tag="user_banned"):
    """A ban until `until` (None: for ever); one `UserLeft` per room in `rooms` follows."""

    username: str
    rooms: tuple[str, ...]
    reason: str | None
    by: str
    until: datetime | None


class UserUnbanned(_Event, frozen=True, kw_only=True, tag="user_unbanned"):
    username: str
    by: str


class PasswordSet(_Event, frozen=True, kw_only=True, tag="password_set"):
    """A new password chosen by its user (`by` the user) or reset by an admin; every token
    issued before it is refused (the account's token epoch moves on)."""

    username: str
    password_hash: str
    by: str


class AccountDisabled(_Event, frozen=True, kw_only=True, tag="account_disabled"):
    """An admin disabled the account: no login, every token refused; the hash is kept."""

    username: str
    by: str


class AccountEnabled(_Event, frozen=True, kw_only=True, tag="account_enabled"):
    """An admin re-enabled a disabled account: its kept password works again."""

    username: str
    by: str


class TokensRevoked(_Event, frozen=True, kw_only=True, tag="tokens_revoked"):
    """An admin revoked every token of the account issued so far."""

    username: str
    by: str


class TokenRevoked(_Event, frozen=True, kw_only=True, tag="token_revoked"):
    """A logout: this one token (`jti`) is refused; remembered until its `expires_at`."""

    username: str
    jti: str
    expires_at: int  # unix seconds, the token's `exp`


class AnnouncementBroadcast(_Event, frozen=True, kw_only=True, tag="system_announcement"):
    message: str
    level: Level
    by: str


Event = (
    AccountRegistered
    | PasswordChanged
    | RoleChanged
    | RoomCreated
    | RoomDeleted
    | UserJoined
    | UserLeft
    | MessageSent
    | UserKicked
    | UserBanned
    | UserUnbanned
    | AnnouncementBroadcast
    | PasswordSet
    | AccountDisabled
    | AccountEnabled
    | TokensRevoked
    | TokenRevoked
)

EVENT_TYPES: tuple[type[_Event], ...] = (
    AccountRegistered,
    PasswordChanged,
    RoleChanged,
    RoomCreated,
    RoomDeleted,
    UserJoined,
    UserLeft,
    MessageSent,
    UserKicked,
    UserBanned,
    UserUnbanned,
    AnnouncementBroadcast,
    PasswordSet,
    AccountDisabled,
    AccountEnabled,
    TokensRevoked,
    TokenRevoked,
)


def tag_of(event: Event) -> str:
    """The event's journal tag."""
    return event.__struct_config__.tag  # type: ignore[return-value]


def stream_of(event: Event) -> str:
    """The journal stream: the room for room events, `system` for the rest."""
    room_id = getattr(event, "room_id", None)
    return room_id if isinstance(room_id, str) else "system"


class Recorded(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """An event with its journal position, time and actor: what evolve folds and hubs fan out."""

    seq: int
    at: datetime
    actor: str
    event: Event
    command_id: str | None = None
