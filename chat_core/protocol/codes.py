"""Close codes, handshake refusal reasons and JSON-RPC error kinds (docs/protocol.md 2 and 3).

Defined once here; the server closes and refuses with these, the CLI reads them.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final, Literal, TypeAlias

import msgspec

from chat_core import errors


class Close(IntEnum):
    """WebSocket close codes of docs/protocol.md section 2."""

    NORMAL = 1000
    GOING_AWAY = 1001
    UNSUPPORTED_DATA = 1003
    INVALID_UTF8 = 1007
    TOO_BIG = 1009
    SERVER_ERROR = 1011
    RESTARTING = 1012
    KICKED = 4001
    SLOW_READER = 4008
    BAD_REQUEST = 4400
    UNAUTHORIZED = 4401
    BANNED = 4403
    TOO_MANY = 4429


# The handshake's refusal reasons (the HTTP body's `reason`, or the close reason).
RefusalReason: TypeAlias = Literal[
    "missing_token",
    "invalid_token",
    "token_expired",
    "banned",
    "invalid_since",
    "invalid_batch",
    "too_many_connections",
    "rate_limited",
    "unavailable",
]
# The HTTP status of a handshake refused before the upgrade, by the close code it stands for.
HTTP_STATUS: Final = {
    Close.UNAUTHORIZED: 401,
    Close.BANNED: 403,
    Close.BAD_REQUEST: 400,
    Close.TOO_MANY: 429,
    Close.SERVER_ERROR: 503,
}


class ErrorKind(msgspec.Struct, frozen=True, kw_only=True):
    """A JSON-RPC error code and the `data.reason` tags it comes with."""

    code: int
    reasons: tuple[str, ...]


PARSE_ERROR: Final = ErrorKind(code=errors.PARSE_ERROR, reasons=("parse_error",))
INVALID_REQUEST: Final = ErrorKind(
    code=errors.INVALID_REQUEST, reasons=("invalid_request", "batch_too_large")
)
METHOD_NOT_FOUND: Final = ErrorKind(code=errors.METHOD_NOT_FOUND, reasons=("method_not_found",))
INTERNAL: Final = ErrorKind(code=errors.InternalError.code, reasons=("internal_error",))
UNAUTHENTICATED: Final = ErrorKind(
    code=errors.Unauthenticated.code, reasons=("token_expired", "invalid_token")
)
BANNED: Final = ErrorKind(code=errors.Banned.code, reasons=("banned",))
RATE_LIMITED: Final = ErrorKind(code=errors.RateLimited.code, reasons=("rate_limited",))


def invalid_params(*reasons: str) -> ErrorKind:
    """-32602 with `invalid_params` and the method's own reasons."""
    return ErrorKind(code=errors.InvalidParams.code, reasons=("invalid_params", *reasons))


def forbidden(*reasons: str) -> ErrorKind:
    return ErrorKind(code=errors.Forbidden.code, reasons=reasons)


def not_found(*reasons: str) -> ErrorKind:
    return ErrorKind(code=errors.NotFound.code, reasons=reasons)


NOT_A_MEMBER: Final = ErrorKind(code=errors.NotAMember.code, reasons=("not_a_member",))
ROOM_FULL: Final = ErrorKind(code=errors.RoomFull.code, reasons=("room_full",))

# What any request may be answered with, whatever its method: the parser's refusals, the
# request budget, a session that ended, a banned account, a server failure.
COMMON_ERRORS: Final = (
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    invalid_params(),
    UNAUTHENTICATED,
    BANNED,
    RATE_LIMITED,
    INTERNAL,
)
