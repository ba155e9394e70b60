"""Naming rules and configured limits shared by the decider and the edges.

Pure functions: the HTTP layer checks usernames with them before hashing a password, and
the decider checks them again, so no path can store a name that breaks the rules.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final, Literal

import msgspec

from chat_core.errors import InvalidParams

Role = Literal["user", "moderator", "admin"]
Level = Literal["info", "warning", "error"]
LeaveReason = Literal["left", "kicked", "banned", "room_deleted"]

ROLE_RANK: Final[dict[str, int]] = {"user": 0, "moderator": 1, "admin": 2}
LEVELS: Final[frozenset[str]] = frozenset({"info", "warning", "error"})

# The actor of commands the server issues itself (config users, default rooms). Reserved, so
# no account can ever be registered under it.
SYSTEM_ACTOR: Final = "system"
RESERVED_USERNAMES: Final[frozenset[str]] = frozenset({SYSTEM_ACTOR})

# The password hash of a disabled account: not a bcrypt hash, so no password verifies against
# it, and `authorize` refuses the account's tokens. Recorded as a `password_changed` event.
DISABLED_HASH: Final = "!disabled"

# The naming rules, defined once: the settings' schema, the HTTP schema and the checks below
# all build on these.
USERNAME_PATTERN: Final = r"[A-Za-z0-9_.\-]{3,32}"
ROOM_NAME_PATTERN: Final = r"[A-Za-z0-9][A-Za-z0-9_\-]*"
# Password lengths at registration (and for configured accounts).
MIN_PASSWORD_LENGTH: Final = 8
MAX_PASSWORD_LENGTH: Final = 128
_USERNAME = re.compile(USERNAME_PATTERN)
_ROOM_NAME = re.compile(ROOM_NAME_PATTERN)


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


def is_disabled(password_hash: str) -> bool:
    """True for the hash of a disabled account (`!` never starts a bcrypt hash)."""
    return password_hash.startswith("!")


def outranks(actor_role: str, target_role: str) -> bool:
    """True when a role is strictly above another (moderators act only on lower roles)."""
    return ROLE_RANK[actor_role] > ROLE_RANK[target_role]


def with_article(role: str) -> str:
    """`a user`, `a moderator`, `an admin`: a role as a sentence names it (by sound, not by
    letter: "user" starts with a vowel but takes `a`)."""
    return f"{'an' if role == 'admin' else 'a'} {role}"


def at_least(role: str, required: str) -> bool:
    """True when a role has every right of `required`."""
    return ROLE_RANK[role] >= ROLE_RANK[required]


# Control characters a terminal acts on: C0 (but newline and tab), DEL and C1. ESC starts
# sequences that move the cursor, erase lines or (OSC 52) write the clipboard.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Default-ignorable code points outside category Cf (which is tested by category): fillers and
# variation selectors that render as nothing, so a text of only these looks blank. U+2800
# (braille blank) is not default-ignorable but prints as a space, the usual blank-name trick.
_INVISIBLE: Final[frozenset[str]] = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u2800\u3164\uffa0"
    + "".join(chr(c) for c in range(0xFE00, 0xFE10))
)
_INVISIBLE_RANGES: Final = ((0xE0000, 0xE0FFF), (0xE0100, 0xE01EF))
MAX_DISPLAY_NAME_LENGTH: Final = 64


def _is_invisible(char: str) -> bool:
    if char.isascii():  # the usual first character: no ASCII one is a format character
        return char.isspace()
    if char.isspace() or char in _INVISIBLE or unicodedata.category(char) == "Cf":
        return True
    point = ord(char)
    return any(low <= point <= high for low, high in _INVISIBLE_RANGES)


def is_blank(text: str) -> bool:
    """True when nothing would show: only whitespace and invisible (format) characters."""
    return all(_is_invisible(char) for char in text)


def check_plain(text: str, field: str) -> None:
    """Refuse control characters other than newline and tab (`invalid_text`)."""
    if _CONTROL.search(text) is not None:
        raise InvalidParams(
            f"{field} holds a control character (only newline and tab are allowed)",
            "invalid_text",
            field=field,
        )


def check_text(text: str, max_length: int, field: str) -> None:
    """The rule of every shown text: no control characters, not blank, at most `max_length`."""
    check_plain(text, field)
    # is_blank stops at the first visible character: the usual text costs one look.
    if is_blank(text):
        raise InvalidParams(f"{field} is empty", "empty_message", field=field)
    # len() counts code points, which is what the protocol limits.
    if len(text) > max_length:
        raise InvalidParams(
            f"{field} is longer than {max_length} characters", "message_too_long", field=field
        )
