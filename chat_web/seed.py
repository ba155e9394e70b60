"""Start-up seeding through the processor: demo users, `admin.users`, default rooms (first start).

Every change is a journaled command of the `system` actor, so replay sees exactly what the
server did. A configured password is hashed only when it no longer verifies against the stored
hash: restarts neither churn the journal nor pay a bcrypt hash per account.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from chat_core.domain.commands import CreateRoom, DisableAccount, EnsureAccount
from chat_core.domain.rules import SYSTEM_ACTOR, Role, is_disabled, user_key
from chat_core.passwords import hash_password, verify_password
from chat_core.settings.schema import DEMO_USERS, Settings
from chat_web.audit import CONFIG_ADDRESS, audit
from chat_web.runtime import Runtime

log = logging.getLogger(__name__)


async def _ensure(rt: Runtime, username: str, password: str, role: Role) -> None:
    account = rt.processor.state.accounts.get(user_key(username))
    password_hash: str | None = None
    if account is None or not await asyncio.to_thread(
        verify_password, password, account.password_hash
    ):
        password_hash = await asyncio.to_thread(
            hash_password, password, rt.settings.auth.bcrypt_rounds
        )
    command = EnsureAccount(
        actor=SYSTEM_ACTOR,
        at=datetime.now(UTC),
        username=account.username if account is not None else username,
        role=role,
        password_hash=password_hash,
    )
    outcome = await rt.processor.submit(command)
    if outcome.events:  # created, or its role or password changed
        audit(
            "account_configured",
            actor=SYSTEM_ACTOR,
            addr=CONFIG_ADDRESS,
            target=command.username,
            role=role,
        )


async def _retire_demo(rt: Runtime, username: str, password: str) -> None:
    """Disable a demo account that still has its demo password (the setting is off).

    One bcrypt check per demo account and start-up, off the event loop; once disabled, none:
    the refusal is journaled, so logins and tokens need no hash check of their own.
    """
    account = rt.processor.state.accounts.get(user_key(username))
    if account is None or is_disabled(account.password_hash):
        return
    if not await asyncio.to_thread(verify_password, password, account.password_hash):
        return  # its owner changed the password: no longer a demo account
    command = DisableAccount(actor=SYSTEM_ACTOR, at=datetime.now(UTC), username=account.username)
    await rt.processor.submit(command)
    audit("account_disabled", actor=SYSTEM_ACTOR, addr=CONFIG_ADDRESS, target=account.username)
    log.warning(
        "demo user %s still had its demo password and admin.seed_demo_users is off: disabled",
        account.username,
    )


def _configured_accounts(settings: Settings) -> list[tuple[str, str, Role]]:
    accounts: dict[str, tuple[str, str, Role]] = {}
    if settings.admin.seed_demo_users:
        for name, password, role in DEMO_USERS:
            accounts[user_key(name)] = (name, password, role)
    # admin.users win over a demo user of the same name.
    for user in settings.admin.users:
        accounts[user_key(user.username)] = (user.username, user.password, user.role)
    return list(accounts.values())


async def seed(rt: Runtime) -> None:
    """Create or update the configured accounts; on the first start, the default rooms."""
    settings = rt.settings
    # The first start is the one that found the journal empty: default rooms are made then
    # only, so a room an admin deleted stays deleted across restarts.
    first_start = rt.processor.state.seq == 0
    configured = _configured_accounts(settings)
    await asyncio.gather(*(_ensure(rt, *account) for account in configured))
    if not settings.admin.seed_demo_users:
        kept = {user_key(name) for name, _, _ in configured}
        await asyncio.gather(
            *(
                _retire_demo(rt, name, password)
                for name, password, _ in DEMO_USERS
                if user_key(name) not in kept
            )
        )
    if settings.admin.seed_demo_users:
        log.warning(
            "demo users exist (admin/admin123, moderator/mod123, alice/alice123, bob/bob123);"
            " set admin.seed_demo_users = false outside a demo"
        )
    for room_name in settings.chat.default_rooms if first_start else ():
        command = CreateRoom(
            actor=SYSTEM_ACTOR, at=datetime.now(UTC), limits=rt.limits, room_name=room_name
        )
        await rt.processor.submit(command)
