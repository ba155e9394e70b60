"""`.env` files: `KEY=VALUE` lines read as environment variables the real environment lacks.

The convention (`JWT_SECRET=...`, `CHAT__CHAT__MAX_MESSAGE_LENGTH=500`): blank lines and lines
starting with `#` are skipped, `export ` before a key is allowed, a value in matching single or
double quotes loses them (and may then hold `#` or leading spaces), an unquoted value is taken
up to the end of the line, trimmed. Anything else stops start-up naming the file and the line;
the line's text is not repeated, since it may hold a secret.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from chat_core.settings.schema import SettingsError

DEFAULT_FILE: Final = Path(".env")
_LINE: Final = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*")


def parse(text: str, origin: str) -> dict[str, str]:
    """The variables of a `.env` text; `origin` names the file in errors."""
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            raise SettingsError(f"bad line {number} in {origin}: expected KEY=VALUE")
        key, value = match[1], match[2]
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif value[:1] in ("'", '"'):
            raise SettingsError(f"bad line {number} in {origin}: unterminated quote")
        found[key] = value
    return found


def read(path: Path, required: bool) -> dict[str, str]:
    """The variables of the file at `path`; a missing file is {} unless `required`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        if not required:
            return {}
        raise SettingsError(f"cannot read env file {path}: no such file") from e
    except (OSError, UnicodeDecodeError) as e:
        raise SettingsError(f"cannot read env file {path}: {e}") from e
    return parse(text, str(path))
