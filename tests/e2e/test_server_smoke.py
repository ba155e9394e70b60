"""Smoke tests of the server's own machinery: closes, resume, slow readers, limits, shutdown.

Each waits for the frame or close it expects, with a timeout; none sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from helpers import Client, HandshakeRefused, Harness, RpcError, durable, open_socket, unique
from server_kit import ServerProcess
from websockets.exceptions import ConnectionClosed

StartServer = Callable[..., ServerProcess]


async def _room_pair(chat: Harness) -> tuple[str, Any, Client, Any, Client]:
    room = unique("r")
    a, ca = await chat.user_client("a")
    b, cb = await chat.user_client("b")
    await ca.call("join_room", room_name=room)
    await cb.call("join_room", room_name=room)
    return room, a, ca, b, cb


async def test_a_chat_wide_kick_shows_the_kick_then_closes_with_4001(chat: Harness) -> None:
    room, _a, ca, b, cb = await _room_pair(chat)
    mod = await chat.connect(await chat.new_staff())
    await mod.call("kick_user", target_username=b.username, reason="spam")
    kicked = await cb.params_of("user_kicked", username=b.username)
    assert kicked["room_id"] is None and kicked["by"]
    assert await cb.wait_closed() == 4001
    left = await ca.params_of("user_left", username=b.username)
    assert left["reason"] == "kicked" and left["room_id"] == room.lower()
    # The kicked user may come back.
    again = await chat.connect(b)
    assert again.established["params"]["rooms"] == []


async def test_a_ban_closes_with_4403_and_refuses_the_next_handshake(chat: Harness) -> None:
    _room, _a, ca, b, cb = await _room_pair(chat)
    mod = await chat.connect(await chat.new_staff())
    result = await mod.call("ban_user", target_username=b.username, duration_seconds=600)
    assert result["banned"] is True and result["until"]
    await cb.params_of("user_banned", username=b.username)
    assert await cb.wait_closed() == 4403
    await ca.params_of("user_banned", username=b.username)
    with pytest.raises(HandshakeRefused) as refused:
        await chat.connect(b)
    assert refused.value.status == 403
    assert (await chat.login_response(b.username, b.password)).status_code == 403


async def test_presence_and_typing_reach_the_other_members(chat: Harness) -> None:
    room, a, ca, b, cb = await _room_pair(chat)
    room_id = room.lower()
    await ca.call("start_typing", room_id=room_id)
    assert (await cb.params_of("user_started_typing", username=a.username))["room_id"] == room_id
    await ca.call("send_message", room_id=room_id, text="done typing")
    await cb.params_of("user_stopped_typing", username=a.username)
    await cb.close()
    offline = await ca.params_of("presence_changed", username=b.username)
    assert offline["online"] is False
    await chat.connect(b)
    online = await ca.params_of("presence_changed", username=b.username, online=True)
    assert online["online"] is True
    assert not [n for n in ca.received("user_started_typing") if n["username"] == a.username]


async def test_typing_ends_by_itself_after_the_timeout(start_server: StartServer) -> None:
    server = start_server({"CHAT__CHAT__TYPING_TIMEOUT_SECONDS": "0.3"})
    async with server.harness() as chat:
        _room, a, ca, _b, cb = await _room_pair(chat)
        await ca.call("start_typing")
        await cb.params_of("user_started_typing", username=a.username)
        await cb.params_of("user_stopped_typing", username=a.username, timeout=3)


async def test_resume_delivers_exactly_what_a_connected_client_got(chat: Harness) -> None:
    room, _a, ca, b, cb = await _room_pair(chat)
    watcher = await chat.connect(b)  # stays connected: the reference stream of b
    last = (await cb.call("ping"))["journal_seq"]
    await cb.close()
    mod = await chat.connect(await chat.new_staff("admin", "adm"))
    for i in range(5):
        await ca.call("send_message", text=f"m{i}")
    await ca.call("leave_room")
    await ca.call("join_room", room_name=room)
    await mod.call("broadcast_announcement", message="hello all")
    marker = await ca.call("send_message", text="marker")
    await watcher.params_of("message_received", seq=marker["seq"])
    resumed = await chat.connect(b, since=last)
    assert resumed.established["params"]["resumed"] is True
    await resumed.params_of("message_received", seq=marker["seq"])
    expected = [n for n in watcher.notifications if n["params"].get("seq", 0) > last]
    got = [n for n in resumed.notifications[1:] if "seq" in n["params"]]
    assert durable(got) == durable(expected)
    assert [n["params"] for n in got] == [n["params"] for n in expected]


async def test_resume_past_the_limit_asks_for_a_resync(start_server: StartServer) -> None:
    server = start_server({"CHAT__CHAT__MAX_RESUME_EVENTS": "3"})
    async with server.harness() as chat:
        _room, _a, ca, b, cb = await _room_pair(chat)
        last = (await cb.call("ping"))["journal_seq"]
        await cb.close()
        for i in range(5):
            await ca.call("send_message", text=f"m{i}")
        head = (await ca.call("ping"))["journal_seq"]
        resumed = await chat.connect(b, since=last)
        resync = await resumed.params_of("resync_required")
        assert resync["journal_seq"] == head
        assert not resumed.received("message_received")


async def test_an_invalid_since_is_refused_with_400(chat: Harness) -> None:
    user = await chat.new_user()
    for bad in ("-1", "x", "1.5"):
        with pytest.raises(HandshakeRefused) as refused:
            await open_socket(chat.ws_url, user.token, extra_query={"since": bad})
        assert refused.value.status == 400


async def test_a_slow_reader_is_closed_with_4008_and_delays_nobody(
    start_server: StartServer,
) -> None:
    server = start_server(
        {
            "CHAT__SERVER__SEND_QUEUE_LIMIT": "4",
            "CHAT__CHAT__MAX_MESSAGE_LENGTH": "60000",
            "CHAT__SERVER__MAX_FRAME_BYTES": "200000",
            "CHAT__RATE_LIMIT__ENABLED": "false",
        }
    )
    async with server.harness() as chat:
        room, _a, ca, b, _cb = await _room_pair(chat)
        # A raw socket nobody reads: its client stops reading, TCP fills, the server's queue
        # overflows.
        slow = await open_socket(chat.ws_url, b.token, max_queue=1, max_size=None)
        text = "x" * 60000
        started = time.monotonic()
        for _ in range(300):
            await ca.call("send_message", text=text)
        assert time.monotonic() - started < 60
        code = None
        try:
            async with asyncio.timeout(20):
                while True:
                    await slow.recv()
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
        assert code == 4008
        assert room


async def test_messages_per_minute_are_limited_with_retry_after(
    start_server: StartServer,
) -> None:
    server = start_server({"CHAT__RATE_LIMIT__MESSAGES_PER_MINUTE": "3"})
    async with server.harness() as chat:
        _room, _a, ca, _b, _cb = await _room_pair(chat)
        for i in range(3):
            await ca.call("send_message", text=f"m{i}")
        error = await ca.error_of("send_message", text="one too many")
        assert error.code == -32029 and error.reason == "rate_limited"
        assert error.data["retry_after_ms"] > 0


async def test_connections_per_address_are_limited(start_server: StartServer) -> None:
    server = start_server({"CHAT__RATE_LIMIT__CONNECTIONS_PER_IP": "2"})
    async with server.harness() as chat:
        user = await chat.new_user()
        first = await chat.connect(user)
        await chat.connect(user)
        with pytest.raises(HandshakeRefused) as refused:
            await chat.connect(user)
        assert refused.value.status == 429
        assert refused.value.headers.get("retry-after") == "1"
        await first.close()
        # The slot is freed once the server has finished with the closed socket, a few steps
        # after the client saw the closing handshake: until then a reconnect may still be
        # refused with 429, never with anything else.
        async with asyncio.timeout(10):
            while True:
                try:
                    await chat.connect(user)
                    break
                except HandshakeRefused as again:
                    assert again.status == 429


async def test_a_token_expiring_mid_session_gets_32001_then_4401_and_ends_idle_sessions(
    start_server: StartServer,
) -> None:
    server = start_server({"CHAT__AUTH__JWT_TTL_SECONDS": "2"})
    async with server.harness() as chat:
        user = await chat.new_user()
        client = await chat.connect(user)
        idle = await chat.connect(user)
        error: RpcError | None = None
        async with asyncio.timeout(10):
            while error is None:
                try:
                    await client.call("ping")
                except RpcError as exc:  # once the token has expired
                    error = exc
                else:
                    await asyncio.sleep(0.2)  # polling a clock, not synchronising
        assert getattr(error, "code", None) == -32001
        # A connection that sends nothing is closed too, after the expiry (it was still open
        # when the token was refused), within the grace period.
        assert idle.ws.close_code is None
        assert await client.wait_closed() == 4401
        assert await idle.wait_closed(timeout=10) == 4401
        assert idle.received("connection_established")


async def test_sigterm_closes_sockets_with_1001_and_state_survives(
    start_server: StartServer,
) -> None:
    server = start_server()
    async with server.harness() as chat:
        room, a, ca, _b, _cb = await _room_pair(chat)
        sent = await ca.call("send_message", text="kept")
        stopping = asyncio.create_task(asyncio.to_thread(server.stop))
        assert await ca.wait_closed(timeout=10) == 1001
        assert await stopping == 0
    assert any("listening on" in line for line in server.log_lines)
    server.start()
    async with server.harness() as chat:
        client = await chat.connect(a)  # the old token is still valid
        assert client.established["params"]["rooms"] == [room.lower()]
        history = await client.call("get_history", room_id=room)
        assert history["messages"][-1]["message_id"] == sent["message_id"]


async def test_the_log_can_be_json(start_server: StartServer) -> None:
    server = start_server({"CHAT__LOGGING__FORMAT": "json"})
    lines = [line for line in server.log_lines if line.startswith("{")]
    assert any("listening on" in json.loads(line)["message"] for line in lines)


async def test_unpersisted_messages_are_delivered_live_without_a_seq(
    start_server: StartServer,
) -> None:
    server = start_server({"CHAT__CHAT__PERSIST_MESSAGES": "false"})
    async with server.harness() as chat:
        room, _a, ca, _b, cb = await _room_pair(chat)
        before = await chat.journal_seq()
        result = await ca.call("send_message", text="fleeting")
        assert result["seq"] is None and result["duplicate"] is False
        got = await cb.params_of("message_received", message_id=result["message_id"])
        assert got["text"] == "fleeting" and "seq" not in got
        assert await chat.journal_seq() == before
        assert (await ca.call("get_history", room_id=room))["messages"] == []
        error = await ca.error_of("send_message", text=" ")
        assert error.reason == "empty_message"
