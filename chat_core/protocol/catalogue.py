"""The wire catalogue: every method (name, params, result, errors) and every notification of
docs/protocol.md sections 4 and 5. The server's handler table, the CLI's codec and the AsyncAPI
document all come from here; a test holds it equal to the protocol document's tables."""

from __future__ import annotations

from typing import Final

import msgspec

from chat_core.protocol import notifications as n
from chat_core.protocol import params as p
from chat_core.protocol import results as r
from chat_core.protocol.codes import (
    COMMON_ERRORS,
    NOT_A_MEMBER,
    ROOM_FULL,
    ErrorKind,
    forbidden,
    invalid_params,
    not_found,
)

_ROOM = not_found("room_not_found")
_TEXT = invalid_params("invalid_text", "empty_message", "message_too_long")
_ADMIN_ON = forbidden("insufficient_role", "cannot_moderate_peer", "cannot_target_self")
_MODERATE = forbidden("insufficient_role", "cannot_moderate_peer", "cannot_target_self")


class Method(msgspec.Struct, frozen=True, kw_only=True):
    """One JSON-RPC method: its params and result structs and the errors of its own."""

    name: str
    summary: str
    params: type[p.Params]
    result: type[msgspec.Struct]
    # Besides `COMMON_ERRORS`, which any request may get.
    errors: tuple[ErrorKind, ...] = ()


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    """One server-to-client notification and its params struct."""

    name: str
    summary: str
    params: type[msgspec.Struct]


_METHODS: Final = (
    Method(
        name="join_room",
        summary="Join a room, creating it if it does not exist.",
        params=p.JoinRoomParams,
        result=r.JoinRoomResult,
        errors=(invalid_params("invalid_room_name"), ROOM_FULL),
    ),
    Method(
        name="leave_room",
        summary="Leave a room (default: the current room).",
        params=p.LeaveRoomParams,
        result=r.LeaveRoomResult,
        errors=(_ROOM, NOT_A_MEMBER),
    ),
    Method(
        name="send_message",
        summary="Send a message to a room (default: the current room).",
        params=p.SendMessageParams,
        result=r.SendMessageResult,
        errors=(_TEXT, _ROOM, NOT_A_MEMBER),
    ),
    Method(
        name="list_rooms",
        summary="Every room, with member and online counts.",
        params=p.ListRoomsParams,
        result=r.RoomList,
    ),
    Method(
        name="list_members",
        summary="A room's members, with role and presence.",
        params=p.ListMembersParams,
        result=r.MemberList,
        errors=(_ROOM,),
    ),
    Method(
        name="get_history",
        summary="A page of a room's messages, oldest first.",
        params=p.GetHistoryParams,
        result=r.GetHistoryResult,
        errors=(_ROOM, NOT_A_MEMBER),
    ),
    Method(
        name="kick_user",
        summary="Remove a user from a room, or from the chat (moderator).",
        params=p.KickUserParams,
        result=r.KickUserResult,
        errors=(
            invalid_params("invalid_text"),
            _MODERATE,
            not_found("user_not_found", "room_not_found"),
            NOT_A_MEMBER,
        ),
    ),
    Method(
        name="ban_user",
        summary="Ban a user, for a time or for ever (moderator).",
        params=p.BanUserParams,
        result=r.BanUserResult,
        errors=(invalid_params("invalid_text"), _MODERATE, not_found("user_not_found")),
    ),
    Method(
        name="unban_user",
        summary="Lift a user's ban (moderator).",
        params=p.UnbanUserParams,
        result=r.UnbanUserResult,
        errors=(_MODERATE, not_found("user_not_found")),
    ),
    Method(
        name="set_role",
        summary="Make a user a user, moderator or admin (admin).",
        params=p.SetRoleParams,
        result=r.SetRoleResult,
        errors=(forbidden("insufficient_role", "cannot_target_self"), not_found("user_not_found")),
    ),
    Method(
        name="broadcast_announcement",
        summary="Announce to every user (admin).",
        params=p.BroadcastAnnouncementParams,
        result=r.BroadcastAnnouncementResult,
        errors=(
            invalid_params("invalid_level", "invalid_text", "empty_message", "message_too_long"),
            forbidden("insufficient_role"),
        ),
    ),
    Method(
        name="delete_room",
        summary="Delete a room and end its memberships (admin).",
        params=p.DeleteRoomParams,
        result=r.DeleteRoomResult,
        errors=(forbidden("insufficient_role"), _ROOM),
    ),
    Method(
        name="reset_password",
        summary="Set another user's password; its tokens are revoked (admin).",
        params=p.ResetPasswordParams,
        result=r.ResetPasswordResult,
        errors=(invalid_params("weak_password"), _ADMIN_ON, not_found("user_not_found")),
    ),
    Method(
        name="disable_account",
        summary="Disable an account: no login, its tokens revoked (admin).",
        params=p.DisableAccountParams,
        result=r.AccountStatusResult,
        errors=(_ADMIN_ON, not_found("user_not_found")),
    ),
    Method(
        name="enable_account",
        summary="Re-enable a disabled account with its kept password (admin).",
        params=p.EnableAccountParams,
        result=r.AccountStatusResult,
        errors=(invalid_params("no_password"), _ADMIN_ON, not_found("user_not_found")),
    ),
    Method(
        name="revoke_tokens",
        summary="Revoke every token of a user issued so far (admin).",
        params=p.RevokeTokensParams,
        result=r.RevokeTokensResult,
        errors=(_ADMIN_ON, not_found("user_not_found")),
    ),
    Method(
        name="start_typing",
        summary="Tell a room's other members the caller is typing.",
        params=p.StartTypingParams,
        result=r.Empty,
        errors=(_ROOM, NOT_A_MEMBER),
    ),
    Method(
        name="stop_typing",
        summary="Tell a room's other members the caller stopped typing.",
        params=p.StopTypingParams,
        result=r.Empty,
        errors=(_ROOM, NOT_A_MEMBER),
    ),
    Method(
        name="whoami",
        summary="The caller's identity, rooms and current room.",
        params=p.WhoamiParams,
        result=r.WhoAmI,
    ),
    Method(
        name="ping",
        summary="A liveness check with the journal's head.",
        params=p.PingParams,
        result=r.PingResult,
    ),
)

_NOTIFICATIONS: Final = (
    Notification(
        name="connection_established",
        summary="The first frame of every connection.",
        params=n.ConnectionEstablished,
    ),
    Notification(name="message_received", summary="A message in a room.", params=n.MessageReceived),
    Notification(name="user_joined", summary="A user joined a room.", params=n.UserJoined),
    Notification(name="user_left", summary="A user left or lost a room.", params=n.UserLeft),
    Notification(name="user_kicked", summary="A user was kicked.", params=n.UserKicked),
    Notification(name="user_banned", summary="A user was banned.", params=n.UserBanned),
    Notification(name="user_unbanned", summary="A user's ban was lifted.", params=n.UserUnbanned),
    Notification(name="role_changed", summary="A user's role changed.", params=n.RoleChanged),
    Notification(
        name="system_announcement", summary="An admin's announcement.", params=n.SystemAnnouncement
    ),
    Notification(name="room_created", summary="A room was created.", params=n.RoomCreated),
    Notification(name="room_deleted", summary="A room was deleted.", params=n.RoomDeleted),
    Notification(
        name="presence_changed",
        summary="A user came online or went offline.",
        params=n.PresenceChanged,
    ),
    Notification(
        name="user_started_typing", summary="A room member started typing.", params=n.Typing
    ),
    Notification(
        name="user_stopped_typing", summary="A room member stopped typing.", params=n.Typing
    ),
    Notification(
        name="resync_required",
        summary="Too much was missed for a resume: refetch state.",
        params=n.ResyncRequired,
    ),
)

METHODS: Final[dict[str, Method]] = {method.name: method for method in _METHODS}
NOTIFICATIONS: Final[dict[str, Notification]] = {item.name: item for item in _NOTIFICATIONS}
# Method name -> params struct: what the JSON-RPC parser decodes.
PARAMS: Final[dict[str, type[p.Params]]] = {name: m.params for name, m in METHODS.items()}


def errors_of(method: Method) -> tuple[ErrorKind, ...]:
    """Every error a method may answer with, one kind a code, reasons merged."""
    reasons: dict[int, list[str]] = {}
    for kind in (*COMMON_ERRORS, *method.errors):
        known = reasons.setdefault(kind.code, [])
        known.extend(reason for reason in kind.reasons if reason not in known)
    return tuple(ErrorKind(code=code, reasons=tuple(found)) for code, found in reasons.items())


# Params struct -> its method: a client names a call by the params it sends.
METHOD_OF: Final[dict[type[p.Params], Method]] = {m.params: m for m in METHODS.values()}
