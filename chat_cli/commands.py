"""Slash commands of the interactive chat: parsing a typed line into what to do.

Pure: a line becomes `Say` (a message), `Run` (a command with checked arguments) or `Hint`
(a short correction for the user). Nothing here raises on user input.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from chat_cli.duration import DurationError, looks_like_duration, parse_duration
from chat_core.domain.rules import ROOM_NAME_PATTERN

LEVELS = ("info", "warning", "error")
ROOM_RULE = "room names are letters, digits, _ and -, starting with a letter or digit (no spaces)"
_ROOM_NAME = re.compile(ROOM_NAME_PATTERN)


@dataclass(frozen=True)
class Spec:
    usage: str
    help: str
    min_args: int = 0


COMMANDS: dict[str, Spec] = {
    "rooms": Spec("/rooms", "list the rooms"),
    "join": Spec("/join <room>", "join (or create) a room and make it current", 1),
    "leave": Spec("/leave [room]", "leave the current room (or the one named)"),
    "switch": Spec("/switch <room>", "make another joined room current", 1),
    "who": Spec("/who", "list the current room's members"),
    "history": Spec("/history [n]", "show the last n messages of the current room (20)"),
    "kick": Spec("/kick <user> [reason]", "kick a user from the chat (moderators)", 1),
    "ban": Spec("/ban <user> [30s|10m|2h|7d] [reason]", "ban a user, for ever or a while", 1),
    "unban": Spec("/unban <user>", "lift a ban (moderators)", 1),
    "announce": Spec("/announce [info|warning|error] <text>", "announce to everyone (admins)", 1),
    "help": Spec("/help", "this list"),
    "quit": Spec("/quit", "leave the chat (also Ctrl-D)"),
}


@dataclass(frozen=True)
class Say:
    text: str


@dataclass(frozen=True)
class Hint:
    text: str


@dataclass(frozen=True)
class Run:
    """A command and its arguments: `target` (room or user), `count`, `seconds` (a ban's
    duration), `level`, `text`."""

    name: str
    target: str | None = None
    count: int | None = None
    seconds: int | None = None
    level: str | None = None
    text: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


Parsed = Say | Hint | Run


def parse(line: str) -> Parsed | None:  # noqa: C901 (one case per kind: a flat match)
    """What a typed line asks for; None for a blank line."""
    if not line.strip():
        return None
    if not line.startswith("/"):
        return Say(line)
    if line.startswith("//"):
        # An escape for messages that start with a slash.
        return Say(line[1:])
    name, _, rest = line[1:].partition(" ")
    name = name.lower()
    rest = rest.strip()
    spec = COMMANDS.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, COMMANDS, n=1, cutoff=0.6) if name else []
        suggestion = f" (did you mean /{close[0]}?)" if close else ""
        return Hint(f"unknown command /{name}{suggestion}; /help lists them")
    words = rest.split()
    if len(words) < spec.min_args:
        return Hint(f"usage: {spec.usage}")
    first = words[0] if words else None
    after_first = rest[len(first) :].strip() if first else ""
    match name:
        case "history":
            if first is None:
                return Run(name, count=20)
            if not first.isdigit() or int(first) < 1:
                return Hint("usage: /history [n], n a positive number")
            return Run(name, count=int(first))
        case "kick":
            return Run(name, target=first, text=after_first or None)
        case "ban":
            return _ban(first or "", after_first)
        case "announce":
            if first is not None and first.lower() in LEVELS:
                if not after_first:
                    return Hint(f"usage: {spec.usage}")
                return Run(name, level=first.lower(), text=after_first)
            return Run(name, level="info", text=rest)
        case "join" | "switch" | "leave":
            return _room(name, spec, words)
        case "unban":
            return Run(name, target=first)
        case _:
            return Run(name)


def _ban(user: str, rest: str) -> Parsed:
    """`/ban <user> [duration] [reason]`: a word meant as a duration must be one."""
    words = rest.split(maxsplit=1)
    if not words or not looks_like_duration(words[0]):
        return Run("ban", target=user, text=rest or None)
    try:
        seconds = parse_duration(words[0])
    except DurationError as exc:
        return Hint(f"{exc}; usage: {COMMANDS['ban'].usage}")
    return Run("ban", target=user, seconds=seconds, text=words[1] if len(words) > 1 else None)


def _room(name: str, spec: Spec, words: list[str]) -> Parsed:
    """A room named by one word (`#` before it allowed, as rooms are shown), checked against
    the naming rule here: `/join my room` must not quietly join `my`."""
    if not words:
        return Run(name)
    room = words[0].removeprefix("#")
    if len(words) > 1 or not _ROOM_NAME.fullmatch(room):
        return Hint(f"{ROOM_RULE}; usage: {spec.usage}")
    return Run(name, target=room)


def help_lines() -> list[str]:
    width = max(len(spec.usage) for spec in COMMANDS.values())
    lines = [f"  {spec.usage:<{width}}  {spec.help}" for spec in COMMANDS.values()]
    return ["commands:", *lines, "  (a line not starting with / is sent to the current room)"]
