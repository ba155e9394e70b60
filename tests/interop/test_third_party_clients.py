"""Generic JSON-RPC 2.0 libraries talk to a real server in its default mode (no `batch=1`).

What a new user would try: log in over HTTP, connect with `?token=`, join a room, send a
message, receive its `message_received`, send a batch, get an error. The README's "Clients"
section shows the same calls.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from typing import Any

import httpx
import pytest
from jsonrpc_base import ProtocolError
from jsonrpc_websocket import Server

PASSWORD = "interop-secret-1"
WAIT = 10.0


def new_user_token(base_url: str, prefix: str) -> tuple[str, str]:
    """Register a fresh user and log it in over HTTP: (username, token)."""
    username = f"{prefix}{uuid.uuid4().hex[:10]}"
    with httpx.Client(base_url=base_url, timeout=WAIT) as http:
        created = http.post("/auth/register", json={"username": username, "password": PASSWORD})
        assert created.status_code == 201, created.text
        login = http.post("/auth/login", json={"username": username, "password": PASSWORD})
        assert login.status_code == 200, login.text
    return username, login.json()["token"]


def test_node_json_rpc_2_0_over_ws(server: Any, node_client: list[str]) -> None:
    """`json-rpc-2.0` + `ws`: requests, a notification, a batch and an error."""
    username, token = new_user_token(server.url, "node")
    room = f"Interop-{uuid.uuid4().hex[:8]}"
    text = "hello from json-rpc-2.0 ✓"
    done = subprocess.run(
        [*node_client, server.ws_url, token, room, text],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"node client failed:\n{done.stdout}\n{done.stderr}"
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    assert seen["welcome"]["username"] == username
    assert seen["joined"]["room_id"] == room.lower()
    assert seen["joined"]["existing_users"] == [username]
    assert seen["sent"]["duplicate"] is False
    message = seen["message"]
    assert message["text"] == text
    assert message["username"] == username
    assert message["message_id"] == seen["sent"]["message_id"]
    assert message["client_msg_id"] == "node-1"

    by_id = {response["id"]: response for response in seen["batch"]}
    assert set(by_id) == {"b1", "b2"}
    assert by_id["b1"]["result"]["pong"] is True
    assert by_id["b2"]["result"]["members"] == [
        {"username": username, "role": "user", "online": True}
    ]

    assert seen["error"]["code"] == -32602
    assert seen["error"]["data"]["reason"] == "invalid_room_name"


async def test_python_jsonrpc_websocket(server: Any) -> None:
    """Python's `jsonrpc-websocket`: `send_message` is reached through `__getattr__`.

    The library has no batch call and its reader fails on an array frame, so the batch is
    the Node client's; here every request goes alone, as the library sends them.
    """
    username, token = await asyncio.to_thread(new_user_token, server.url, "py")
    room = f"interop-{uuid.uuid4().hex[:8]}"
    text = "hello from jsonrpc-websocket ✓"
    loop = asyncio.get_running_loop()
    welcome: asyncio.Future[dict[str, Any]] = loop.create_future()
    received: asyncio.Future[dict[str, Any]] = loop.create_future()

    def on_welcome(**params: Any) -> None:
        if not welcome.done():
            welcome.set_result(params)

    def on_message(**params: Any) -> None:
        if params.get("text") == text and not received.done():
            received.set_result(params)

    rpc = Server(f"{server.ws_url}?token={token}", timeout=WAIT)
    # Assigning a public attribute registers a handler for the server's notification.
    rpc.connection_established = on_welcome
    rpc.message_received = on_message
    reader = await rpc.ws_connect()
    try:
        assert (await asyncio.wait_for(welcome, WAIT))["username"] == username
        joined = await rpc.join_room(room_name=room)
        assert joined["existing_users"] == [username]

        # `rpc.send_message` is the library's own transport method, not a remote call.
        with pytest.raises(TypeError):
            await rpc.send_message(text=text)
        send_message = rpc.__getattr__("send_message")
        sent = await send_message(text=text, room_id=joined["room_id"])
        message = await asyncio.wait_for(received, WAIT)
        assert message["username"] == username
        assert message["message_id"] == sent["message_id"]
        assert message["room_id"] == room

        with pytest.raises(ProtocolError) as caught:
            await rpc.join_room(room_name="no spaces!")
        code, _message, response = caught.value.args
        assert code == -32602
        assert response["error"]["data"]["reason"] == "invalid_room_name"

        # The connection is still usable after the error.
        assert (await rpc.ping())["pong"] is True
    finally:
        await rpc.close()
    await asyncio.wait_for(reader, WAIT)
