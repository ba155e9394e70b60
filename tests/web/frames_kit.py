"""A server without sockets: the real Runtime (processor over the in-memory journal, hub,
limiters, handlers) and the real reader loop, fed frames from a queue; what the connection
writes is recorded. For the tests of chat_web that need no network: the reader's pipeline, the
error mapping, the rules a method checks at the edge."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from chat_core.domain import events as e
from chat_core.domain.rules import user_key
from chat_core.domain.state import current_room_of, initial_state
from chat_core.errors import JournalError
from chat_core.journal.memory import MemoryJournal
from chat_core.processor import CommandProcessor, Committed
from chat_core.settings.schema import RateLimitSettings, ServerSettings, Settings
from chat_kit import seed_commands
from chat_web.hub.fanout import Hub
from chat_web.runtime import Runtime
from chat_web.ws.connection import Connection
from chat_web.ws.reader import read_frames

WITHIN = 5.0  # seconds any expected frame may take; a failing test fails, never hangs


class GatedJournal(MemoryJournal):
    """The in-memory journal; while `hold()` is on, appends wait (and may then fail)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()
        self.appending = asyncio.Event()
        self.fail_next = False

    def hold(self, *, fail: bool = False) -> None:
        self.gate.clear()
        self.appending.clear()
        self.fail_next = fail

    def release(self) -> None:
        self.gate.set()

    async def append(self, expected_head: int, records: Sequence[e.Recorded]) -> None:
        self.appending.set()
        await self.gate.wait()
        if self.fail_next:
            self.fail_next = False
            raise JournalError("injected: the disk is full")
        await super().append(expected_head, records)


class FakeSocket:
    """The ASGI WebSocket: received frames come from `inbox`, sent ones are recorded."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.frames: list[Any] = []
        self.close_code: int | None = None
        self._changed = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        frame = await self.inbox.get()
        self._changed.set()  # one frame fewer unread: `wait_for` looks again
        return frame

    async def send(self, event: dict[str, Any]) -> None:
        if event["type"] == "websocket.send":
            self.frames.append(json.loads(event["text"]))
        elif event["type"] == "websocket.close":
            self.close_code = event["code"]
        self._changed.set()

    async def wait_for(self, done: Callable[[], bool], within: float = WITHIN) -> None:
        async with asyncio.timeout(within):
            while not done():
                self._changed.clear()
                await self._changed.wait()


class Client:
    """One connection of a user, its reader loop running on the fake socket."""

    def __init__(self, rt: Runtime, username: str, expires: int) -> None:
        self.socket = FakeSocket()
        snapshot = rt.processor.state
        self.conn = Connection(
            self.socket,  # type: ignore[arg-type]
            connection_id=rt.next_connection_id(),
            username=username,
            key=user_key(username),
            address="127.0.0.1",
            current_room=current_room_of(snapshot, username),
            queue_limit=rt.settings.server.send_queue_limit,
            queue_bytes=rt.settings.server.send_queue_bytes,
            batching=False,
        )
        self.rt = rt
        rt.hub.register(self.conn, snapshot)
        self.conn.start_writer(_nothing)
        self.reader = asyncio.create_task(read_frames(rt, self.conn, expires))

    def send_text(self, text: str) -> None:
        self.socket.inbox.put_nowait({"type": "websocket.receive", "text": text})

    def send(self, frame: Any) -> None:
        self.send_text(json.dumps(frame))

    def call(self, request_id: Any, method: str, **params: Any) -> None:
        self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})

    @property
    def responses(self) -> list[Any]:
        """What was answered so far (arrays: batch answers), notifications left out."""
        return [f for f in self.socket.frames if isinstance(f, list) or "method" not in f]

    def notifications(self, method: str) -> list[dict[str, Any]]:
        return [
            f["params"]
            for f in self.socket.frames
            if isinstance(f, dict) and f.get("method") == method
        ]

    async def answers(self, count: int) -> list[Any]:
        """Wait for `count` answers in all, and return them."""
        await self.socket.wait_for(lambda: len(self.responses) >= count)
        return self.responses

    async def ask(self, method: str, **params: Any) -> Any:
        """One call, and its answer (the `result` or, if refused, the `error`)."""
        seen = len(self.responses)
        self.call(seen + 1, method, **params)
        answer = (await self.answers(seen + 1))[seen]
        assert answer["id"] == seen + 1
        return answer.get("result", answer.get("error"))

    async def close(self) -> None:
        self.socket.inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
        async with asyncio.timeout(WITHIN):
            await self.reader
        self.rt.hub.unregister(self.conn)
        await self.conn.finish()


async def _nothing() -> None:
    return None


class World:
    """The server's parts over an in-memory journal, seeded with chat_kit's accounts and rooms
    (admin, mod, mod2 moderators; Alice, bob, carol users; general and random rooms)."""

    def __init__(self, rt: Runtime, journal: GatedJournal) -> None:
        self.rt, self.journal = rt, journal
        self.clients: list[Client] = []

    @classmethod
    async def open(cls, settings: Settings | None = None) -> World:
        settings = settings or Settings(rate_limit=RateLimitSettings(enabled=False))
        journal = GatedJournal()
        committed = Committed(initial_state(settings.chat.history_on_join))
        hub = Hub(settings.chat.typing_timeout_seconds, committed=committed)
        processor = CommandProcessor(journal, committed, hub)
        processor.start()
        for command in seed_commands():
            await processor.submit(command)
        rt = Runtime.build(settings, journal, processor, hub, secret="s" * 32)
        return cls(rt, journal)

    @property
    def processor(self) -> CommandProcessor:
        return self.rt.processor

    def client(self, username: str, *, expires: int | None = None) -> Client:
        client = Client(self.rt, username, expires or int(time.time()) + 3600)
        self.clients.append(client)
        return client

    async def close(self) -> None:
        self.journal.release()
        for client in self.clients:
            if not client.reader.done():
                await client.close()
        await self.processor.stop()


def settings_with(**server: Any) -> Settings:
    """The default settings, rate limits off, with these `server` settings."""
    return Settings(
        server=msgspec.structs.replace(ServerSettings(), **server),
        rate_limit=RateLimitSettings(enabled=False),
    )
