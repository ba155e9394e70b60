"""Params of the JSON-RPC methods of docs/protocol.md section 4, one frozen struct per method.

The structs check types and obvious bounds only. Rules that depend on configuration (message
length, room name charset and length, announcement levels) belong to the decider, which
answers with a precise reason such as `invalid_level`. Unknown fields are ignored.
"""

from __future__ import annotations

from typing import Annotated, TypeAlias

import msgspec

from chat_core.domain.rules import Role

ClientMsgId: TypeAlias = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Reason: TypeAlias = Annotated[str, msgspec.Meta(max_length=500)]
# Seqs are SQLite INTEGERs: a larger number would overflow in the driver, not in our code.
Seq: TypeAlias = Annotated[int, msgspec.Meta(le=2**63 - 1)]
Limit: TypeAlias = Annotated[int, msgspec.Meta(ge=1)]
# 100 years; a longer ban is a permanent one (omit the duration). The bound keeps `now + d`
# inside the range of `datetime`.
DurationSeconds: TypeAlias = Annotated[int, msgspec.Meta(ge=1, le=100 * 365 * 86_400)]
RoleName: TypeAlias = Role


# omit_defaults: a client encoding params sends only what it sets (the server only decodes).
class Params(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Base of every params struct; `catalogue.METHODS` ties each method to its subclass."""


class JoinRoomParams(Params, frozen=True, kw_only=True):
    room_name: str


class LeaveRoomParams(Params, frozen=True, kw_only=True):
    room_id: str | None = None


class SendMessageParams(Params, frozen=True, kw_only=True):
    text: str
    room_id: str | None = None
    client_msg_id: ClientMsgId | None = None


class ListRoomsParams(Params, frozen=True, kw_only=True):
    pass


class ListMembersParams(Params, frozen=True, kw_only=True):
    room_id: str


class GetHistoryParams(Params, frozen=True, kw_only=True):
    room_id: str
    before_seq: Seq | None = None
    limit: Limit = 50


class KickUserParams(Params, frozen=True, kw_only=True):
    target_username: str
    reason: Reason | None = None
    room_id: str | None = None


class BanUserParams(Params, frozen=True, kw_only=True):
    target_username: str
    reason: Reason | None = None
    duration_seconds: DurationSeconds | None = None


class UnbanUserParams(Params, frozen=True, kw_only=True):
    target_username: str


class SetRoleParams(Params, frozen=True, kw_only=True):
    target_username: str
    role: RoleName


class BroadcastAnnouncementParams(Params, frozen=True, kw_only=True):
    message: str
    level: str = "info"


class DeleteRoomParams(Params, frozen=True, kw_only=True):
    room_id: str


class StartTypingParams(Params, frozen=True, kw_only=True):
    room_id: str | None = None


class StopTypingParams(Params, frozen=True, kw_only=True):
    room_id: str | None = None


class WhoamiParams(Params, frozen=True, kw_only=True):
    pass


class PingParams(Params, frozen=True, kw_only=True):
    pass


# Bounds of section 1's passwords; the handler answers a short one with `weak_password`.
NewPassword: TypeAlias = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class ResetPasswordParams(Params, frozen=True, kw_only=True):
    target_username: str
    new_password: NewPassword


class DisableAccountParams(Params, frozen=True, kw_only=True):
    target_username: str


class EnableAccountParams(Params, frozen=True, kw_only=True):
    target_username: str


class RevokeTokensParams(Params, frozen=True, kw_only=True):
    target_username: str
