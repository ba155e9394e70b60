"""HTTP routes of docs/protocol.md section 1: register, login, health; and their error mapping.

Every error body is `{"error", "reason"}`. Chat errors map to a status in one handler
(`chat_error_handler`); Litestar's own validation errors (bad JSON, wrong types) become
`400 invalid_body`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Final

import msgspec
from litestar import Request, Response, get, post
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import KwargDefinition

from chat_core.domain.commands import RegisterAccount, RehashPassword
from chat_core.domain.rules import (
    MAX_DISPLAY_NAME_LENGTH,
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    RESERVED_USERNAMES,
    SYSTEM_ACTOR,
    USERNAME_PATTERN,
    check_text,
    is_valid_username,
    user_key,
)
from chat_core.domain.state import active_ban, is_usable
from chat_core.errors import (
    Banned,
    ChatError,
    InternalError,
    InvalidParams,
    RateLimited,
    Unauthenticated,
    UsernameTaken,
)
from chat_core.passwords import hash_cost, validate_password
from chat_web.audit import audit, name_of
from chat_web.runtime import Runtime
from chat_web.tokens import issue_token

log = logging.getLogger(__name__)

_STATUS: Final[dict[type[ChatError], int]] = {
    InvalidParams: 400,
    Unauthenticated: 401,
    Banned: 403,
    UsernameTaken: 409,
    RateLimited: 429,
}


# The rules of docs/protocol.md section 1, in the OpenAPI schema only: the handler checks them and
# answers with its own reasons (`invalid_username`, `weak_password`), not `invalid_body`.
_USERNAME_SCHEMA: Final = KwargDefinition(
    pattern=f"^{USERNAME_PATTERN}$", min_length=3, max_length=32
)
_PASSWORD_SCHEMA: Final = KwargDefinition(
    min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH
)
# Narrower than the rule (which also takes names of letters beyond ASCII): a name the schema
# allows is always accepted. No control characters (but tab and newline), one visible ASCII
# character at least.
_DISPLAY_NAME_SCHEMA: Final = KwargDefinition(
    min_length=1,
    max_length=64,
    pattern=r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[!-~][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$",
)
# Largest body of an /auth request: ample for a username, a password and a display name, and
# small enough that a flood of requests cannot hold much memory (larger: 413 body_too_large).
MAX_AUTH_BODY_BYTES: Final = 4096


class RegisterBody(msgspec.Struct, kw_only=True):
    username: Annotated[str, _USERNAME_SCHEMA]
    password: Annotated[str, _PASSWORD_SCHEMA]
    display_name: Annotated[str, _DISPLAY_NAME_SCHEMA] | None = None


class LoginBody(msgspec.Struct, kw_only=True):
    username: str
    password: str


class Registered(msgspec.Struct, kw_only=True):
    username: str
    role: str


class LoggedIn(msgspec.Struct, kw_only=True):
    token: str
    token_type: str
    expires_at: int
    username: str
    role: str


class Health(msgspec.Struct, kw_only=True):
    status: str
    journal_seq: int


class ErrorBody(msgspec.Struct, kw_only=True):
    error: str
    reason: str


def _runtime(request: Request[Any, Any, Any]) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client is not None else "unknown"


def _check_rate(retry_after: int) -> None:
    if retry_after > 0:
        raise RateLimited("too many attempts; try again later", retry_after=retry_after)


def _errors(*statuses: int) -> dict[int, ResponseSpec]:
    """The documented error answers of a route: every one has the `{error, reason}` body."""
    return {
        status: ResponseSpec(data_container=ErrorBody, description="{error, reason}")
        for status in statuses
    }


def _check_display_name(display_name: str) -> None:
    """The decider's rule, answered as a bad body (docs/protocol.md section 1), before the hash."""
    try:
        check_text(display_name, MAX_DISPLAY_NAME_LENGTH, "display_name")
    except InvalidParams as exc:
        raise InvalidParams(
            f"{exc.message}; a display_name is 1 to {MAX_DISPLAY_NAME_LENGTH} characters,"
            " not blank, without control characters",
            "invalid_body",
        ) from exc


@post(
    "/auth/register",
    status_code=201,
    summary="Create an account",
    responses=_errors(400, 409, 413, 429),
    request_max_body_size=MAX_AUTH_BODY_BYTES,
)
async def register(request: Request[Any, Any, Any], data: RegisterBody) -> Registered:
    address = _address(request)
    try:
        registered = await _register(_runtime(request), address, data)
    except ChatError as exc:
        audit("registration", actor=name_of(data.username), addr=address, outcome=exc.reason)
        raise
    audit("registration", actor=registered.username, addr=address, role=registered.role)
    return registered


async def _register(rt: Runtime, address: str, data: RegisterBody) -> Registered:
    if not is_valid_username(data.username) or user_key(data.username) in RESERVED_USERNAMES:
        raise InvalidParams("usernames are 3 to 32 of A-Z a-z 0-9 _ . -", "invalid_username")
    validate_password(data.password)
    if data.display_name is not None:
        _check_display_name(data.display_name)
    if rt.registrations is not None:
        _check_rate(rt.registrations.retry_after(address))
    # A cheap early answer for a taken name, before spending a bcrypt hash on it; the decider
    # checks again, so a race between two registrations still ends in one 409.
    await rt.fresh()
    if user_key(data.username) in rt.processor.state.accounts:
        raise UsernameTaken(f"the username {data.username!r} is taken")
    rt.reserve_hash()
    # Counted before the hash, not after: concurrent registrations would all pass the check.
    if rt.registrations is not None:
        rt.registrations.hit(address)
    try:
        password_hash = await rt.hash_password(data.password)
        command = RegisterAccount(
            actor=data.username,
            at=datetime.now(UTC),
            username=data.username,
            password_hash=password_hash,
            display_name=data.display_name,
        )
        await rt.processor.submit(command)
    except BaseException:
        if rt.registrations is not None:
            rt.registrations.undo(address)
        raise
    return Registered(username=data.username, role="user")


@post(
    "/auth/login",
    status_code=200,
    summary="Exchange a username and password for a token",
    responses=_errors(400, 401, 403, 413, 429),
    request_max_body_size=MAX_AUTH_BODY_BYTES,
)
async def login(request: Request[Any, Any, Any], data: LoginBody) -> LoggedIn:
    address = _address(request)
    try:
        answer = await _login(_runtime(request), address, data)
    except ChatError as exc:
        audit("login", actor=name_of(data.username), addr=address, outcome=exc.reason)
        raise
    audit("login", actor=answer.username, addr=address, role=answer.role)
    return answer


async def _login(rt: Runtime, address: str, data: LoginBody) -> LoggedIn:
    # No account can match a name or password outside the rules (they are public): refused
    # before a limiter key is built or a hash spent, so such requests cost nothing to keep.
    if not is_valid_username(data.username) or not 0 < len(data.password) <= MAX_PASSWORD_LENGTH:
        raise Unauthenticated("invalid username or password", "invalid_credentials")
    rt.reserve_hash()
    attempt_key = f"{address}\x00{user_key(data.username)}"
    if rt.login_failures is not None:
        _check_rate(rt.login_failures.retry_after(attempt_key))
        # Counted as a failure before the hash and taken back on success: attempts checked
        # concurrently would otherwise all pass the limit while their hashes are queued.
        rt.login_failures.hit(attempt_key)
    await rt.fresh()  # an account registered, or a password changed, on another node
    account = rt.processor.state.accounts.get(user_key(data.username))
    if account is None or not is_usable(account):
        # Same work as a real check, so an unknown or disabled user cannot be told apart by
        # timing.
        ok = await rt.dummy_verify(data.password)
    else:
        ok = await rt.check_password(data.password, account.password_hash)
    if not ok:
        raise Unauthenticated("invalid username or password", "invalid_credentials")
    if rt.login_failures is not None:
        rt.login_failures.undo(attempt_key)
    now = datetime.now(UTC)
    # The state may have moved during the hash: role and ban as they are now.
    state = rt.processor.state
    current = state.accounts.get(user_key(data.username))
    if current is None:
        raise Unauthenticated("invalid username or password", "invalid_credentials")
    if active_ban(state, current.username, now) is not None:
        raise Banned("this account is banned")
    if hash_cost(current.password_hash) != rt.settings.auth.bcrypt_rounds:
        await _rehash(rt, current.username, data.password, current.password_hash)
    token, expires_at = issue_token(
        rt.secret,
        current.username,
        current.role,
        now,
        rt.settings.auth.jwt_ttl_seconds,
        current.token_epoch,
    )
    return LoggedIn(
        token=token,
        token_type="Bearer",
        expires_at=expires_at,
        username=current.username,
        role=current.role,
    )


async def _rehash(rt: Runtime, username: str, password: str, old_hash: str) -> None:
    """Store the password hashed at the configured cost (made at another, older one)."""
    try:
        command = RehashPassword(
            actor=SYSTEM_ACTOR,
            at=datetime.now(UTC),
            username=username,
            old_hash=old_hash,
            password_hash=await rt.hash_password(password),
        )
        await rt.processor.submit(command)
    except ChatError as exc:
        # The login itself succeeded; the old hash keeps working and the next login retries.
        log.warning("could not rehash the password of %s: %s", username, exc)


@get("/health", summary="Liveness and the journal head")
async def health(request: Request[Any, Any, Any]) -> Health:
    return Health(status="ok", journal_seq=_runtime(request).processor.state.seq)


def _error(
    status: int, message: str, reason: str, headers: dict[str, str] | None = None
) -> Response[ErrorBody]:
    return Response(
        content=ErrorBody(error=message, reason=reason), status_code=status, headers=headers
    )


def chat_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The one mapping of errors to HTTP answers."""
    if isinstance(exc, ChatError):
        status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 500)
        headers = None
        if isinstance(exc, RateLimited):
            headers = {"Retry-After": str(exc.data.get("retry_after", 1))}
        if status == 500:
            log.error("request failed: %s", exc)
            message = "internal error" if isinstance(exc, InternalError) else exc.message
            return _error(status, message, exc.reason)
        return _error(status, exc.message, exc.reason, headers)
    # msgspec raises RecursionError for JSON nested deeper than it decodes (~1,000 levels).
    if isinstance(exc, ValidationException | RecursionError) or (
        isinstance(exc, HTTPException) and exc.status_code == 400
    ):
        return _error(
            400, "the request body is not valid JSON of the expected shape", "invalid_body"
        )
    if isinstance(exc, HTTPException) and exc.status_code == 413:
        return _error(413, f"the body is larger than {MAX_AUTH_BODY_BYTES} bytes", "body_too_large")
    if isinstance(exc, HTTPException):
        reason = "not_found" if exc.status_code == 404 else "http_error"
        return _error(exc.status_code, exc.detail, reason, exc.headers)
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error(500, "internal error", "internal_error")
