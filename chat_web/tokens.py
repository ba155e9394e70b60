"""Session tokens: HS256 JWTs with claims sub, role, iat, exp, jti and tep (docs/protocol.md
section 1). `tep` is the account's token epoch at issue: a token whose epoch is below the
account's (a password set, a disable or a revoke-all came after it) is refused, even within
the second of its `iat`; tokens from before `tep` existed count as epoch 0.

Only HS256 is accepted, whatever the token's header says, so `alg: none` and algorithm
confusion are refused. Time is checked here against an explicit `now` (not by pyjwt against the
wall clock), so expiry is testable without sleeping.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Final

import jwt
import msgspec
from msgspec import Meta, Struct

from chat_core.errors import Unauthenticated

ALGORITHM: Final = "HS256"
MIN_SECRET_BYTES: Final = 32
_REQUIRED: Final = ["sub", "role", "iat", "exp", "jti"]

# A short key is refused outright instead of pyjwt's mere warning.
_JWT: Final = jwt.PyJWT(options={"enforce_minimum_key_length": True})


class Claims(Struct, frozen=True, kw_only=True):
    """The verified claims of a token; other claims a token may carry are ignored."""

    sub: Annotated[str, Meta(min_length=1)]
    role: str
    iat: int
    exp: int
    jti: Annotated[str, Meta(min_length=1)]
    tep: Annotated[int, Meta(ge=0)] = 0


def issue_token(
    secret: str, username: str, role: str, now: datetime, ttl_seconds: int, epoch: int = 0
) -> tuple[str, int]:
    """A signed token for `username` and its expiry time in unix seconds."""
    _check_secret(secret)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if ttl_seconds < 1:
        raise ValueError("ttl_seconds must be positive")
    issued_at = int(now.timestamp())
    expires_at = issued_at + ttl_seconds
    claims = {
        "sub": username,
        "role": role,
        "iat": issued_at,
        "exp": expires_at,
        "jti": uuid.uuid4().hex,
        "tep": epoch,
    }
    return _JWT.encode(claims, secret, algorithm=ALGORITHM), expires_at


def verify_token(secret: str, token: str, now: datetime | None = None) -> Claims:
    """The claims of a genuine, current token; Unauthenticated otherwise.

    The reason is `token_expired` for a genuine token past its `exp`, and `invalid_token` for
    anything else (bad signature or algorithm, malformed, missing claims, not yet valid).
    """
    _check_secret(secret)
    try:
        payload = _JWT.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            # Time claims are checked below against `now`; pyjwt still checks the rest.
            options={
                "require": _REQUIRED,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
        claims = msgspec.convert(payload, Claims)
    except (jwt.PyJWTError, msgspec.ValidationError) as e:
        raise Unauthenticated("invalid token", reason="invalid_token") from e
    instant = (now or datetime.now(UTC)).timestamp()
    not_before: Any = payload.get("nbf", claims.iat)
    # bool is an int to Python, not a time to JWT.
    if isinstance(not_before, bool) or not isinstance(not_before, int | float):
        raise Unauthenticated("invalid token", reason="invalid_token")
    # Issued or valid only in the future: forged or from a skewed clock; refuse either way.
    if claims.iat > instant or not_before > instant:
        raise Unauthenticated("token not yet valid", reason="invalid_token")
    # Same boundary as pyjwt: a token is expired at its `exp` second.
    if claims.exp <= instant:
        raise Unauthenticated("token expired", reason="token_expired")
    return claims


def _check_secret(secret: str) -> None:
    # A configuration bug, not the client's fault: never reported as an invalid token.
    if len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
        raise ValueError(f"the HS256 secret must be at least {MIN_SECRET_BYTES} bytes")
