"""HTTP routes of a signed-in user's own account (docs/protocol.md section 1): change the
password (`POST /auth/password`) and log out (`POST /auth/logout`), both with the Bearer token.

Each is an event in the journal (`password_set`, `token_revoked`), so a token they end stays
refused across restarts; each writes an audit line naming the client address.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request, post

from chat_core.domain.commands import ChangePassword, Logout
from chat_core.domain.decider import authorize
from chat_core.domain.rules import MAX_PASSWORD_LENGTH, user_key
from chat_core.domain.state import Account, token_refused
from chat_core.errors import Unauthenticated
from chat_core.passwords import validate_password
from chat_web.audit import audit
from chat_web.http.auth import MAX_AUTH_BODY_BYTES, LoggedIn, _address, _check_rate, _errors
from chat_web.runtime import Runtime
from chat_web.tokens import Claims, issue_token, verify_token


class PasswordBody(msgspec.Struct, kw_only=True):
    old_password: str
    new_password: str


class LoggedOut(msgspec.Struct, kw_only=True):
    logged_out: bool


def _runtime(request: Request[Any, Any, Any]) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _bearer(request: Request[Any, Any, Any], rt: Runtime) -> tuple[Claims, Account]:
    """The verified claims of the request's Bearer token and its account, as the handshake
    checks them (revoked, disabled, banned or unknown: refused)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthenticated("no Bearer token given", "missing_token")
    claims = verify_token(rt.secret, value.strip())
    state = rt.processor.state
    account = authorize(state, claims.sub, datetime.now(UTC))
    if token_refused(state, account, claims.tep, claims.jti):
        raise Unauthenticated("the token was revoked", "invalid_token")
    return claims, account


@post(
    "/auth/password",
    status_code=200,
    summary="Change one's own password (Bearer token); every older token is revoked",
    responses=_errors(400, 401, 403, 413, 429),
    request_max_body_size=MAX_AUTH_BODY_BYTES,
)
async def change_password(request: Request[Any, Any, Any], data: PasswordBody) -> LoggedIn:
    rt = _runtime(request)
    address = _address(request)
    await rt.fresh()
    _, account = _bearer(request, rt)
    validate_password(data.new_password)
    if not 0 < len(data.old_password) <= MAX_PASSWORD_LENGTH:
        raise Unauthenticated("the old password is wrong", "invalid_credentials")
    rt.reserve_hash()
    # Wrong old passwords count as failed logins: a stolen token cannot guess the password.
    attempt_key = f"{address}\x00{user_key(account.username)}"
    if rt.login_failures is not None:
        _check_rate(rt.login_failures.retry_after(attempt_key))
        rt.login_failures.hit(attempt_key)
    if not await rt.check_password(data.old_password, account.password_hash):
        raise Unauthenticated("the old password is wrong", "invalid_credentials")
    if rt.login_failures is not None:
        rt.login_failures.undo(attempt_key)
    command = ChangePassword(
        actor=account.username,
        at=datetime.now(UTC),
        old_hash=account.password_hash,
        password_hash=await rt.hash_password(data.new_password),
    )
    outcome = await rt.processor.submit(command)
    audit("password_changed", actor=account.username, addr=address, target=account.username)
    # A fresh token, so the caller stays signed in while every older token is refused.
    current = outcome.state.accounts[user_key(account.username)]
    now = datetime.now(UTC)
    ttl = rt.settings.auth.jwt_ttl_seconds
    token, expires_at = issue_token(
        rt.secret, current.username, current.role, now, ttl, current.token_epoch
    )
    return LoggedIn(
        token=token,
        token_type="Bearer",
        expires_at=expires_at,
        username=current.username,
        role=current.role,
    )


@post(
    "/auth/logout",
    status_code=200,
    summary="Revoke the Bearer token of the request (that token only)",
    responses=_errors(401, 403, 429),
)
async def logout(request: Request[Any, Any, Any]) -> LoggedOut:
    rt = _runtime(request)
    address = _address(request)
    await rt.fresh()
    claims, account = _bearer(request, rt)
    command = Logout(
        actor=account.username, at=datetime.now(UTC), jti=claims.jti, expires_at=claims.exp
    )
    await rt.processor.submit(command)
    audit("logout", actor=account.username, addr=address, target=account.username)
    return LoggedOut(logged_out=True)
