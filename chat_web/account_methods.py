"""The admins' account methods of docs/protocol.md section 4: reset a password, disable and
re-enable an account, revoke all of a user's tokens. Each is an event; each writes an audit
line (logger `chat_web.audit`) naming the admin, the action, the target and the address."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Final

import msgspec

from chat_core.domain import commands as c
from chat_core.domain.decider import authorize
from chat_core.domain.rules import user_key
from chat_core.errors import Forbidden
from chat_core.passwords import validate_password
from chat_core.processor import Outcome
from chat_core.protocol import params as p
from chat_core.protocol import results as r
from chat_web.audit import audit
from chat_web.runtime import Runtime
from chat_web.ws.connection import Connection


def _audit(conn: Connection, action: str, target: str) -> None:
    audit(action, actor=conn.username, addr=conn.address, target=target)


def _name(outcome: Outcome, target: str) -> str:
    account = outcome.state.accounts.get(user_key(target))
    return account.username if account is not None else target


async def reset_password(
    rt: Runtime, conn: Connection, params: p.ResetPasswordParams, at: datetime
) -> r.ResetPasswordResult:
    validate_password(params.new_password)
    # Checked before the hash (the decider checks again): a user must not spend bcrypt time.
    if authorize(rt.processor.state, conn.username, at).role != "admin":
        raise Forbidden("this needs the admin role", "insufficient_role")
    password_hash = await rt.hash_password(params.new_password)
    command = c.ResetPassword(
        actor=conn.username, at=at, target=params.target_username, password_hash=password_hash
    )
    outcome = await rt.processor.submit(command)
    name = _name(outcome, params.target_username)
    _audit(conn, "password_reset", name)
    return r.ResetPasswordResult(username=name)


async def disable_account(
    rt: Runtime, conn: Connection, params: p.DisableAccountParams, at: datetime
) -> r.AccountStatusResult:
    command = c.DisableUser(actor=conn.username, at=at, target=params.target_username)
    outcome = await rt.processor.submit(command)
    name = _name(outcome, params.target_username)
    _audit(conn, "account_disabled", name)
    return r.AccountStatusResult(username=name, disabled=True)


async def enable_account(
    rt: Runtime, conn: Connection, params: p.EnableAccountParams, at: datetime
) -> r.AccountStatusResult:
    command = c.EnableUser(actor=conn.username, at=at, target=params.target_username)
    outcome = await rt.processor.submit(command)
    name = _name(outcome, params.target_username)
    _audit(conn, "account_enabled", name)
    return r.AccountStatusResult(username=name, disabled=False)


async def revoke_tokens(
    rt: Runtime, conn: Connection, params: p.RevokeTokensParams, at: datetime
) -> r.RevokeTokensResult:
    command = c.RevokeTokens(actor=conn.username, at=at, target=params.target_username)
    outcome = await rt.processor.submit(command)
    name = _name(outcome, params.target_username)
    _audit(conn, "tokens_revoked", name)
    return r.RevokeTokensResult(username=name)


# The shape of `chat_web.methods.Handler` (which imports this module).
ACCOUNT_HANDLERS: Final[
    dict[str, Callable[[Runtime, Connection, Any, datetime], Awaitable[msgspec.Struct]]]
] = {
    "reset_password": reset_password,
    "disable_account": disable_account,
    "enable_account": enable_account,
    "revoke_tokens": revoke_tokens,
}
