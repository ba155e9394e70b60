"""Configured limits: lengths, room size, message rate, sockets per address, slow readers."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import time
import uuid
from typing import Any

import pytest
from helpers import (
    GENEROUS_LIMITS,
    Client,
    HandshakeRefused,
    open_socket,
    rpc_frame,
    unique,
)
from websockets.exceptions import ConnectionClosed

MAX_MESSAGE = 20
MAX_ROOM_NAME = 10
MAX_USERS = 2
MESSAGES_PER_MINUTE = 5


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    return {
        **GENEROUS_LIMITS,
        "CHAT__CHAT__MAX_MESSAGE_LENGTH": str(MAX_MESSAGE),
        "CHAT__CHAT__MAX_ROOM_NAME_LENGTH": str(MAX_ROOM_NAME),
        "CHAT__CHAT__MAX_USERS_PER_ROOM": str(MAX_USERS),
        "CHAT__RATE_LIMIT__MESSAGES_PER_MINUTE": str(MESSAGES_PER_MINUTE),
    }


def short_room() -> str:
    """A fresh room name within the module's 10-character limit."""
    return "r" + uuid.uuid4().hex[:8]


async def test_a_client_past_its_budget_is_read_more_slowly_and_loses_nothing(
    start_server: Any,
) -> None:
    server = start_server({"CHAT__RATE_LIMIT__REQUESTS_PER_MINUTE": "3"})
    async with server.harness() as chat:
        _, flood = await chat.user_client("flood")
        _, calm = await chat.user_client("calm")
        for _ in range(3):
            await flood.call("ping")
        started = time.monotonic()
        answers = await asyncio.gather(
            *(flood.request_raw(rpc_frame(f"f{i}", "ping"), f"f{i}") for i in range(3))
        )
        elapsed = time.monotonic() - started
        # Every frame answered, each refused: then the server reads the next one a pause
        # later (the retry time, here 20 s, capped at 1 s), so a flood costs it little.
        assert [a["error"]["data"]["reason"] for a in answers] == ["rate_limited"] * 3
        assert elapsed >= 1.9, elapsed
        assert (await calm.call("ping"))["pong"] is True


async def test_sockets_per_address_are_limited(start_server: Any) -> None:
    server = start_server({"CHAT__RATE_LIMIT__CONNECTIONS_PER_IP": "3"})
    async with server.harness() as chat:
        user = await chat.new_user("many")
        clients = [await chat.connect(user) for _ in range(3)]
        with pytest.raises(HandshakeRefused):
            await Client.open(chat.ws_url, user.token)
        # HTTP is not a socket: logins still work.
        assert (await chat.login_response(user.username, user.password)).status_code == 200
        await clients[0].close()
        # The server frees the slot when it has seen the close; poll for it briefly.
        deadline = time.monotonic() + 5
        while True:
            try:
                again = await chat.connect(user)
                break
            except HandshakeRefused:
                assert time.monotonic() < deadline, "a closed socket never freed its slot"
                await asyncio.sleep(0.05)
        assert (await again.call("ping"))["pong"] is True


async def test_a_reader_that_stops_reading_is_closed_with_4008_and_others_keep_flowing(
    start_server: Any,
) -> None:
    size = 30_000
    count = 300
    server = start_server(
        {
            "CHAT__SERVER__SEND_QUEUE_LIMIT": "16",
            "CHAT__CHAT__MAX_MESSAGE_LENGTH": str(size),
            "CHAT__DATABASE__SYNCHRONOUS": "NORMAL",
        }
    )
    async with server.harness() as chat:
        _, sender = await chat.user_client("sender")
        _, fast = await chat.user_client("fast")
        slow_user, slow_setup = await chat.user_client("slow")
        room = unique("flood").lower()
        for client in (sender, fast, slow_setup):
            await client.call("join_room", room_name=room)
        await slow_setup.close()

        # A socket with a tiny receive buffer, whose client never reads: the server's
        # writes back up into its queue for this connection.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (server.host, server.port))
        slow = await open_socket(
            chat.ws_url, slow_user.token, sock=sock, max_queue=1, ping_interval=None
        )
        try:
            sent_at: dict[str, float] = {}

            async def send(i: int) -> None:
                text = f"{i:05d} " + os.urandom(size).hex()[: size - 6]
                sent_at[text[:5]] = time.monotonic()
                await sender.call("send_message", room_id=room, text=text)

            for start in range(0, count, 10):
                await asyncio.gather(*(send(i) for i in range(start, start + 10)))
            last = f"{count - 1:05d}"
            await fast.next_notification(
                "message_received", timeout=20, where=lambda p: p["text"].startswith(last)
            )
            got = [m for m in fast.notifications if m["method"] == "message_received"]
            assert [m["params"]["text"][:5] for m in got] == [f"{i:05d}" for i in range(count)]
            latencies = [m["_received_at"] - sent_at[m["params"]["text"][:5]] for m in got]
            assert statistics.median(latencies) < 0.5, statistics.median(latencies)
            assert max(latencies) < 1.5, max(latencies)

            # Now read the slow socket: its end is a 4008 close, not an endless stream.
            code = None
            try:
                async with asyncio.timeout(20):
                    while True:
                        frame = json.loads(await slow.recv())
                        assert frame.get("method") in ("connection_established", "message_received")
            except ConnectionClosed as e:
                code = e.rcvd.code if e.rcvd else None
            except TimeoutError:
                code = None
            assert code == 4008, f"the slow reader ended with close code {code}"
        finally:
            await slow.close()
        # The slow reader reconnects (and could resume).
        again = await chat.connect(slow_user)
        assert (await again.call("ping"))["pong"] is True


async def test_a_connection_over_send_queue_bytes_is_closed_with_4008(start_server: Any) -> None:
    server = start_server({"CHAT__SERVER__SEND_QUEUE_BYTES": "20000"})
    async with server.harness() as chat:
        _, client = await chat.user_client("bytes")
        room = unique("bytes").lower()
        await client.call("join_room", room_name=room)
        for i in range(25):
            await client.call("send_message", room_id=room, text=f"{i:02d} " + "x" * 15)
        # Fits: one page of 25 short messages.
        assert len((await client.call("get_history", room_id=room, limit=25))["messages"]) == 25
        # Twenty pages in one batch would queue ~50 KB at once: past the bound, whoever reads.
        pages = [
            json.loads(rpc_frame(f"h{i}", "get_history", {"room_id": room})) for i in range(20)
        ]
        await client.raw_send(json.dumps(pages))
        assert await client.wait_closed() == 4008
        # The resume backlog obeys the same bound: too much to send is resync_required.
        user = await chat.new_user("resume")
        watcher = await chat.connect(user)
        await watcher.call("join_room", room_name=room)
        since = await chat.journal_seq()
        await watcher.close()
        _, sender = await chat.user_client("sender")
        await sender.call("join_room", room_name=room)
        for i in range(100):
            await sender.call("send_message", room_id=room, text=f"{i:03d} " + "y" * 200)
        resumed = await chat.connect(user, since=since)
        params = await resumed.params_of("resync_required")
        assert params["journal_seq"] >= since + 100


async def test_connections_opened_per_minute_are_limited_per_user(start_server: Any) -> None:
    server = start_server({"CHAT__RATE_LIMIT__CONNECTS_PER_MINUTE": "3"})
    async with server.harness() as chat:
        user = await chat.new_user("loop")
        for _ in range(3):
            await (await chat.connect(user)).close()
        started = time.monotonic()
        try:
            await chat.connect(user)
        except HandshakeRefused as refused:
            assert refused.status == 429 and int(refused.headers["retry-after"]) >= 1
        else:
            raise AssertionError("a fourth connection within the minute was served")
        # The refusal waited (the retry time, at most 1 s): a loop gets one try a second.
        assert time.monotonic() - started >= 0.9
        other = await chat.new_user("calm")
        assert (await (await chat.connect(other)).call("ping"))["pong"] is True
