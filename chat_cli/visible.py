"""Text from the network or a journal, made safe to write to a terminal: the one place.

A terminal acts on control characters: ESC sequences erase lines, move the cursor or (OSC 52)
write the clipboard, and a bare CR lets a message overwrite its own line to forge another. So
every printer of `chat-cli` passes what it did not write itself through here. C0 controls
(but newline and tab), DEL and C1 controls are shown as the visible text `\\xNN` (two lowercase
hex digits: ESC is `\\x1b`); a newline starts a continuation line indented by `CONTINUATION`,
so no line of a message starts where a line of the client does; a tab is shown as spaces.
Old journals may hold any of these (the server's text rule is checked when a command is
decided), so replay goes through here too.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from rich.text import Text

CONTINUATION: Final = "    "
TAB: Final = "    "
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# What is still unsafe in a line made of `visible` strings: its newlines are the indented
# continuations `visible` wrote (escaping them again would indent twice), tabs rich expands.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# In JSON text C0 is always escaped by the encoder; DEL and C1 are left raw, and a UTF-8
# terminal may act on C1. \u escapes keep the document the same JSON.
_JSON_UNSAFE = re.compile(r"[\x7f-\x9f]")


def _shown(char: str) -> str:
    if char == "\n":
        return "\n" + CONTINUATION
    if char == "\t":
        return TAB
    return f"\\x{ord(char):02x}"


def _replace(match: re.Match[str]) -> str:
    return _shown(match.group())


def visible(text: str) -> str:
    """`text` with every control character shown as visible text (see the module docstring)."""
    # The usual text has no control character: one scan, no copy.
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_replace, text)


def visible_lines(lines: list[str]) -> str:
    """Lines the client laid out, each made visible, joined with newlines."""
    return "\n".join(visible(line) for line in lines)


def visible_json(document: str) -> str:
    """A JSON document with DEL and C1 written as `\\u` escapes (the same JSON value)."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", document)


def visible_text(line: Text) -> Text:
    """A rich `Text` with its control characters made visible, its styles kept.

    The last guard before the console: `ui` already builds lines from `visible` strings.
    """
    # rich only here: `chat-cli send` and `replay` print plain strings and start faster.
    from rich.text import Text

    plain = line.plain
    if _CONTROL.search(plain) is None:
        return line
    # Where each old offset lands in the new text, to move the style spans along.
    starts: list[int] = []
    pieces: list[str] = []
    position = 0
    for char in plain:
        starts.append(position)
        piece = _shown(char) if _CONTROL.fullmatch(char) else char
        pieces.append(piece)
        position += len(piece)
    starts.append(position)
    out = Text(
        "".join(pieces),
        style=line.style,
        justify=line.justify,
        overflow=line.overflow,
        no_wrap=line.no_wrap,
        end=line.end,
    )
    for span in line.spans:
        end = min(span.end, len(plain))
        out.stylize(span.style, starts[span.start], starts[end])
    return out
