"""Helpers of the browser tests: the e2e server subprocess on a fixed port, the page's users.

The page connects to the address it was loaded from, so a server restarted for a test must
come back on the same port: `FixedPortServer` passes one chosen up front instead of `--port 0`.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

_E2E = Path(__file__).resolve().parent.parent / "e2e"
if str(_E2E) not in sys.path:
    sys.path.insert(0, str(_E2E))


from server_kit import ServerProcess as _ServerProcess  # noqa: E402 (tests/e2e is on sys.path from here)


def free_port() -> int:
    """A port nobody listens on now (the kernel's pick for port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class FixedPortServer(_ServerProcess):  # type: ignore[misc]
    """`chat-web serve` on one port for all its runs, so a page survives a restart."""

    def __init__(self, *args: Any, port: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fixed_port = port

    def command(self) -> list[str]:
        cmd: list[str] = super().command()
        cmd[cmd.index("--port") + 1] = str(self.fixed_port)
        return cmd


def login_token(base_url: str, username: str, password: str) -> str:
    import httpx

    response = httpx.post(
        f"{base_url}/auth/login", json={"username": username, "password": password}
    )
    response.raise_for_status()
    return str(response.json()["token"])


def register(base_url: str, username: str, password: str) -> None:
    import httpx

    response = httpx.post(
        f"{base_url}/auth/register", json={"username": username, "password": password}
    )
    assert response.status_code == 201, response.text


def post_messages(ws_url: str, token: str, room: str, texts: list[str]) -> None:
    """Join `room` and send `texts` in order over one socket; returns once all are acked."""
    with connect(f"{ws_url}?token={token}", open_timeout=10) as ws:
        ws.recv(timeout=10)  # connection_established
        requests = [{"method": "join_room", "params": {"room_name": room}}]
        requests += [{"method": "send_message", "params": {"text": t}} for t in texts]
        for number, request in enumerate(requests, 1):
            ws.send(json.dumps({"jsonrpc": "2.0", "id": number, **request}))
        answered = 0
        while answered < len(requests):
            frame = json.loads(ws.recv(timeout=10))
            if "id" in frame:
                assert "result" in frame, frame
                answered += 1
