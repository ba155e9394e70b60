"""Password hashing with bcrypt, without bcrypt's 72-byte input limit.

bcrypt reads at most 72 bytes (and bcrypt 5 refuses longer input), so every password is first
reduced to the base64 of its SHA-256: 44 ASCII bytes that depend on the whole password. Base64
and not the raw digest, because a raw digest may hold NUL bytes, where bcrypt stops reading.
These calls block for tens of milliseconds; callers run them off the event loop, bounded by
`auth.hash_concurrency`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from functools import cache

import bcrypt

from chat_core.domain.rules import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from chat_core.errors import InvalidParams


def hash_password(password: str, rounds: int) -> str:
    """A bcrypt hash (cost `rounds`, 4 to 31) of `password`, as the ASCII `$2b$...` string."""
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode("ascii")


def verify_password(password: str, hashed: str) -> bool:
    """Whether `password` matches `hashed`; False, not an exception, for a malformed hash."""
    try:
        return bcrypt.checkpw(_prehash(password), hashed.encode("ascii"))
    except ValueError:
        # Invalid salt or a non-ASCII string (UnicodeEncodeError is a ValueError too).
        return False


def hash_cost(hashed: str) -> int | None:
    """The bcrypt cost a `$2b$NN$...` hash was made with; None for anything else."""
    parts = hashed.split("$", 3)
    if len(parts) == 4 and parts[0] == "" and parts[2].isdigit():
        return int(parts[2])
    return None


def check_password(password: str, hashed: str, cost: int) -> bool:
    """Whether `password` matches `hashed`, taking as long as one check at `cost`.

    A hash made at a lower cost (older settings) would answer many times faster than an
    unknown user's check (`dummy_verify` at `cost`), telling who has an account. bcrypt's work
    doubles with each step, so checks at the hash's cost c, then at c, c+1, ... cost-1 add up
    to exactly the work of one check at `cost`.
    """
    ok = verify_password(password, hashed)
    stored = hash_cost(hashed)
    if stored is not None:
        for rounds in range(stored, cost):
            verify_password(password, _dummy_hash(rounds))
    return ok


def dummy_hash(rounds: int) -> str:
    """A hash of a random password, made once per cost: the stand-in for unknown users."""
    return _dummy_hash(rounds)


def dummy_verify(password: str, rounds: int) -> bool:
    """Spend the time of a real check and return False, so unknown users cannot be told apart."""
    verify_password(password, _dummy_hash(rounds))
    return False


def validate_password(password: str) -> None:
    """Refuse a password outside 8 to 128 characters (docs/protocol.md section 1)."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidParams(
            f"password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters",
            reason="weak_password",
        )


@cache
def _dummy_hash(rounds: int) -> str:
    # Computed lazily: importing this module must not cost a bcrypt round.
    return hash_password(secrets.token_urlsafe(32), rounds)


def _prehash(password: str) -> bytes:
    # surrogatepass: a lone surrogate (from a lax JSON decoder) hashes instead of raising.
    digest = hashlib.sha256(password.encode("utf-8", "surrogatepass")).digest()
    return base64.b64encode(digest)
