"""`server.peer_urls`: the page learns the chat's other nodes (`GET /peers`) and its
Content-Security-Policy lets it connect to them; with none, only to its own origin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx


async def test_the_page_is_told_of_the_peer_nodes_and_may_connect_to_them(
    start_server: Callable[..., Any],
) -> None:
    peers = "https://b.example/chat/,http://10.0.0.3:3000"
    server = start_server({"CHAT__SERVER__PEER_URLS": peers})
    async with httpx.AsyncClient(base_url=server.url) as http:
        listed = await http.get("/peers")
        page = await http.get("/")
    assert listed.status_code == 200
    assert listed.json() == {"peer_urls": ["https://b.example/chat", "http://10.0.0.3:3000"]}
    policy = page.headers["Content-Security-Policy"]
    assert listed.headers["Content-Security-Policy"] == policy
    connect = next(d for d in policy.split("; ") if d.startswith("connect-src"))
    assert connect.split() == [
        "connect-src",
        "'self'",
        "https://b.example",
        "wss://b.example",
        "http://10.0.0.3:3000",
        "ws://10.0.0.3:3000",
    ]


async def test_with_no_peers_the_page_connects_only_to_its_own_origin(
    start_server: Callable[..., Any],
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url) as http:
        listed = await http.get("/peers")
        page = await http.get("/")
    assert listed.json() == {"peer_urls": []}
    assert "connect-src 'self';" in page.headers["Content-Security-Policy"]
