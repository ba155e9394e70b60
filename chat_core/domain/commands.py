"""Commands: what an actor asks for, imperative, with everything a decision depends on.

The edge builds them: `actor` from the verified token, `at` from its clock, `limits` from
settings. The decider reads nothing else. A command may carry a `command_id` (send_message: the
client's `client_msg_id`): the processor answers a retry of the same (actor, command id) with
what the first one recorded, without deciding it again.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from chat_core.domain.rules import DEFAULT_LIMITS, Limits, Role


class _Command(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    actor: str
    at: datetime
    limits: Limits = DEFAULT_LIMITS

    @property
    def command_id(self) -> str | None:
        """The id that makes a retry of this command idempotent (per actor), if it has one."""
        return None


class RegisterAccount(_Command, frozen=True, kw_only=True):
    """A new account; refused if the name is taken in any letter case."""

    username: str
    password_hash: str
    display_name: str | None = None


class EnsureAccount(_Command, frozen=True, kw_only=True):
    """Create or update an account from configuration (demo users, `admin.users`).

    `password_hash` None keeps the stored hash (the edge compares the configured password).
    """

    username: str
    role: Role
    password_hash: str | None = None


class RehashPassword(_Command, frozen=True, kw_only=True):
    """Store a new hash of the same password (made at the configured bcrypt cost on a login).

    Applied only while the account still has `old_hash`: a password changed meanwhile wins.
    """

    username: str
    old_hash: str
    password_hash: str


class DisableAccount(_Command, frozen=True, kw_only=True):
    """Make an account unusable: no login, its tokens refused (a demo user past its setting)."""

    username: str


class ChangePassword(_Command, frozen=True, kw_only=True):
    """The actor's own new password; applied only while the hash the edge checked the old
    password against is still the stored one (a change meanwhile wins)."""

    old_hash: str
    password_hash: str


class ResetPassword(_Command, frozen=True, kw_only=True):
    """An admin sets another user's password."""

    target: str
    password_hash: str


class DisableUser(_Command, frozen=True, kw_only=True):
    target: str


class EnableUser(_Command, frozen=True, kw_only=True):
    target: str


class RevokeTokens(_Command, frozen=True, kw_only=True):
    """An admin revokes every token of a user issued so far."""

    target: str


class Logout(_Command, frozen=True, kw_only=True):
    """Revoke the actor's token `jti` (valid until `expires_at`, unix s)."""

    jti: str
    expires_at: int


class CreateRoom(_Command, frozen=True, kw_only=True):
    """Create a room if it does not exist (the configured default rooms)."""

    room_name: str


class JoinRoom(_Command, frozen=True, kw_only=True):
    room_name: str


class LeaveRoom(_Command, frozen=True, kw_only=True):
    room_id: str


class SendMessage(_Command, frozen=True, kw_only=True):
    room_id: str
    text: str
    client_msg_id: str | None = None

    @property
    def command_id(self) -> str | None:
        return self.client_msg_id or None


class KickUser(_Command, frozen=True, kw_only=True):
    target: str
    reason: str | None = None
    room_id: str | None = None


class BanUser(_Command, frozen=True, kw_only=True):
    target: str
    reason: str | None = None
    duration_seconds: int | None = None


class UnbanUser(_Command, frozen=True, kw_only=True):
    target: str


class SetRole(_Command, frozen=True, kw_only=True):
    target: str
    role: str


class BroadcastAnnouncement(_Command, frozen=True, kw_only=True):
    message: str
    level: str = "info"


class DeleteRoom(_Command, frozen=True, kw_only=True):
    room_id: str


Command = (
    RegisterAccount
    | EnsureAccount
    | RehashPassword
    | DisableAccount
    | ChangePassword
    | ResetPassword
    | DisableUser
    | EnableUser
    | RevokeTokens
    | Logout
    | CreateRoom
    | JoinRoom
    | LeaveRoom
    | SendMessage
    | KickUser
    | BanUser
    | UnbanUser
    | SetRole
    | BroadcastAnnouncement
    | DeleteRoom
)
