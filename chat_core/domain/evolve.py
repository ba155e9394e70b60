"""`evolve(state, recorded) -> state`: fold one journal event into the projection.

Total: it never raises, whatever the event says (an event about a room that no longer exists
changes what it can and nothing else), because start-up must be able to fold any journal
this code ever wrote. It never mutates its input: it returns a new state that shares
unchanged parts with the old one.
"""

from __future__ import annotations

from datetime import datetime
from typing import assert_never

from immutables import Map
from msgspec.structs import replace

from chat_core.domain import events as e
from chat_core.domain.codec import Message
from chat_core.domain.rules import user_key
from chat_core.domain.state import Account, Ban, ChatState, Room

_NO_ROOMS: Map[str, int] = Map()


def evolve(state: ChatState, recorded: e.Recorded) -> ChatState:  # noqa: C901 (one case per kind: a flat match)
    """The state after `recorded`; its `seq` becomes the event's position."""
    event = recorded.event
    match event:
        case e.MessageSent():
            # The hot path: a dict-free update of one room and two counters.
            room = state.rooms.get(event.room_id)
            last_id = state.last_message_id
            if event.message_id > last_id:  # a max() without the builtin call
                last_id = event.message_id
            if room is None:
                return replace(state, seq=recorded.seq, last_message_id=last_id)
            message = Message(
                seq=recorded.seq,
                message_id=event.message_id,
                room_id=event.room_id,
                username=event.username,
                text=event.text,
                timestamp=recorded.at,
                client_msg_id=event.client_msg_id,
            )
            window = state.history_window
            if window > 1:
                recent: tuple[Message, ...] = (*room.recent[-window + 1 :], message)
            else:
                # A window of 1 keeps only this message; of 0 (history_on_join = 0), none.
                recent = (message,) if window == 1 else ()
            room = replace(room, recent=recent, message_count=room.message_count + 1)
            return replace(
                state,
                seq=recorded.seq,
                last_message_id=last_id,
                rooms=state.rooms.set(room.room_id, room),
            )
        case e.UserJoined():
            return replace(_join(state, event, recorded.seq), seq=recorded.seq)
        case e.UserLeft():
            return replace(_leave(state, event.room_id, event.username), seq=recorded.seq)
        case e.AccountRegistered():
            account = Account(
                username=event.username,
                password_hash=event.password_hash,
                role=event.role,
                created_at=recorded.at,
                display_name=event.display_name,
            )
            accounts = state.accounts.set(user_key(event.username), account)
            return replace(state, seq=recorded.seq, accounts=accounts)
        case e.PasswordChanged():
            return replace(
                _update_account(state, event.username, password_hash=event.password_hash),
                seq=recorded.seq,
            )
        case e.RoleChanged():
            return replace(
                _update_account(state, event.username, role=event.role), seq=recorded.seq
            )
        case e.RoomCreated():
            if event.room_id in state.rooms:
                return replace(state, seq=recorded.seq)
            room = Room(
                room_id=event.room_id,
                room_name=event.room_name,
                created_by=event.created_by,
                created_at=recorded.at,
                members=Map(),
                created_seq=recorded.seq,
            )
            return replace(state, seq=recorded.seq, rooms=state.rooms.set(event.room_id, room))
        case e.RoomDeleted():
            return replace(_delete_room(state, event.room_id), seq=recorded.seq)
        case e.UserBanned():
            ban = Ban(until=event.until, reason=event.reason, by=event.by, at=recorded.at)
            bans = state.bans.set(user_key(event.username), ban)
            return replace(state, seq=recorded.seq, bans=bans)
        case e.UserUnbanned():
            key = user_key(event.username)
            bans = state.bans.delete(key) if key in state.bans else state.bans
            return replace(state, seq=recorded.seq, bans=bans)
        case e.PasswordSet():
            return replace(
                _revoke_all(state, event.username, password_hash=event.password_hash),
                seq=recorded.seq,
            )
        case e.AccountDisabled():
            return replace(_revoke_all(state, event.username, disabled=True), seq=recorded.seq)
        case e.AccountEnabled():
            return replace(_update_account(state, event.username, disabled=False), seq=recorded.seq)
        case e.TokensRevoked():
            return replace(_revoke_all(state, event.username), seq=recorded.seq)
        case e.TokenRevoked():
            return replace(
                _revoke_one(state, event.jti, event.expires_at, recorded.at), seq=recorded.seq
            )
        case e.UserKicked() | e.AnnouncementBroadcast():
            # Facts for the record and the notifications; the UserLeft events that follow a
            # kick carry its effect on membership.
            return replace(state, seq=recorded.seq)
        case _:
            assert_never(event)


def _update_account(state: ChatState, username: str, **changes: object) -> ChatState:
    key = user_key(username)
    account = state.accounts.get(key)
    if account is None:
        return state
    return replace(state, accounts=state.accounts.set(key, replace(account, **changes)))


def _revoke_all(state: ChatState, username: str, **changes: object) -> ChatState:
    """`changes` to the account, and every token issued so far refused (its epoch moves on)."""
    account = state.accounts.get(user_key(username))
    if account is None:
        return state
    return _update_account(state, username, token_epoch=account.token_epoch + 1, **changes)


def _revoke_one(state: ChatState, jti: str, expires_at: int, at: datetime) -> ChatState:
    """Remember a logged-out token; drop the expired ones once the map doubled since the last
    pruning (time from the event, not a clock: replay prunes alike; amortized O(1))."""
    revoked = state.revoked_tokens.set(jti, expires_at)
    prune_at = state.revoked_prune_at
    if len(revoked) >= prune_at:
        now = at.timestamp()
        with revoked.mutate() as kept:
            for old, exp in revoked.items():
                if exp <= now:
                    del kept[old]
            revoked = kept.finish()
        prune_at = max(64, 2 * len(revoked))
    return replace(state, revoked_tokens=revoked, revoked_prune_at=prune_at)


def _join(state: ChatState, event: e.UserJoined, seq: int) -> ChatState:
    room = state.rooms.get(event.room_id)
    if room is None:
        return state
    key = user_key(event.username)
    room = replace(room, members=room.members.set(key, event.username))
    joined = state.memberships.get(key, _NO_ROOMS).set(event.room_id, seq)
    return replace(
        state,
        rooms=state.rooms.set(room.room_id, room),
        memberships=state.memberships.set(key, joined),
    )


def _leave(state: ChatState, room_id: str, username: str) -> ChatState:
    key = user_key(username)
    rooms = state.rooms
    room = rooms.get(room_id)
    if room is not None and key in room.members:
        rooms = rooms.set(room_id, replace(room, members=room.members.delete(key)))
    memberships = state.memberships
    joined = memberships.get(key)
    if joined is not None and room_id in joined:
        joined = joined.delete(room_id)
        memberships = memberships.set(key, joined) if joined else memberships.delete(key)
    return replace(state, rooms=rooms, memberships=memberships)


def _delete_room(state: ChatState, room_id: str) -> ChatState:
    room = state.rooms.get(room_id)
    if room is None:
        return state
    for username in list(room.members.values()):
        state = _leave(state, room_id, username)
    return replace(state, rooms=state.rooms.delete(room_id))


def fold(state: ChatState, records: list[e.Recorded]) -> ChatState:
    """Fold many events in order."""
    for recorded in records:
        state = evolve(state, recorded)
    return state
