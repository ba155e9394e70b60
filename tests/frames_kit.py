"""A server without sockets: the real Runtime (processor over the in-memory journal, hub,
limiters, handlers), the real connection set-up (`endpoint._open`: registration, the
`connection_established` frame) and the real reader loop, fed frames from a queue; what the
connection writes is recorded. For the tests of chat_web that need no network: the reader's
pipeline, the error mapping, the rules and limits a method checks at the edge.

Two ways to talk to it: `Peer` (frames in, the raw answers out, for the pipeline's tests) and
`InProcessChat`, a stand-in for the end-to-end `Harness` whose clients are the same
`rpc_client.Client` the end-to-end tests use, over `InProcessWebSocket` instead of a socket.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from rpc_client import Client, unique
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close as CloseFrame

from chat_core.domain import commands as c
from chat_core.domain import events as e
from chat_core.domain.state import initial_state
from chat_core.errors import JournalError
from chat_core.journal.memory import MemoryJournal
from chat_core.processor import CommandProcessor, Committed
from chat_core.protocol.codes import Close
from chat_core.settings.schema import ChatSettings, RateLimitSettings, ServerSettings, Settings
from chat_core.settings.sources import load_settings
from chat_kit import HASH, seed_commands
from chat_web.hub.fanout import Hub
from chat_web.runtime import Runtime
from chat_web.tokens import Claims
from chat_web.ws.connection import Connection
from chat_web.ws.endpoint import _open
from chat_web.ws.reader import read_frames

WITHIN = 5.0  # seconds any expected frame may take; a failing test fails, never hangs
SECRET = "s" * 32


class GatedJournal(MemoryJournal):
    """The in-memory journal; while `hold()` is on, appends wait (and may then fail)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()
        self.appending = asyncio.Event()
        self.fail_next = False
        self.appended: list[int] = []  # the records of each append, in order

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
        self.appended.append(len(records))


class FakeSocket:
    """The ASGI WebSocket of one connection: received frames come from `inbox`; what the
    server sends is recorded in `frames` (decoded) and queued raw in `outbox`."""

    def __init__(self) -> None:
        self.scope: dict[str, Any] = {}
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[str | CloseFrame] = asyncio.Queue()
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
            self.outbox.put_nowait(event["text"])
        elif event["type"] == "websocket.close" and self.close_code is None:
            self.close_code = event["code"]
            self.outbox.put_nowait(CloseFrame(event["code"], event.get("reason") or ""))
            # As an ASGI server does: after a close, the next receive is the disconnect.
            self.inbox.put_nowait({"type": "websocket.disconnect", "code": event["code"]})
        self._changed.set()

    def put_text(self, text: str) -> None:
        self.inbox.put_nowait({"type": "websocket.receive", "text": text})

    async def wait_for(self, done: Callable[[], bool], within: float = WITHIN) -> None:
        async with asyncio.timeout(within):
            while not done():
                self._changed.clear()
                await self._changed.wait()


async def serve(rt: Runtime, socket: FakeSocket, conn: Connection, expires: int) -> None:
    """A connection's life after its handshake, as `endpoint.chat_socket` lives it."""
    try:
        await read_frames(rt, conn, expires)
    except Exception:
        conn.log.exception("connection failed")
        conn.abort(Close.SERVER_ERROR)
    finally:
        rt.hub.unregister(conn)
        await conn.finish()


def accept(
    rt: Runtime, username: str, expires: int, since: int | None = None
) -> tuple[FakeSocket, Connection, Any]:
    """A connection of `username` (resuming after `since`, if given) set up as the endpoint
    does; its socket, connection and serving task."""
    socket = FakeSocket()
    claims = Claims(sub=username, role="user", iat=int(time.time()), exp=expires, jti=_jti())
    conn = _open(rt, socket, claims, since, "127.0.0.1", False)  # type: ignore[arg-type]
    return socket, conn, asyncio.create_task(serve(rt, socket, conn, expires))


def _jti() -> str:
    return uuid.uuid4().hex


class Peer:
    """One connection driven frame by frame; `responses` are its answers as sent."""

    def __init__(self, rt: Runtime, username: str, expires: int) -> None:
        self.socket, self.conn, self.task = accept(rt, username, expires)

    def send_text(self, text: str) -> None:
        self.socket.put_text(text)

    def send(self, frame: Any) -> None:
        self.send_text(json.dumps(frame))

    def call(self, request_id: Any, method: str, **params: Any) -> None:
        self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})

    @property
    def responses(self) -> list[Any]:
        """What was answered so far (arrays: batch answers), notifications left out."""
        return [f for f in self.socket.frames if isinstance(f, list) or "method" not in f]

    async def answers(self, count: int) -> list[Any]:
        """Wait for `count` answers in all, and return them."""
        await self.socket.wait_for(lambda: len(self.responses) >= count)
        return self.responses

    async def close(self) -> None:
        self.socket.inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
        async with asyncio.timeout(WITHIN):
            await self.task


class InProcessWebSocket:
    """What `rpc_client.Client` asks of a websockets connection, over a `FakeSocket` served in
    this process: `send` is a frame the server receives, `recv` one it sent."""

    def __init__(self, socket: FakeSocket, task: asyncio.Task[None]) -> None:
        self.socket, self.task = socket, task
        self.close_code: int | None = None
        self._closed: ConnectionClosed | None = None

    async def send(self, data: str | bytes) -> None:
        if self._closed is not None:
            raise self._closed
        if isinstance(data, bytes):
            self.socket.inbox.put_nowait({"type": "websocket.receive", "bytes": data})
        else:
            self.socket.put_text(data)

    async def recv(self) -> str:
        if self._closed is not None:
            raise self._closed
        item = await self.socket.outbox.get()
        if isinstance(item, CloseFrame):
            self.close_code = item.code
            self._closed = ConnectionClosed(item, item, True)
            raise self._closed
        return item

    async def close(self) -> None:
        """The client closes (1000): the server's reader sees the disconnect and ends."""
        if self.socket.close_code is None:
            self.socket.inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
            async with asyncio.timeout(WITHIN):
                await self.task
            self.socket.outbox.put_nowait(CloseFrame(1000, ""))


@dataclass
class User:
    username: str
    password: str = ""
    token: str = ""
    role: str = "user"


class InProcessChat:
    """The end-to-end `Harness`'s accounts and clients against an in-process server (no HTTP:
    accounts are registered through the processor)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.clients: list[Client] = []
        self._admin: Client | None = None

    async def new_user(self, prefix: str = "u") -> User:
        """A freshly registered user (a fresh name from `prefix`)."""
        return await self.named_user(unique(prefix))

    async def named_user(self, username: str) -> User:
        """A user registered under exactly this name."""
        register = c.RegisterAccount(
            actor=username, at=datetime.now(UTC), username=username, password_hash=HASH
        )
        await self.world.processor.submit(register)
        return User(username)

    async def new_staff(self, role: str = "moderator", prefix: str = "mod") -> User:
        """A fresh user promoted by the admin, as the end-to-end harness makes one."""
        user = await self.new_user(prefix)
        admin = await self.admin_client()
        result = await admin.call("set_role", target_username=user.username, role=role)
        assert result == {"username": user.username, "role": role}, result
        user.role = role
        return user

    async def journal_seq(self) -> int:
        """The committed head, as `GET /health` reports it."""
        return self.world.processor.state.seq

    async def connect(self, who: User | str, since: int | None = None) -> Client:
        username = who.username if isinstance(who, User) else who
        socket, _, task = accept(self.world.rt, username, int(time.time()) + 3600, since)
        ws = InProcessWebSocket(socket, task)
        first = json.loads(await ws.recv())
        assert first["method"] == "connection_established", first
        client = Client(ws, first)  # type: ignore[arg-type]
        self.clients.append(client)
        return client

    async def admin_client(self) -> Client:
        """A connection of the seeded admin (chat_kit's `admin`), opened once."""
        if self._admin is None or self._admin.is_closed:
            self._admin = await self.connect("admin")
        return self._admin

    async def user_client(self, prefix: str = "u") -> tuple[User, Client]:
        user = await self.new_user(prefix)
        return user, await self.connect(user)

    async def aclose(self) -> None:
        for client in self.clients:
            if not client.is_closed:
                await client.close()


# As the end-to-end tests' GENEROUS_LIMITS (tests/e2e/helpers.py): the settings of servers
# shared by many tests; tests of the limits set their own.
GENEROUS_LIMITS = {
    "CHAT__RATE_LIMIT__CONNECTIONS_PER_IP": "1000",
    "CHAT__RATE_LIMIT__CONNECTS_PER_MINUTE": "1000000",
    "CHAT__RATE_LIMIT__MESSAGES_PER_MINUTE": "100000",
    "CHAT__RATE_LIMIT__REQUESTS_PER_MINUTE": "1000000",
    "CHAT__RATE_LIMIT__ROOMS_PER_HOUR": "1000000",
    "CHAT__RATE_LIMIT__LOGIN_ATTEMPTS_PER_HOUR": "100000",
    "CHAT__RATE_LIMIT__REGISTRATIONS_PER_HOUR": "100000",
}


class InProcessServer:
    """What the end-to-end `start_server(env)` gives, served in process: the settings from the
    same environment variables (over GENEROUS_LIMITS), and `harness()` to talk to it."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.settings = load_settings(env={**GENEROUS_LIMITS, **(env or {})})

    @asynccontextmanager
    async def harness(self) -> AsyncIterator[InProcessChat]:
        world = await World.open(self.settings)
        chat = InProcessChat(world)
        try:
            yield chat
        finally:
            await chat.aclose()
            await world.close()


class World:
    """The server's parts over an in-memory journal, seeded with chat_kit's accounts and rooms
    (admin, mod, mod2 moderators; Alice, bob, carol users; general and random rooms)."""

    def __init__(self, rt: Runtime, journal: GatedJournal) -> None:
        self.rt, self.journal = rt, journal
        self.peers: list[Peer] = []

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
        return cls(Runtime.build(settings, journal, processor, hub, SECRET), journal)

    @property
    def processor(self) -> CommandProcessor:
        return self.rt.processor

    def peer(self, username: str, *, expires: int | None = None) -> Peer:
        peer = Peer(self.rt, username, expires or int(time.time()) + 3600)
        self.peers.append(peer)
        return peer

    async def close(self) -> None:
        self.journal.release()
        for peer in self.peers:
            if not peer.task.done():
                await peer.close()
        await self.processor.stop()


@asynccontextmanager
async def world(settings: Settings | None = None) -> AsyncIterator[World]:
    """A `World`, closed afterwards."""
    opened = await World.open(settings)
    try:
        yield opened
    finally:
        await opened.close()


def settings_with(
    rate_limit: dict[str, Any] | None = None, chat: dict[str, Any] | None = None, **server: Any
) -> Settings:
    """The default settings with these `server` (and `chat`) settings; rate limits off unless
    some are given (then the others are the defaults)."""
    limits = RateLimitSettings(enabled=False) if rate_limit is None else None
    return Settings(
        server=msgspec.structs.replace(ServerSettings(), **server),
        chat=msgspec.structs.replace(ChatSettings(), **(chat or {})),
        rate_limit=limits or msgspec.structs.replace(RateLimitSettings(), **(rate_limit or {})),
    )
