"""What a durable notification says (docs/protocol.md section 5): one place, live and on resume.

`notice(recorded, before, after)` gives, for a recorded event and the states just before and
just after it, who receives its notification and its payload (`user_count` of `user_joined`
and `user_left` is the room's size in `after`). The hub encodes and fans out what it returns.
Resume walks the journal without those states: it selects the recipient with
`audience.UserView` (a property test holds it equal to `audience`) and takes the counts from
`counts_after`, then builds the payload with the same `payload`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_never

import msgspec

from chat_core.domain import events as e
from chat_core.domain.audience import Audience, audience
from chat_core.domain.state import ChatState
from chat_core.protocol import notifications as n


class Notice(msgspec.Struct, frozen=True, gc=False):
    """A notification: its recipients, method and params."""

    audience: Audience
    method: str
    params: n.Notice


def notice(recorded: e.Recorded, before: ChatState, after: ChatState) -> Notice | None:
    """The notification of `recorded`, or None if clients never see it."""
    found = payload(recorded, user_count_after(recorded, after))
    if found is None:
        return None
    return Notice(audience(recorded, before), *found)


def user_count_after(recorded: e.Recorded, after: ChatState) -> int:
    """The room's member count right after a join or leave (0 for any other event)."""
    event = recorded.event
    if isinstance(event, (e.UserJoined, e.UserLeft)):
        room = after.rooms.get(event.room_id)
        return len(room.members) if room is not None else 0
    return 0


def payload(recorded: e.Recorded, user_count: int = 0) -> tuple[str, n.Notice] | None:  # noqa: C901 (one case per kind: a flat match)
    """(method, params) of an event's notification, or None if clients never see it."""
    event = recorded.event
    seq, at = recorded.seq, recorded.at
    match event:
        case e.MessageSent():
            return "message_received", n.MessageReceived(
                seq=seq,
                message_id=event.message_id,
                room_id=event.room_id,
                username=event.username,
                text=event.text,
                timestamp=at,
                client_msg_id=event.client_msg_id,
            )
        case e.UserJoined():
            return "user_joined", n.UserJoined(
                seq=seq,
                room_id=event.room_id,
                username=event.username,
                user_count=user_count,
                timestamp=at,
            )
        case e.UserLeft():
            return "user_left", n.UserLeft(
                seq=seq,
                room_id=event.room_id,
                username=event.username,
                user_count=user_count,
                reason=event.reason,
                timestamp=at,
            )
        case e.UserKicked():
            return "user_kicked", n.UserKicked(
                seq=seq,
                username=event.username,
                room_id=event.room_id,
                reason=event.reason,
                by=event.by,
                timestamp=at,
            )
        case e.UserBanned():
            return "user_banned", n.UserBanned(
                seq=seq,
                username=event.username,
                reason=event.reason,
                by=event.by,
                until=event.until,
                timestamp=at,
            )
        case e.UserUnbanned():
            return "user_unbanned", n.UserUnbanned(
                seq=seq, username=event.username, by=event.by, timestamp=at
            )
        case e.RoleChanged():
            return "role_changed", n.RoleChanged(
                seq=seq, username=event.username, role=event.role, by=event.by, timestamp=at
            )
        case e.AnnouncementBroadcast():
            return "system_announcement", n.SystemAnnouncement(
                seq=seq, message=event.message, level=event.level, by=event.by, timestamp=at
            )
        case e.RoomCreated():
            return "room_created", n.RoomCreated(
                seq=seq,
                room_id=event.room_id,
                room_name=event.room_name,
                created_by=event.created_by,
                timestamp=at,
            )
        case e.RoomDeleted():
            return "room_deleted", n.RoomDeleted(
                seq=seq, room_id=event.room_id, room_name=event.room_name, by=event.by, timestamp=at
            )
        case (
            e.AccountRegistered()
            | e.PasswordChanged()
            | e.PasswordSet()
            | e.AccountDisabled()
            | e.AccountEnabled()
            | e.TokensRevoked()
            | e.TokenRevoked()
        ):
            return None
        case _:
            assert_never(event)


def counts_after(records: Sequence[e.Recorded], final: ChatState) -> dict[int, int]:
    """seq -> the room's member count right after each join or leave in `records` (resume).

    `final` is the state right after the last record. Walking back from it, a join added one
    member and a leave removed one; a deletion emptied a room of its recorded members. Equal
    to `user_count_after` with the state after each record, without holding those states.
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
