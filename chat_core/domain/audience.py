"""Who receives each durable notification (docs/protocol.md section 5), live and on resume.

Two views of one rule. `audience(recorded, before)` answers for everyone at once from the
state just before the event (the hub's fan-out). `UserView.receives(recorded)` answers for one
user while walking the journal forward (resume), with `UserView.rewind` rebuilding that user's
rooms and role at an earlier seq from the current state. A property test holds them equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import assert_never

import msgspec

from chat_core.domain import events as e
from chat_core.domain.rules import at_least, user_key
from chat_core.domain.state import ChatState


class Audience(msgspec.Struct, frozen=True):
    """Recipients as user keys, or `everyone` connected."""

    users: Iterable[str] = ()
    everyone: bool = False


EVERYONE = Audience(everyone=True)
NOBODY = Audience()


def audience(recorded: e.Recorded, before: ChatState) -> Audience:  # noqa: C901 (one case per kind: a flat match)
    """The users who receive the notification of `recorded`, given the state before it."""
    event = recorded.event
    match event:
        case e.MessageSent():
            room = before.rooms.get(event.room_id)
            # The members map itself (iterated, its keys): the same object for every message
            # until someone joins or leaves, so the hub sends a run of them together.
            return Audience(room.members) if room is not None else NOBODY
        case e.UserJoined():
            room = before.rooms.get(event.room_id)
            joiner = user_key(event.username)
            others = [key for key in room.members if key != joiner] if room else []
            return Audience([*others, joiner])
        case e.UserLeft():
            # The leaver is still a member in `before`, so the members are the audience.
            room = before.rooms.get(event.room_id)
            leaver = user_key(event.username)
            others = [key for key in room.members if key != leaver] if room else []
            return Audience([*others, leaver])
        case e.UserKicked() | e.UserBanned():
            users = {user_key(event.username)}
            for room_id in event.rooms:
                room = before.rooms.get(room_id)
                if room is not None:
                    users.update(room.members.keys())
            return Audience(users)
        case e.UserUnbanned():
            return Audience(staff_of(before))
        case e.RoleChanged():
            return Audience(staff_of(before) | {user_key(event.username)})
        case e.AnnouncementBroadcast() | e.RoomCreated() | e.RoomDeleted():
            return EVERYONE
        case e.AccountRegistered() | e.PasswordChanged():
            return NOBODY
        case (
            e.PasswordSet()
            | e.AccountDisabled()
            | e.AccountEnabled()
            | e.TokensRevoked()
            | e.TokenRevoked()
        ):
            # Account facts: no notification; the hub closes the sessions they end.
            return NOBODY
        case _:
            assert_never(event)


def staff_of(state: ChatState) -> set[str]:
    """User keys of moderators and admins."""
    return {key for key, account in state.accounts.items() if at_least(account.role, "moderator")}


class UserView(msgspec.Struct, kw_only=True):
    """One user's rooms and role at some seq: all that decides what it receives."""

    key: str
    role: str | None
    rooms: set[str]

    @classmethod
    def now(cls, state: ChatState, username: str) -> UserView:
        key = user_key(username)
        account = state.accounts.get(key)
        joined = state.memberships.get(key)
        return cls(
            key=key,
            role=account.role if account else None,
            rooms=set(joined.keys()) if joined else set(),
        )

    def rewind(self, later: Sequence[e.Recorded]) -> None:
        """Undo, newest first, the changes `later` made to this user's rooms and role."""
        for recorded in reversed(later):
            event = recorded.event
            match event:
                case e.UserJoined() if user_key(event.username) == self.key:
                    self.rooms.discard(event.room_id)
                case e.UserLeft() if user_key(event.username) == self.key:
                    self.rooms.add(event.room_id)
                case e.RoomDeleted() if self.key in map(user_key, event.members):
                    self.rooms.add(event.room_id)
                case e.RoleChanged() if user_key(event.username) == self.key:
                    self.role = event.previous
                case e.AccountRegistered() if user_key(event.username) == self.key:
                    self.role = None
                case _:
                    pass

    def receives(self, recorded: e.Recorded) -> bool:  # noqa: C901 (one case per kind: a flat match)
        """Whether this user gets the notification of `recorded`; then steps past it."""
        event = recorded.event
        mine = getattr(event, "username", None)
        is_me = isinstance(mine, str) and user_key(mine) == self.key
        if self.role is None and not is_me:
            # Before the account existed nobody could have been connected as it.
            return False
        match event:
            case e.MessageSent():
                return event.room_id in self.rooms
            case e.UserJoined():
                if is_me:
                    self.rooms.add(event.room_id)
                return event.room_id in self.rooms
            case e.UserLeft():
                got = event.room_id in self.rooms
                if is_me:
                    self.rooms.discard(event.room_id)
                return got
            case e.UserKicked() | e.UserBanned():
                return is_me or any(room_id in self.rooms for room_id in event.rooms)
            case e.UserUnbanned():
                return self.role is not None and at_least(self.role, "moderator")
            case e.RoleChanged():
                got = is_me or (self.role is not None and at_least(self.role, "moderator"))
                if is_me:
                    self.role = event.role
                return got
            case e.RoomDeleted():
                self.rooms.discard(event.room_id)
                return True
            case e.AnnouncementBroadcast() | e.RoomCreated():
                return True
            case e.AccountRegistered():
                if is_me:
                    self.role = event.role
                return False
            case e.PasswordChanged():
                return False
            case (
                e.PasswordSet()
                | e.AccountDisabled()
                | e.AccountEnabled()
                | e.TokensRevoked()
                | e.TokenRevoked()
            ):
                return False
            case _:
                assert_never(event)
