"""Helpers of the end-to-end tests: HTTP accounts and a harness of WebSocket clients against
one server. The JSON-RPC client itself is `tests/rpc_client.py` (re-exported here).

Every wait has a timeout and waits for a frame or an event, never for a fixed time.
"""

# The waits take an explicit `timeout` (seconds) on purpose: tests tune it per wait.
# ruff: noqa: ASYNC109

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import httpx
from rpc_client import (
    DEFAULT_TIMEOUT,
    Client,
    ConnectionLost,
    HandshakeRefused,
    Notification,
    RpcError,
    durable,
    open_socket,
    parse_time,
    rpc_frame,
    unique,
)
from websockets.exceptions import ConnectionClosed

__all__ = [
    "ADMIN",
    "DEFAULT_TIMEOUT",
    "GENEROUS_LIMITS",
    "MODERATOR",
    "PASSWORD",
    "Client",
    "ConnectionLost",
    "HandshakeRefused",
    "Harness",
    "Notification",
    "RpcError",
    "User",
    "durable",
    "handshake_outcome",
    "open_socket",
    "parse_time",
    "rpc_frame",
    "unique",
]

ADMIN = ("admin", "admin123")
MODERATOR = ("moderator", "mod123")
PASSWORD = "correct-horse-1"
# Settings of servers shared by many tests: the per-address limits (every test registers from
# 127.0.0.1) and the per-user message rate would otherwise trip over tests that are not about
# them. Tests of the limits start servers of their own.
GENEROUS_LIMITS = {
    "CHAT__RATE_LIMIT__CONNECTIONS_PER_IP": "1000",
    "CHAT__RATE_LIMIT__CONNECTS_PER_MINUTE": "1000000",
    "CHAT__RATE_LIMIT__MESSAGES_PER_MINUTE": "100000",
    "CHAT__RATE_LIMIT__REQUESTS_PER_MINUTE": "1000000",
    "CHAT__RATE_LIMIT__ROOMS_PER_HOUR": "1000000",
    "CHAT__RATE_LIMIT__LOGIN_ATTEMPTS_PER_HOUR": "100000",
    "CHAT__RATE_LIMIT__REGISTRATIONS_PER_HOUR": "100000",
}


async def handshake_outcome(
    ws_url: str, token: str | None, *, via: str = "header", timeout: float = DEFAULT_TIMEOUT
) -> tuple[str, Any]:
    """How the server answers a WebSocket handshake.

    ("http", status) when it refused the upgrade, ("close", code) when it accepted and closed
    before any frame, ("frame", first message) when it sent a frame first.
    """
    try:
        client = await Client.open(ws_url, token, via=via, timeout=timeout)
    except HandshakeRefused as e:
        if e.status is not None:
            return ("http", e.status)
        return ("close", e.close_code)
    await client.close()
    return ("frame", client.established)


@dataclass
class User:
    username: str
    password: str
    token: str
    role: str = "user"


class Harness:
    """HTTP accounts and WebSocket clients against one server; closes every client at the end."""

    def __init__(self, base_url: str, ws_url: str) -> None:
        self.base_url = base_url
        self.ws_url = ws_url
        self.http = httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=15.0)
        self.clients: list[Client] = []
        self._admin: User | None = None
        self._admin_client: Client | None = None

    async def __aenter__(self) -> Harness:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for client in self.clients:
            if not client.is_closed:
                with contextlib.suppress(TimeoutError, ConnectionClosed, OSError):
                    await client.close()
        await self.http.aclose()

    # --- HTTP ---------------------------------------------------------------------------------

    async def register(self, username: str, password: str = PASSWORD, **extra: Any) -> Any:
        return await self.http.post(
            "/auth/register", json={"username": username, "password": password, **extra}
        )

    async def login_response(self, username: str, password: str) -> httpx.Response:
        return await self.http.post(
            "/auth/login", json={"username": username, "password": password}
        )

    async def login(self, username: str, password: str) -> str:
        response = await self.login_response(username, password)
        assert response.status_code == 200, (response.status_code, response.text)
        token = response.json()["token"]
        assert isinstance(token, str)
        return token

    async def new_user(self, prefix: str = "u", password: str = PASSWORD) -> User:
        """A freshly registered user, logged in."""
        username = unique(prefix)
        response = await self.register(username, password)
        assert response.status_code == 201, (response.status_code, response.text)
        return User(username, password, await self.login(username, password))

    async def admin(self) -> User:
        if self._admin is None:
            self._admin = User(ADMIN[0], ADMIN[1], await self.login(*ADMIN), "admin")
        return self._admin

    async def admin_client(self) -> Client:
        """A connection of the demo admin, opened once per harness."""
        if self._admin_client is None or self._admin_client.is_closed:
            self._admin_client = await self.connect(await self.admin())
        return self._admin_client

    async def new_staff(self, role: str = "moderator", prefix: str = "mod") -> User:
        """A fresh user promoted by the admin; its token predates the promotion on purpose."""
        user = await self.new_user(prefix)
        admin = await self.admin_client()
        result = await admin.call("set_role", target_username=user.username, role=role)
        assert result == {"username": user.username, "role": role}, result
        user.role = role
        return user

    # --- WebSocket ----------------------------------------------------------------------------

    async def connect(self, who: User | str, since: int | None = None, **options: Any) -> Client:
        token = who.token if isinstance(who, User) else who
        client = await Client.open(self.ws_url, token, since, **options)
        self.clients.append(client)
        return client

    async def user_client(self, prefix: str = "u") -> tuple[User, Client]:
        user = await self.new_user(prefix)
        return user, await self.connect(user)

    async def journal_seq(self) -> int:
        response = await self.http.get("/health")
        assert response.status_code == 200, response.text
        return int(response.json()["journal_seq"])
