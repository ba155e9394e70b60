"""The decisions of account actions (docs/protocol.md section 1 and 4): a user changes their
own password or logs out; an admin resets a password, disables or re-enables an account, or
revokes all of a user's tokens. Pure, as the rest of `decide`."""

from __future__ import annotations

from chat_core.domain import commands as c
from chat_core.domain import events as e
from chat_core.domain.rules import at_least, is_disabled, outranks, user_key, with_article
from chat_core.domain.state import Account, ChatState
from chat_core.errors import Forbidden, InvalidParams, NotFound, Unauthenticated


def change_password(command: c.ChangePassword, actor: Account) -> list[e.Event]:
    if actor.password_hash != command.old_hash:
        # Changed (or disabled) while the old password was being checked: that change wins.
        raise Unauthenticated("invalid username or password", "invalid_credentials")
    return [
        e.PasswordSet(
            username=actor.username, password_hash=command.password_hash, by=actor.username
        )
    ]


def logout(command: c.Logout, actor: Account, state: ChatState) -> list[e.Event]:
    if command.jti in state.revoked_tokens:
        return []
    return [e.TokenRevoked(username=actor.username, jti=command.jti, expires_at=command.expires_at)]


def admin_target(actor: Account, username: str, state: ChatState) -> Account:
    """The account an admin action names: an admin acts on lower roles only, never on itself
    (as ban does: one admin cannot lock another out)."""
    if not at_least(actor.role, "admin"):
        raise Forbidden("this needs the admin role", "insufficient_role")
    target = state.accounts.get(user_key(username))
    if target is None:
        raise NotFound(f"no user {username!r}", "user_not_found")
    if user_key(target.username) == user_key(actor.username):
        raise Forbidden("you cannot do this to yourself", "cannot_target_self")
    if not outranks(actor.role, target.role):
        raise Forbidden(
            f"{with_article(actor.role)} cannot act on {with_article(target.role)}",
            "cannot_moderate_peer",
        )
    return target


def reset_password(command: c.ResetPassword, actor: Account, state: ChatState) -> list[e.Event]:
    target = admin_target(actor, command.target, state)
    return [
        e.PasswordSet(
            username=target.username, password_hash=command.password_hash, by=actor.username
        )
    ]


def disable(command: c.DisableUser, actor: Account, state: ChatState) -> list[e.Event]:
    target = admin_target(actor, command.target, state)
    if target.disabled:
        return []
    return [e.AccountDisabled(username=target.username, by=actor.username)]


def enable(command: c.EnableUser, actor: Account, state: ChatState) -> list[e.Event]:
    target = admin_target(actor, command.target, state)
    if is_disabled(target.password_hash):
        # Disabled by the server (a demo user): no password was kept to restore.
        raise InvalidParams(
            f"{target.username} has no usable password; reset it instead", "no_password"
        )
    if not target.disabled:
        return []
    return [e.AccountEnabled(username=target.username, by=actor.username)]


def revoke_tokens(command: c.RevokeTokens, actor: Account, state: ChatState) -> list[e.Event]:
    target = admin_target(actor, command.target, state)
    return [e.TokensRevoked(username=target.username, by=actor.username)]
