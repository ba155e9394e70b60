"""Ban durations as typed in the chat (`30s`, `10m`, `2h`, `7d`) and as shown back.

Pure. A duration that does not parse is an error the user sees, never a permanent ban: a
typo in `/ban bob 10mins spam` must not lock bob out for ever.
"""

from __future__ import annotations

import re
from typing import Final

UNITS: Final[dict[str, int]] = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}
# The protocol's bound on `duration_seconds` (100 years; docs/protocol.md section 4).
MAX_SECONDS: Final = 100 * 365 * 86_400
# A bare number is minutes, as `/ban bob 10` always meant.
# At most 15 digits: longer is no duration anyone means (and int() refuses huge strings).
_DURATION = re.compile(r"(\d{1,15})([smhd]?)", re.IGNORECASE)


class DurationError(ValueError):
    """A word meant as a duration that is not one (one line for the user)."""


def looks_like_duration(word: str) -> bool:
    """True when the word was meant as a duration (a digit first, or a sign and a digit), so
    `/ban bob spam` keeps `spam` as the reason but `/ban bob -5m` is an error."""
    return bool(re.match(r"[+-]?\d", word))


def parse_duration(word: str) -> int:
    """Seconds of `30s`, `10m`, `2h`, `7d` (a bare number: minutes); DurationError otherwise."""
    found = _DURATION.fullmatch(word)
    if found is None:
        raise DurationError(f"bad duration {word!r}: use a number and s, m, h or d (10m, 2h, 7d)")
    seconds = int(found.group(1)) * UNITS[(found.group(2) or "m").lower()]
    if seconds < 1:
        raise DurationError("a ban lasts at least 1 second (leave the duration out: for ever)")
    if seconds > MAX_SECONDS:
        raise DurationError("a ban lasts at most 100 years (leave the duration out: for ever)")
    return seconds
