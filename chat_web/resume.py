"""The resume backlog (PROTOCOL.md section 5): what a user missed between seq N and head H.

From the state at H, `UserView.rewind` rebuilds the user's rooms and role at N; walking the
journal forward from N with `UserView.receives` then selects exactly the notifications a
connection of that user would have received. Two passes over N..H keep memory flat: the first
keeps only the events that rewinding needs (membership, roles, rooms), the second streams.
"""

from __future__ import annotations

from chat_core import events as e
from chat_core.audience import UserView
from chat_core.journal import Journal
from chat_core.rules import user_key
from chat_core.state import ChatState
from chat_web.notifications import counts_after, frame_of

_STRUCTURAL = (e.UserJoined, e.UserLeft, e.RoomDeleted, e.RoomCreated, e.RoleChanged)


def _needed_for_rewind(key: str, event: e.Event) -> bool:
    """Events that change a member count or this user's rooms or role."""
    if isinstance(event, _STRUCTURAL):
        return True
    return isinstance(event, e.AccountRegistered) and user_key(event.username) == key


async def backlog(
    journal: Journal, snapshot: ChatState, username: str, since: int, limit: int
) -> list[str] | None:
    """The frames the user missed after `since`, up to the snapshot's head, oldest first.

    None when there are more than `limit` of them: the client must resync instead.
    """
    head = snapshot.seq
    if since >= head:
        return []
    view = UserView.now(snapshot, username)
    kept: list[e.Recorded] = []
    async for page in journal.read(after=since, until=head):
        kept.extend(r for r in page if _needed_for_rewind(view.key, r.event))
    view.rewind(kept)
    counts = counts_after(kept, snapshot)
    del kept
    frames: list[str] = []
    async for page in journal.read(after=since, until=head):
        for recorded in page:
            if not view.receives(recorded):
                continue
            frame = frame_of(recorded, counts.get(recorded.seq, 0))
            if frame is None:
                continue
            if len(frames) >= limit:
                return None
            frames.append(frame)
    return frames
