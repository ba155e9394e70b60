"""What the HTTP and WebSocket handlers share: settings, journal, processor, hub, limiters."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

from chat_core.journal import Journal
from chat_core.passwords import dummy_verify, hash_password, verify_password
from chat_core.processor import CommandProcessor
from chat_core.rules import Limits
from chat_core.settings import Settings
from chat_web.hub import Hub
from chat_web.limits import ConnectionCounter, TokenBucket, WindowCounter

HOUR = 3600.0


@dataclass
class Runtime:
    """The running server's parts; built once at start-up, read by every handler."""

    settings: Settings
    journal: Journal
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
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @classmethod
    def build(
        cls,
        settings: Settings,
        journal: Journal,
        processor: CommandProcessor,
        hub: Hub,
        secret: str,
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
        )

    def next_connection_id(self) -> str:
        return f"c{next(self._ids)}"

    # bcrypt blocks for tens of milliseconds: off the event loop, a bounded number at once,
    # so a flood of logins slows logins and never the chat.

    async def hash_password(self, password: str) -> str:
        async with self.hash_slots:
            return await asyncio.to_thread(
                hash_password, password, self.settings.auth.bcrypt_rounds
            )

    async def verify_password(self, password: str, hashed: str) -> bool:
        async with self.hash_slots:
            return await asyncio.to_thread(verify_password, password, hashed)

    async def dummy_verify(self, password: str) -> bool:
        async with self.hash_slots:
            return await asyncio.to_thread(dummy_verify, password, self.settings.auth.bcrypt_rounds)


def limits_of(settings: Settings) -> Limits:
    chat = settings.chat
    return Limits(
        max_message_length=chat.max_message_length,
        max_room_name_length=chat.max_room_name_length,
        max_users_per_room=chat.max_users_per_room,
    )
