"""Durable notifications encoded as text frames, once per event.

What a notification says (recipients, payload, `user_count`) is `chat_core.protocol.notify`'s;
this module only encodes it. The live hub and the resume backlog both go through it, so a
resumed client receives byte-for-byte what a connected one got.
"""

from __future__ import annotations

from chat_core.domain import events as e
from chat_core.protocol.notify import Notice, payload
from chat_core.protocol.rpc import encode_notification


def encode(found: Notice) -> str:
    """The text frame of a notification."""
    # Decoded once here so every recipient's writer sends the same str as a text frame.
    return encode_notification(found.method, found.params).decode()


def frame_of(recorded: e.Recorded, user_count: int = 0) -> str | None:
    """The text frame of an event's notification, or None if clients never see it."""
    found = payload(recorded, user_count)
    if found is None:
        return None
    return encode_notification(*found).decode()
