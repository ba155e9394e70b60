"""The resume backlog (docs/protocol.md section 5): what a user missed between seq N and head H.

From the state at H, `UserView.rewind` rebuilds the user's rooms and role at N; walking the
journal forward from N with `UserView.receives` then selects exactly the notifications a
connection of that user would have received. Two passes over N..H keep memory flat: the first
reads only the events that rewinding needs (membership, roles, rooms; SQLite skips the rest),
the second streams, without the messages of rooms the user was never in. A client too far
behind is told to resync without a scan: the work of a resume is bounded by the configured
limit, not by the journal's length.
"""

from __future__ import annotations

from typing import Final

from chat_core.domain import codec
from chat_core.domain import events as e
from chat_core.domain.audience import UserView
from chat_core.domain.rules import user_key
from chat_core.domain.state import ChatState
from chat_core.journal.port import JournalPort
from chat_core.protocol.notify import counts_after
from chat_web.hub.notifications import frame_of

_STRUCTURAL = (e.UserJoined, e.UserLeft, e.RoomDeleted, e.RoomCreated, e.RoleChanged)
_REWIND_TAGS: Final = frozenset(codec.TAGS[t] for t in (*_STRUCTURAL, e.AccountRegistered))
# A client more than this many times `limit` events behind resyncs whatever it would receive:
# a resume from seq 1 of a 1M-event journal took 3.6 s of the server's CPU.
SCAN_FACTOR: Final = 10


def _needed_for_rewind(key: str, event: e.Event) -> bool:
    """Events that change a member count or this user's rooms or role."""
    if isinstance(event, _STRUCTURAL):
        return True
    return isinstance(event, e.AccountRegistered) and user_key(event.username) == key


async def backlog(
    journal: JournalPort,
    snapshot: ChatState,
    username: str,
    since: int,
    limit: int,
    max_chars: int = 0,
) -> list[str] | None:
    """The frames the user missed after `since`, up to the snapshot's head, oldest first.

    None when there are more than `limit` of them, or more than `max_chars` characters (0: no
    bound; `server.send_queue_bytes`), or the journal has more than `limit * SCAN_FACTOR`
    events after `since`: the client must resync instead.
    """
    head = snapshot.seq
    if since >= head:
        return []
    if head - since > limit * SCAN_FACTOR:
        return None
    view = UserView.now(snapshot, username)
    kept: list[e.Recorded] = []
    async for page in journal.read(after=since, until=head, tags=_REWIND_TAGS):
        kept.extend(r for r in page if _needed_for_rewind(view.key, r.event))
    view.rewind(kept)
    counts = counts_after(kept, snapshot)
    # Messages go to their room's members only: those of rooms this user was never in during
    # the span stay in SQLite, unread (most of a busy journal).
    rooms = view.rooms | {
        r.event.room_id
        for r in kept
        if isinstance(r.event, e.UserJoined) and user_key(r.event.username) == view.key
    }
    del kept
    frames: list[str] = []
    chars = 0
    async for page in journal.read(after=since, until=head, message_rooms=rooms):
        for recorded in page:
            if not view.receives(recorded):
                continue
            frame = frame_of(recorded, counts.get(recorded.seq, 0))
            if frame is None:
                continue
            chars += len(frame)
            if len(frames) >= limit or 0 < max_chars < chars:
                return None
            frames.append(frame)
    return frames
