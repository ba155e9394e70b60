"""Results of the JSON-RPC methods of docs/protocol.md section 4, one frozen struct per method.

The read models of `list_rooms`, `list_members` and `whoami` are the domain's views (the
offline replay tool prints the same shapes); messages are the codec's `Message`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from chat_core.domain.codec import Message
from chat_core.domain.views import MemberList, RoomList, WhoAmI

__all__ = [
    "BanUserResult",
    "BroadcastAnnouncementResult",
    "DeleteRoomResult",
    "Empty",
    "GetHistoryResult",
    "JoinRoomResult",
    "KickUserResult",
    "LeaveRoomResult",
    "MemberList",
    "Message",
    "PingResult",
    "Result",
    "RoomList",
    "SendMessageResult",
    "SetRoleResult",
    "UnbanUserResult",
    "WhoAmI",
]


class Result(msgspec.Struct, frozen=True, kw_only=True):
    """Base of the results defined here (the views are results too)."""


class JoinRoomResult(Result, frozen=True, kw_only=True):
    room_id: str
    room_name: str
    created: bool
    user_count: int
    existing_users: list[str]
    history: list[Message]
    journal_seq: int


class LeaveRoomResult(Result, frozen=True, kw_only=True):
    room_id: str
    user_count: int


class SendMessageResult(Result, frozen=True, kw_only=True):
    message_id: int
    room_id: str
    # None for a live-only message (`chat.persist_messages = false`).
    seq: int | None
    timestamp: datetime
    duplicate: bool


class GetHistoryResult(Result, frozen=True, kw_only=True):
    room_id: str
    messages: list[Message]
    has_more: bool


class KickUserResult(Result, frozen=True, kw_only=True):
    kicked: Literal[True] = True


class BanUserResult(Result, frozen=True, kw_only=True):
    banned: Literal[True] = True
    until: datetime | None


class UnbanUserResult(Result, frozen=True, kw_only=True):
    unbanned: bool


class SetRoleResult(Result, frozen=True, kw_only=True):
    username: str
    role: str


class BroadcastAnnouncementResult(Result, frozen=True, kw_only=True):
    seq: int
    timestamp: datetime


class DeleteRoomResult(Result, frozen=True, kw_only=True):
    deleted: Literal[True] = True


class Empty(Result, frozen=True, kw_only=True):
    """`{}`: the result of the typing methods."""


class PingResult(Result, frozen=True, kw_only=True):
    pong: Literal[True] = True
    journal_seq: int


class ResetPasswordResult(Result, frozen=True, kw_only=True):
    username: str


class AccountStatusResult(Result, frozen=True, kw_only=True):
    """The answer of `disable_account` and `enable_account`."""

    username: str
    disabled: bool


class RevokeTokensResult(Result, frozen=True, kw_only=True):
    username: str
    revoked: Literal[True] = True
