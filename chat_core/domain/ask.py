"""What the edge asks the core before (or instead of) queuing a command.

The web layer never calls `decide`: these answer from the same rules, raising the same
rejections, so an answer here and the processor's decision cannot disagree.
"""

from __future__ import annotations

from chat_core.domain import commands as c
from chat_core.domain import events as e
from chat_core.domain.decider import decide
from chat_core.domain.state import ChatState


def creates_room(command: c.JoinRoom, state: ChatState) -> bool:
    """Whether the join would create its room (`rate_limit.rooms_per_hour` counts those).

    The join's own rejections (a bad name first) are raised, before any limit of the edge's.
    """
    return any(isinstance(event, e.RoomCreated) for event in decide(command, state))


def unjournaled_message(command: c.SendMessage, state: ChatState) -> e.MessageSent:
    """The message a send would record, checked as a journaled one (membership, length, ban):
    what `chat.persist_messages = false` delivers at once instead of journaling it."""
    events = decide(command, state)
    message = events[0] if events else None
    # A send decides one message (retries are not deduplicated in this mode).
    assert isinstance(message, e.MessageSent)
    return message
