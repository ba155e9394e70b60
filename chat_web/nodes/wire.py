"""What nodes tell each other on the live channel: presence, typing and what their rate
limiters granted; never journaled.

Each message is a msgspec array tagged by kind and names the node that sent it, so a node
ignores its own. Payloads stay under PostgreSQL's 8,000-byte limit (a node's users are sent
in several `Sync` parts).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import msgspec

LIVE_CHANNEL = "chat_live"


class Online(msgspec.Struct, tag="on", array_like=True, frozen=True):
    """A user's first connection on `node` opened."""

    node: str
    key: str
    name: str


class Offline(msgspec.Struct, tag="off", array_like=True, frozen=True):
    """A user's last connection on `node` closed (after the presence linger)."""

    node: str
    key: str


class Beat(msgspec.Struct, tag="beat", array_like=True, frozen=True):
    """`node` is alive (every `BEAT_SECONDS`)."""

    node: str


class Hello(msgspec.Struct, tag="hello", array_like=True, frozen=True):
    """`node` (re)joined and knows nothing: every other node answers with its `Sync`."""

    node: str


class Sync(msgspec.Struct, tag="sync", array_like=True, frozen=True):
    """Part of every user online on `node`; the part marked `last` ends the list."""

    node: str
    users: list[tuple[str, str]]
    last: bool


class Bye(msgspec.Struct, tag="bye", array_like=True, frozen=True):
    """`node` is shutting down: its users are offline there now."""

    node: str


class TypingNote(msgspec.Struct, tag="typing", array_like=True, frozen=True):
    """A user on `node` started (again) or stopped typing in a room."""

    node: str
    key: str
    name: str
    room: str
    on: bool


class Spent(msgspec.Struct, tag="spent", array_like=True, frozen=True):
    """What one of `node`'s per-user rate limiters granted lately: (key, count) pairs."""

    node: str
    limiter: str
    keys: list[tuple[str, int]]


Message = Online | Offline | Beat | Hello | Sync | Bye | TypingNote | Spent

encode = msgspec.json.Encoder().encode
decode = msgspec.json.Decoder(Message).decode

# Bytes of one part's pairs at most (the rest of the message is well under 100 bytes).
PART_BYTES = 7_000


def sync_parts(node: str, users: list[tuple[str, str]]) -> list[bytes]:
    """`users` as encoded Sync messages, each under PostgreSQL's payload limit."""
    return _parts(users, lambda part, last: Sync(node, part, last))


def spent_parts(node: str, limiter: str, spent: dict[str, int]) -> list[bytes]:
    """A limiter's grants as encoded Spent messages, each under the payload limit."""
    return _parts(list(spent.items()), lambda part, _: Spent(node, limiter, part))


_Pair = TypeVar("_Pair", tuple[str, str], tuple[str, int])


def _parts(items: list[_Pair], build: Callable[[list[_Pair], bool], msgspec.Struct]) -> list[bytes]:
    parts: list[bytes] = []
    part: list[_Pair] = []
    size = 0
    for item in items:
        cost = sum(len(str(x).encode()) for x in item) + 8
        if part and size + cost > PART_BYTES:
            parts.append(encode(build(part, False)))
            part, size = [], 0
        part.append(item)
        size += cost
    parts.append(encode(build(part, True)))
    return parts
