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
from typing import Any

from rich.console import Console
from rich.text import Text

from chat_cli.visible import visible

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


def _clock(timestamp: Any) -> str:
    if isinstance(timestamp, str):
        try:
            return (
                datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
                .astimezone()
                .strftime("%H:%M")
            )
        except ValueError:
            return "--:--"
    return datetime.now().strftime("%H:%M")


def _room_tag(room_id: str | None, current: str | None) -> Text:
    """`#room ` before lines of rooms other than the current one."""
    if room_id is None or room_id == current:
        return Text()
    return Text(f"#{visible(str(room_id))} ", style=ROOM)


def message(params: dict[str, Any], me: str, current: str | None, *, old: bool = False) -> Text:
    """A chat message; `old` for history (dimmed, so it reads apart from the live stream)."""
    username = visible(str(params.get("username", "?")))
    own = username.lower() == me.lower()
    line = Text(_clock(params.get("timestamp")) + " ", style=INFO)
    line.append_text(_room_tag(params.get("room_id"), current))
    line.append(f"<{username}>", style=OWN if own else name_style(username))
    line.append(" ")
    line.append(visible(str(params.get("text", ""))), style="dim" if old else "")
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


def announcement(params: dict[str, Any]) -> Text:
    level = visible(str(params.get("level", "info")))
    line = Text(f"[{level.upper()}] ", style=LEVELS.get(level, LEVELS["info"]))
    line.append(visible(str(params.get("message", ""))), style=LEVELS.get(level, LEVELS["info"]))
    line.append(visible(f"  (by {params.get('by', '?')})"), style=INFO)
    return line


def error(text: str) -> Text:
    return Text(f"! {visible(text)}", style=ERROR)


def hint(text: str) -> Text:
    return Text(visible(text), style=HINT)


def info(text: str) -> Text:
    return Text(visible(text), style=INFO)
