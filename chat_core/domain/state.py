"""The in-memory projection of the journal, and pure queries over it.

Values are frozen Structs and persistent maps (`immutables.Map`, a HAMT): evolving a state
returns a new one sharing almost everything with the old, in O(log n), so a snapshot handed
to a caller stays valid while the processor moves on, and nothing is ever mutated in place.
Memory stays bounded as history grows: a room keeps only a window of recent messages; older
pages are read from the journal.
"""

from __future__ import annotations

from datetime import datetime

import msgspec
from immutables import Map

# Message lives in the codec, so that the journal can build history pages without the state.
from chat_core.domain.codec import Message
from chat_core.domain.rules import Role, is_disabled, user_key


class Account(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    username: str  # the spelling chosen at registration
    password_hash: str
    role: Role
    created_at: datetime
    display_name: str | None = None
    disabled: bool = False  # by an admin (`account_disabled`); the hash is kept
    # Bumped by each password set, disable and revoke-all: a token carrying a lower epoch
    # (claim `tep`, 0 when absent) was issued before it and is refused, even in the same second.
    token_epoch: int = 0


class Ban(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    until: datetime | None  # None: for ever
    reason: str | None
    by: str
    at: datetime


class Room(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    room_id: str
    room_name: str  # the creator's spelling
    created_by: str
    created_at: datetime
    members: Map[str, str]  # user key -> username spelling
    recent: tuple[Message, ...] = ()  # the last `history_window` messages, oldest first
    message_count: int = 0
    # The seq of the RoomCreated event: history pages of a re-created room start after it.
    created_seq: int = 0


class ChatState(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    seq: int = 0  # position of the last event folded in
    last_message_id: int = 0  # message ids are never reused: this survives restarts
    history_window: int = 50
    accounts: Map[str, Account] = Map()
    rooms: Map[str, Room] = Map()
    # user key -> (room id -> seq of the join): the user's rooms, and which was joined last
    memberships: Map[str, Map[str, int]] = Map()
    bans: Map[str, Ban] = Map()
    # Logged-out tokens: jti -> its exp (unix s). Expired ones are dropped as revocations are
    # folded (see evolve), so this holds at most the logouts of one token lifetime.
    revoked_tokens: Map[str, int] = Map()
    revoked_prune_at: int = 64  # size at which the next revocation drops the expired


def initial_state(history_window: int = 50) -> ChatState:
    """The state before any event; `history_window` is how many messages a room keeps."""
    return ChatState(history_window=history_window)


def is_usable(account: Account) -> bool:
    """False for an account disabled by an admin or by the server (an unusable hash)."""
    return not account.disabled and not is_disabled(account.password_hash)


def token_refused(state: ChatState, account: Account, epoch: int, jti: str) -> bool:
    """True for a token issued before the account's last revocation, or logged out."""
    return epoch < account.token_epoch or jti in state.revoked_tokens


def active_ban(state: ChatState, username: str, now: datetime) -> Ban | None:
    """The user's ban if it is still in force at `now` (bans expire without an event)."""
    ban = state.bans.get(user_key(username))
    if ban is None or (ban.until is not None and ban.until <= now):
        return None
    return ban


def rooms_of(state: ChatState, username: str) -> list[str]:
    """The room ids the user is a member of, sorted."""
    return sorted(state.memberships.get(user_key(username), Map()).keys())


def current_room_of(state: ChatState, username: str) -> str | None:
    """The user's most recently joined room that it is still in, or None."""
    joined = state.memberships.get(user_key(username))
    if not joined:
        return None
    return max(joined.items(), key=lambda item: item[1])[0]


def is_member(state: ChatState, username: str, room_id: str) -> bool:
    return room_id in state.memberships.get(user_key(username), Map())


def member_names(room: Room) -> list[str]:
    """A room's usernames, sorted case-insensitively."""
    return [room.members[key] for key in sorted(room.members.keys())]
