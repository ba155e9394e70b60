"""What the HTTP and WebSocket handlers share: settings, journal, processor, hub, limiters."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from chat_core.domain.rules import Limits
from chat_core.errors import RateLimited
from chat_core.journal.port import JournalPort
from chat_core.passwords import check_password, dummy_verify, hash_cost, hash_password
from chat_core.processor import CommandProcessor
from chat_core.settings.schema import Settings
from chat_web.hub.fanout import Hub
from chat_web.limits import ConnectionCounter, TokenBucket, WindowCounter

if TYPE_CHECKING:
    from chat_web.metrics import Metrics

_T = TypeVar("_T")

HOUR = 3600.0
# Requests waiting for a bcrypt slot at most; past it an /auth request is refused at once
# (429, Retry-After: 1) rather than queued: a flood can neither hold unbounded memory nor mint
# limiter keys faster than the hashes are computed.
MAX_HASH_WAITING = 64


@dataclass
class Runtime:
    """The running server's parts; built once at start-up, read by every handler."""

    settings: Settings
    journal: JournalPort
    processor: CommandProcessor
    hub: Hub
    secret: str
    limits: Limits
    hash_slots: asyncio.Semaphore
    messages: TokenBucket | None = None
    requests: TokenBucket | None = None
    login_failures: WindowCounter | None = None
    registrations: WindowCounter | None = None
    room_creations: WindowCounter | None = None
    connections: ConnectionCounter | None = None
    connects: TokenBucket | None = None
    metrics: Metrics | None = None  # None when server.metrics is off
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    # The cost every password check takes: the configured one, or that of the costliest
    # stored hash if higher (chat_core.passwords.check_password).
    password_cost: int = 12
    _hash_waiting: int = 0

    @classmethod
    def build(
        cls,
        settings: Settings,
        journal: JournalPort,
        processor: CommandProcessor,
        hub: Hub,
        secret: str,
        metrics: Metrics | None = None,
    ) -> Runtime:
        rate = settings.rate_limit
        enabled = rate.enabled
        return cls(
            settings=settings,
            journal=journal,
            processor=processor,
            hub=hub,
            secret=secret,
            limits=limits_of(settings),
            hash_slots=asyncio.Semaphore(settings.auth.hash_concurrency),
            messages=TokenBucket(rate.messages_per_minute, 60.0) if enabled else None,
            requests=TokenBucket(rate.requests_per_minute, 60.0) if enabled else None,
            login_failures=WindowCounter(rate.login_attempts_per_hour, HOUR) if enabled else None,
            registrations=WindowCounter(rate.registrations_per_hour, HOUR) if enabled else None,
            room_creations=WindowCounter(rate.rooms_per_hour, HOUR) if enabled else None,
            connections=ConnectionCounter(rate.connections_per_ip) if enabled else None,
            connects=TokenBucket(rate.connects_per_minute, 60.0) if enabled else None,
            metrics=metrics,
            password_cost=max(
                [settings.auth.bcrypt_rounds]
                + [
                    cost
                    for account in processor.state.accounts.values()
                    if (cost := hash_cost(account.password_hash)) is not None
                ]
            ),
        )

    def next_connection_id(self) -> str:
        return f"c{next(self._ids)}"

    # bcrypt blocks for tens of milliseconds: off the event loop, a bounded number at once,
    # so a flood of logins slows logins and never the chat.

    def reserve_hash(self) -> None:
        """Refuse an /auth request at once when too many already wait for a hash slot."""
        if self._hash_waiting >= MAX_HASH_WAITING:
            raise RateLimited("the server is busy checking passwords; try again", retry_after=1)

    async def _off_loop(self, fn: Callable[..., _T], *args: Any) -> _T:
        self.reserve_hash()
        self._hash_waiting += 1
        try:
            async with self.hash_slots:
                return await asyncio.to_thread(fn, *args)
        finally:
            self._hash_waiting -= 1

    async def fresh(self) -> None:
        """On a journal other nodes append to, wait until the state holds every command
        acknowledged anywhere (one look at the head, and a catch-up if it moved); free on a
        journal of our own. `JournalError` if the journal cannot be reached."""
        if self.journal.shared:
            await self.processor.sync()

    async def hash_password(self, password: str) -> str:
        return await self._off_loop(hash_password, password, self.settings.auth.bcrypt_rounds)

    async def check_password(self, password: str, hashed: str) -> bool:
        return await self._off_loop(check_password, password, hashed, self.password_cost)

    async def dummy_verify(self, password: str) -> bool:
        return await self._off_loop(dummy_verify, password, self.password_cost)


def limits_of(settings: Settings) -> Limits:
    chat = settings.chat
    return Limits(
        max_message_length=chat.max_message_length,
        max_room_name_length=chat.max_room_name_length,
        max_users_per_room=chat.max_users_per_room,
    )
