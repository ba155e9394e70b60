"""Naming rules and configured limits shared by the decider and the edges.

Pure functions: the HTTP layer checks usernames with them before hashing a password, and
the decider checks them again, so no path can store a name that breaks the rules.
"""

from __future__ import annotations

import re
from typing import Final, Literal

import msgspec

Role = Literal["user", "moderator", "admin"]
Level = Literal["info", "warning", "error"]
LeaveReason = Literal["left", "kicked", "banned", "room_deleted"]

ROLE_RANK: Final[dict[str, int]] = {"user": 0, "moderator": 1, "admin": 2}
LEVELS: Final[frozenset[str]] = frozenset({"info", "warning", "error"})

# The actor of commands the server issues itself (config users, default rooms). Reserved, so
# no account can ever be registered under it.
SYSTEM_ACTOR: Final = "system"
RESERVED_USERNAMES: Final[frozenset[str]] = frozenset({SYSTEM_ACTOR})

_USERNAME = re.compile(r"[A-Za-z0-9_.\-]{3,32}")
_ROOM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]*")


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """The configured limits a decision depends on; they arrive inside each command."""

    max_message_length: int = 1000
    max_room_name_length: int = 50
    max_users_per_room: int = 0  # 0: unlimited


DEFAULT_LIMITS: Final = Limits()


def user_key(username: str) -> str:
    """The case-insensitive identity of a username (names are ASCII, so lower() suffices)."""
    return username.lower()


def room_key(room_name: str) -> str:
    """A room's id: its name lowercased, so `General` and `general` are one room."""
    return room_name.lower()


def is_valid_username(username: str) -> bool:
    """3 to 32 characters of `A-Z a-z 0-9 _ . -` (fullmatch: no trailing newline sneaks in)."""
    return _USERNAME.fullmatch(username) is not None


def is_valid_room_name(room_name: str, max_length: int) -> bool:
    """1 to max_length characters of `A-Z a-z 0-9 _ -`, starting with a letter or digit."""
    return len(room_name) <= max_length and _ROOM_NAME.fullmatch(room_name) is not None


def outranks(actor_role: str, target_role: str) -> bool:
    """True when a role is strictly above another (moderators act only on lower roles)."""
    return ROLE_RANK[actor_role] > ROLE_RANK[target_role]


def at_least(role: str, required: str) -> bool:
    """True when a role has every right of `required`."""
    return ROLE_RANK[role] >= ROLE_RANK[required]
