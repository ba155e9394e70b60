"""Audit lines: who did what to whom, from which address (docs/deploy.md, "Audit log").

One line per login (success and failure), registration, kick, ban, unban, role change,
announcement, room deletion and account action, on the logger `chat_web.audit` at info level.
The fields travel as the record's extras, so the JSON format writes them as fields of the line
(`action`, `actor`, `target`, `addr`, `outcome`, and `room`, `role`, `duration_seconds` where
they apply) and the text format shows them in brackets. Never a token, a hash or any text a
user wrote (a message, an announcement, a kick's reason).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any, Final, TypeVar

from chat_core.domain.rules import is_valid_username
from chat_core.errors import ChatError

log = logging.getLogger("chat_web.audit")
_T = TypeVar("_T")

# The fields an audit line may carry (chat_web.logging_setup writes each one present).
FIELDS: Final = ("action", "actor", "target", "outcome", "room", "role", "duration_seconds")
# JSON-RPC methods audited, and the action each is logged as.
METHODS: Final = {
    "kick_user": "kick",
    "ban_user": "ban",
    "unban_user": "unban",
    "set_role": "role_change",
    "broadcast_announcement": "announcement",
    "delete_room": "room_deletion",
}
# Start-up's account changes come from the settings, not from a peer.
CONFIG_ADDRESS: Final = "config"


def name_of(username: str) -> str:
    """A username fit for a log line: an attempted one outside the rules is not echoed."""
    return username if is_valid_username(username) else "(invalid username)"


def audit(
    action: str,
    *,
    actor: str,
    addr: str,
    target: str | None = None,
    outcome: str = "ok",
    **detail: str | int | None,
) -> None:
    """Write one audit line (`outcome` is `ok` or the refusal's reason)."""
    fields: dict[str, Any] = {"action": action, "actor": actor, "addr": addr, "outcome": outcome}
    if target is not None:
        fields["target"] = target
    fields.update((key, value) for key, value in detail.items() if value is not None)
    on = f" {target}" if target is not None else ""
    log.info("%s%s by %s: %s", action, on, actor, outcome, extra=fields)


def audit_call(method: str, actor: str, addr: str, params: Any, outcome: str = "ok") -> None:
    """The audit line of a JSON-RPC call, if its method is audited (nothing otherwise)."""
    action = METHODS.get(method)
    if action is None:
        return
    audit(
        action,
        actor=actor,
        addr=addr,
        outcome=outcome,
        target=getattr(params, "target_username", None),
        room=getattr(params, "room_id", None),
        role=getattr(params, "role", None),
        duration_seconds=getattr(params, "duration_seconds", None),
    )


async def audited(method: str, actor: str, addr: str, params: Any, work: Awaitable[_T]) -> _T:
    """Await a JSON-RPC method's `work` and audit it (refused too) when the method is audited."""
    try:
        result = await work
    except ChatError as exc:
        audit_call(method, actor, addr, params, exc.reason)
        raise
    except Exception:
        audit_call(method, actor, addr, params, "error")
        raise
    audit_call(method, actor, addr, params)
    return result
