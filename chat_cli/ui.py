"""Rendering of the interactive chat: every line the user sees, as styled rich `Text`.

Text objects, never markup strings: a message saying "[red]" must print as typed, not turn red.
Every string from the server passes through `visible` first (control characters shown
escaped, chat_cli/visible.py), before rich, which would silently drop some of them.
Usernames get a colour from a stable hash (crc32, not `hash()`, which changes per process), so
bob is the same colour in every session; the user's own lines use a colour no one else gets.
"""

from __future__ import annotations

import sys
import zlib
from datetime import datetime

from rich.console import Console
from rich.text import Text

from chat_cli.visible import visible
from chat_core.protocol.notifications import MessageReceived, SystemAnnouncement
from chat_core.protocol.results import Message

OWN = "bold bright_green"
EVENT = "dim italic"
INFO = "dim"
ERROR = "bold red"
HINT = "yellow"
ROOM = "magenta"
LEVELS = {"info": "bold blue", "warning": "bold yellow", "error": "bold white on red"}
# Distinct, readable on dark and light backgrounds; bright_green is reserved for "you".
PALETTE = (
    "cyan",
    "blue",
    "magenta",
    "yellow",
    "red",
    "bright_blue",
    "bright_magenta",
    "bright_cyan",
    "dark_orange",
    "purple",
    "deep_pink3",
    "steel_blue1",
)


def make_console() -> Console:
    """A console that writes to whatever sys.stdout is when printing (patch_stdout's proxy).

    Colour is decided now, from the real terminal: the proxy installed later is no tty.
    `soft_wrap`: long messages are wrapped by the terminal, not cut into fixed lines.
    """
    return Console(force_terminal=sys.stdout.isatty(), highlight=False, soft_wrap=True)


def name_style(username: str) -> str:
    """The colour of a username, the same in every session (case-insensitive, like names)."""
    return PALETTE[zlib.crc32(username.lower().encode()) % len(PALETTE)]


def _clock(timestamp: datetime) -> str:
    return timestamp.astimezone().strftime("%H:%M")


def stamp(moment: datetime | None, default: str = "for ever") -> str:
    """A time in the user's own time zone, to the second, with the zone's name, or `default`.

    The server writes UTC (RFC 3339); a person reading "banned until" thinks in local time.
    """
    if moment is None:
        return default
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def plural(count: int, noun: str) -> str:
    """`1 user`, `2 users`: the nouns this client counts all take an `s`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _room_tag(room_id: str | None, current: str | None) -> Text:
    """`#room ` before lines of rooms other than the current one."""
    if room_id is None or room_id == current:
        return Text()
    return Text(f"#{visible(str(room_id))} ", style=ROOM)


def message(
    params: Message | MessageReceived, me: str, current: str | None, *, old: bool = False
) -> Text:
    """A chat message; `old` for history (dimmed, so it reads apart from the live stream)."""
    username = visible(params.username)
    own = username.lower() == me.lower()
    line = Text(_clock(params.timestamp) + " ", style=INFO)
    line.append_text(_room_tag(params.room_id, current))
    line.append(f"<{username}>", style=OWN if own else name_style(username))
    line.append(" ")
    line.append(visible(params.text), style="dim" if old else "")
    return line


def event(text: str, room_id: str | None = None, current: str | None = None) -> Text:
    """A join, leave, kick or other happening: dim, so conversation stands out."""
    line = Text("-- ", style=EVENT)
    line.append_text(_room_tag(room_id, current))
    line.append(visible(text), style=EVENT)
    return line


def user(username: str, me: str) -> Text:
    return Text(
        visible(username), style=OWN if username.lower() == me.lower() else name_style(username)
    )


def announcement(params: SystemAnnouncement) -> Text:
    level = visible(params.level)
    line = Text(f"[{level.upper()}] ", style=LEVELS.get(level, LEVELS["info"]))
    line.append(visible(params.message), style=LEVELS.get(level, LEVELS["info"]))
    line.append(visible(f"  (by {params.by})"), style=INFO)
    return line


def error(text: str) -> Text:
    return Text(f"! {visible(text)}", style=ERROR)


def hint(text: str) -> Text:
    return Text(visible(text), style=HINT)


def info(text: str) -> Text:
    return Text(visible(text), style=INFO)
