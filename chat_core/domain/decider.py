"""`decide(command, state) -> events`: every rule of the protocol, pure.

A decision reads only its command and the state: no clock, no I/O, no randomness. It either
returns the events that record the command (an empty list when there is nothing to change,
such as a re-join) or raises a `Rejected` error carrying its JSON-RPC code and reason.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import assert_never

from chat_core.domain import accounts
from chat_core.domain import commands as c
from chat_core.domain import events as e
from chat_core.domain.rules import (
    DISABLED_HASH,
    LEVELS,
    MAX_DISPLAY_NAME_LENGTH,
    RESERVED_USERNAMES,
    ROLE_RANK,
    SYSTEM_ACTOR,
    Level,
    Role,
    at_least,
    check_plain,
    check_text,
    is_disabled,
    is_valid_room_name,
    is_valid_username,
    outranks,
    room_key,
    user_key,
    with_article,
)
from chat_core.domain.state import (
    Account,
    ChatState,
    Room,
    active_ban,
    is_member,
    is_usable,
    rooms_of,
)
from chat_core.errors import (
    Banned,
    Forbidden,
    InvalidParams,
    NotAMember,
    NotFound,
    RoomFull,
    Unauthenticated,
    UsernameTaken,
)

_SYSTEM = Account(
    username=SYSTEM_ACTOR,
    password_hash="",
    role="admin",
    created_at=datetime(1970, 1, 1, tzinfo=UTC),
)


def decide(command: c.Command, state: ChatState) -> list[e.Event]:  # noqa: C901 (one case per kind: a flat match)
    """The events that carry out `command` against `state`, or a `Rejected` error."""
    match command:
        case c.SendMessage():  # the hot path first: a match tries its cases in order
            return _send(command, state)
        case c.RegisterAccount():
            return _register(command, state)
        case c.EnsureAccount():
            return _ensure_account(command, state)
        case c.RehashPassword():
            return _rehash(command, state)
        case c.DisableAccount():
            return _disable_account(command, state)
        case c.ChangePassword():
            return accounts.change_password(command, _actor(command, state))
        case c.Logout():
            return accounts.logout(command, _actor(command, state), state)
        case c.ResetPassword():
            return accounts.reset_password(command, _actor(command, state), state)
        case c.DisableUser():
            return accounts.disable(command, _actor(command, state), state)
        case c.EnableUser():
            return accounts.enable(command, _actor(command, state), state)
        case c.RevokeTokens():
            return accounts.revoke_tokens(command, _actor(command, state), state)
        case c.CreateRoom():
            _require(_actor(command, state), "admin")
            return _create_room(command, state)
        case c.JoinRoom():
            return _join(command, state)
        case c.LeaveRoom():
            return _leave(command, state)
        case c.KickUser():
            return _kick(command, state)
        case c.BanUser():
            return _ban(command, state)
        case c.UnbanUser():
            return _unban(command, state)
        case c.SetRole():
            return _set_role(command, state)
        case c.BroadcastAnnouncement():
            return _announce(command, state)
        case c.DeleteRoom():
            return _delete_room(command, state)
        case _:
            assert_never(command)


def authorize(state: ChatState, username: str, at: datetime) -> Account:
    """The acting account, if it exists and is not banned at `at`.

    Every command, reads included, passes here: the current role and bans count, not the
    token's claims.
    """
    if username == SYSTEM_ACTOR:
        return _SYSTEM
    account = state.accounts.get(user_key(username))
    if account is None:
        raise Unauthenticated("the account no longer exists", "invalid_token")
    # `state.bans` first: with nobody banned (the usual case) no look-up at all.
    if state.bans and active_ban(state, account.username, at) is not None:
        raise Banned("you are banned")
    if not is_usable(account):
        raise Unauthenticated("the account is disabled", "invalid_token")
    return account


def _actor(command: c.Command, state: ChatState) -> Account:
    return authorize(state, command.actor, command.at)


def _require(actor: Account, role: Role) -> None:
    if not at_least(actor.role, role):
        raise Forbidden(f"this needs the {role} role", "insufficient_role")


def existing_room(state: ChatState, room_id: str) -> Room:
    """The room named `room_id` (any letter case), or `room_not_found`."""
    room = state.rooms.get(room_key(room_id))
    if room is None:
        raise NotFound(f"no room {room_id!r}", "room_not_found")
    return room


def member_room(state: ChatState, username: str, room_id: str) -> Room:
    """The room, if `username` is a member of it: else `room_not_found` or `not_a_member`."""
    room = existing_room(state, room_id)
    if user_key(username) not in room.members:
        raise NotAMember(f"you are not a member of {room.room_id!r}")
    return room


def _target(state: ChatState, actor: Account, username: str, *, peer_check: bool) -> Account:
    """The account a moderation command acts on, checked against the hierarchy."""
    target = state.accounts.get(user_key(username))
    if target is None:
        raise NotFound(f"no user {username!r}", "user_not_found")
    if user_key(target.username) == user_key(actor.username):
        raise Forbidden("you cannot do this to yourself", "cannot_target_self")
    if peer_check and actor is not _SYSTEM and not outranks(actor.role, target.role):
        raise Forbidden(
            f"{with_article(actor.role)} cannot act on {with_article(target.role)}",
            "cannot_moderate_peer",
        )
    return target


def _check_reason(reason: str | None) -> None:
    # Reasons are optional and may be blank; they are shown, so no control characters.
    if reason is not None:
        check_plain(reason, "reason")


def _register(command: c.RegisterAccount, state: ChatState) -> list[e.Event]:
    name = command.username
    if not is_valid_username(name) or user_key(name) in RESERVED_USERNAMES:
        raise InvalidParams("usernames are 3 to 32 of A-Z a-z 0-9 _ . -", "invalid_username")
    if user_key(name) in state.accounts:
        raise UsernameTaken(f"the username {name!r} is taken")
    if command.display_name is not None:
        check_text(command.display_name, MAX_DISPLAY_NAME_LENGTH, "display_name")
    return [
        e.AccountRegistered(
            username=name, password_hash=command.password_hash, display_name=command.display_name
        )
    ]


def _ensure_account(command: c.EnsureAccount, state: ChatState) -> list[e.Event]:
    if command.actor != SYSTEM_ACTOR:
        raise Forbidden("only the server configures accounts", "insufficient_role")
    name = command.username
    if not is_valid_username(name) or user_key(name) in RESERVED_USERNAMES:
        raise InvalidParams(f"invalid configured username {name!r}", "invalid_username")
    if command.role not in ROLE_RANK:
        raise InvalidParams(f"unknown role {command.role!r}", "invalid_params")
    existing = state.accounts.get(user_key(name))
    if existing is None:
        if command.password_hash is None:
            raise InvalidParams("a new account needs a password", "invalid_params")
        return [
            e.AccountRegistered(
                username=name, password_hash=command.password_hash, role=command.role
            )
        ]
    out: list[e.Event] = []
    if existing.role != command.role:
        out.append(
            e.RoleChanged(
                username=existing.username,
                role=command.role,
                by=SYSTEM_ACTOR,
                previous=existing.role,
            )
        )
    if command.password_hash is not None and command.password_hash != existing.password_hash:
        out.append(
            e.PasswordChanged(username=existing.username, password_hash=command.password_hash)
        )
    return out


def _rehash(command: c.RehashPassword, state: ChatState) -> list[e.Event]:
    if command.actor != SYSTEM_ACTOR:
        raise Forbidden("only the server rehashes passwords", "insufficient_role")
    existing = state.accounts.get(user_key(command.username))
    if existing is None or existing.password_hash != command.old_hash:
        return []
    return [e.PasswordChanged(username=existing.username, password_hash=command.password_hash)]


def _disable_account(command: c.DisableAccount, state: ChatState) -> list[e.Event]:
    if command.actor != SYSTEM_ACTOR:
        raise Forbidden("only the server disables accounts", "insufficient_role")
    account = state.accounts.get(user_key(command.username))
    if account is None:
        raise NotFound(f"no user {command.username!r}", "user_not_found")
    if is_disabled(account.password_hash):
        return []
    # An existing event does it: replay, resume and every check read the hash already.
    return [e.PasswordChanged(username=account.username, password_hash=DISABLED_HASH)]


def _create_room(command: c.CreateRoom | c.JoinRoom, state: ChatState) -> list[e.Event]:
    name = command.room_name
    if not is_valid_room_name(name, command.limits.max_room_name_length):
        raise InvalidParams(
            f"room names are 1 to {command.limits.max_room_name_length} of A-Z a-z 0-9 _ -,"
            " starting with a letter or digit",
            "invalid_room_name",
        )
    if room_key(name) in state.rooms:
        return []
    creator = state.accounts.get(user_key(command.actor))
    return [
        e.RoomCreated(
            room_id=room_key(name),
            room_name=name,
            created_by=creator.username if creator else command.actor,
        )
    ]


def _join(command: c.JoinRoom, state: ChatState) -> list[e.Event]:
    actor = _actor(command, state)
    created = _create_room(command, state)
    room_id = room_key(command.room_name)
    room = state.rooms.get(room_id)
    if room is not None:
        if user_key(actor.username) in room.members:
            return []
        limit = command.limits.max_users_per_room
        if limit and len(room.members) >= limit:
            raise RoomFull(f"{room.room_name!r} has {limit} members, its limit")
    return [*created, e.UserJoined(room_id=room_id, username=actor.username)]


def _leave(command: c.LeaveRoom, state: ChatState) -> list[e.Event]:
    actor = _actor(command, state)
    room = member_room(state, actor.username, command.room_id)
    return [e.UserLeft(room_id=room.room_id, username=actor.username, reason="left")]


def _send(command: c.SendMessage, state: ChatState) -> list[e.Event]:
    actor = _actor(command, state)
    room = member_room(state, actor.username, command.room_id)
    check_text(command.text, command.limits.max_message_length, "text")
    return [
        e.MessageSent(
            message_id=state.last_message_id + 1,
            room_id=room.room_id,
            username=actor.username,
            text=command.text,
            client_msg_id=command.client_msg_id,
        )
    ]


def _removals(target: Account, rooms: list[str], reason: str) -> list[e.Event]:
    return [
        e.UserLeft(room_id=room_id, username=target.username, reason=reason)  # type: ignore[arg-type]
        for room_id in rooms
    ]


def _kick(command: c.KickUser, state: ChatState) -> list[e.Event]:
    actor = _actor(command, state)
    _require(actor, "moderator")
    target = _target(state, actor, command.target, peer_check=True)
    _check_reason(command.reason)
    if command.room_id is None:
        rooms = rooms_of(state, target.username)
    else:
        room = existing_room(state, command.room_id)
        if not is_member(state, target.username, room.room_id):
            raise NotAMember(f"{target.username} is not a member of {room.room_id!r}")
        rooms = [room.room_id]
    kicked = e.UserKicked(
        username=target.username,
        room_id=None if command.room_id is None else rooms[0],
        rooms=tuple(rooms),
        reason=command.reason,
        by=actor.username,
    )
    return [kicked, *_removals(target, rooms, "kicked")]


def _ban(command: c.BanUser, state: ChatState) -> list[e.Event]:
    actor = _actor(command, state)
    _require(actor, "moderator")
    target = _target(state, actor, command.target, peer_check=True)
    _check_reason(command.reason)
    if command.duration_seconds is not None and command.duration_seconds < 1:
        raise InvalidParams("duration_seconds must be at least 1", "invalid_params")
    until = (
        None
        if command.duration_seconds is None
        else command.at + timedelta(seconds=command.duration_seconds)
    )
    rooms = rooms_of(state, target.username)
    banned = e.UserBanned(
        username=target.username,
        rooms=tuple(rooms),
        reason=command.reason,
        by=actor.username,
        until=until,
    )
    return [banned, *_removals(target, rooms, "banned")]


def _unban(command: c.UnbanUser, state: ChatState) -> list[e.Event]:
    actor = _actor(command, state)
    _require(actor, "moderator")
    target = _target(state, actor, command.target, peer_check=True)
    if active_ban(state, target.username, command.at) is None:
        return []
    return [e.UserUnbanned(username=target.username, by=actor.username)]


def _set_role(command: c.SetRole, state: ChatState) -> list[e.Event]:
    actor = _actor(command, state)
    _require(actor, "admin")
    if command.role not in ROLE_RANK:
        raise InvalidParams(f"unknown role {command.role!r}", "invalid_params")
    # Admins may change other admins, so no peer check; never their own role.
    target = _target(state, actor, command.target, peer_check=False)
    if target.role == command.role:
        return []
    role: Role = command.role  # type: ignore[assignment]
    return [
        e.RoleChanged(username=target.username, role=role, by=actor.username, previous=target.role)
    ]


def _announce(command: c.BroadcastAnnouncement, state: ChatState) -> list[e.Event]:
    actor = _actor(command, state)
    _require(actor, "admin")
    if command.level not in LEVELS:
        raise InvalidParams("level is one of info, warning, error", "invalid_level")
    check_text(command.message, command.limits.max_message_length, "message")
    level: Level = command.level  # type: ignore[assignment]
    return [e.AnnouncementBroadcast(message=command.message, level=level, by=actor.username)]


def _delete_room(command: c.DeleteRoom, state: ChatState) -> list[e.Event]:
    actor = _actor(command, state)
    _require(actor, "admin")
    room = existing_room(state, command.room_id)
    members = tuple(room.members[key] for key in sorted(room.members.keys()))
    return [
        e.RoomDeleted(
            room_id=room.room_id, room_name=room.room_name, by=actor.username, members=members
        )
    ]
