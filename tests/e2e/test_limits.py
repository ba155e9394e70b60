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
    Harness,
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


async def test_messages_up_to_max_message_length_are_accepted(chat: Harness) -> None:
    _, client = await chat.user_client("len")
    room = short_room()
    await client.call("join_room", room_name=room)
    assert (await client.call("send_message", room_id=room, text="é" * MAX_MESSAGE))["seq"]
    error = await client.error_of("send_message", room_id=room, text="é" * (MAX_MESSAGE + 1))
    assert (error.code, error.reason) == (-32602, "message_too_long")


async def test_announcements_obey_max_message_length(chat: Harness) -> None:
    admin = await chat.admin_client()
    error = await admin.error_of("broadcast_announcement", message="x" * (MAX_MESSAGE + 1))
    assert (error.code, error.reason) == (-32602, "message_too_long")


async def test_room_names_up_to_max_room_name_length_are_accepted(chat: Harness) -> None:
    _, client = await chat.user_client("name")
    fits = "n" + uuid.uuid4().hex[: MAX_ROOM_NAME - 1]
    assert (await client.call("join_room", room_name=fits))["room_id"] == fits
    error = await client.error_of("join_room", room_name=fits + "x")
    assert (error.code, error.reason) == (-32602, "invalid_room_name")


async def test_a_full_room_refuses_new_members_with_32005(chat: Harness) -> None:
    _, first = await chat.user_client("f1")
    _, second = await chat.user_client("f2")
    _, third = await chat.user_client("f3")
    room = short_room()
    await first.call("join_room", room_name=room)
    await second.call("join_room", room_name=room)
    error = await third.error_of("join_room", room_name=room)
    assert (error.code, error.reason) == (-32005, "room_full")
    # Members re-join a full room freely; a leave makes room.
    assert (await second.call("join_room", room_name=room))["user_count"] == MAX_USERS
    await second.call("leave_room", room_id=room)
    assert (await third.call("join_room", room_name=room))["user_count"] == MAX_USERS


async def test_sending_faster_than_messages_per_minute_is_rate_limited(chat: Harness) -> None:
    _, client = await chat.user_client("fast")
    _, other = await chat.user_client("other")
    room = short_room()
    await client.call("join_room", room_name=room)
    await other.call("join_room", room_name=room)
    for i in range(MESSAGES_PER_MINUTE):
        await client.call("send_message", room_id=room, text=f"m{i}")
    error = await client.error_of("send_message", room_id=room, text="one too many")
    assert (error.code, error.reason) == (-32029, "rate_limited")
    retry_after = error.data["retry_after_ms"]
    assert isinstance(retry_after, int) and 0 < retry_after <= 60_000
    # Per user: somebody else still talks, and the limited socket still serves other calls.
    assert (await other.call("send_message", room_id=room, text="my turn"))["seq"]
    assert (await client.call("ping"))["pong"] is True


async def test_requests_of_any_method_are_rate_limited_per_user(start_server: Any) -> None:
    server = start_server({"CHAT__RATE_LIMIT__REQUESTS_PER_MINUTE": "8"})
    async with server.harness() as chat:
        user, first = await chat.user_client("flood")
        second = await chat.connect(user)
        room = unique("flood")
        await first.call("join_room", room_name=room)
        for _ in range(3):
            await second.call("ping")
        for _ in range(4):
            await first.call("list_rooms")
        # Eight requests over two connections: the user's budget is spent, on both.
        for client, method, params in (
            (second, "ping", {}),
            (first, "join_room", {"room_name": unique("more")}),
            (first, "send_message", {"room_id": room.lower(), "text": "pipelined path too"}),
        ):
            error = await client.error_of(method, **params)
            assert (error.code, error.reason) == (-32029, "rate_limited"), method
            assert 0 < error.data["retry_after_ms"] <= 60_000
        # Nothing was lost or closed, and other users are untouched.
        assert first.ws.close_code is None and second.ws.close_code is None
        _, other = await chat.user_client("calm")
        assert (await other.call("ping"))["pong"] is True
        members = (await other.call("list_members", room_id=room.lower()))["members"]
        assert [m["username"] for m in members] == [user.username]


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


async def test_creating_rooms_is_limited_per_user_joining_them_is_not(start_server: Any) -> None:
    server = start_server({"CHAT__RATE_LIMIT__ROOMS_PER_HOUR": "2"})
    async with server.harness() as chat:
        _, maker = await chat.user_client("maker")
        _, other = await chat.user_client("other")
        made = [unique("made") for _ in range(2)]
        for room in made:
            assert (await maker.call("join_room", room_name=room))["created"] is True
        # An invalid name creates nothing and so uses none of the allowance.
        error = await maker.error_of("join_room", room_name="-bad")
        assert error.reason == "invalid_room_name"
        error = await maker.error_of("join_room", room_name=unique("third"))
        assert (error.code, error.reason) == (-32029, "rate_limited")
        assert 0 < error.data["retry_after_ms"] <= 3_600_000
        # Existing rooms are joined freely, and the limit is the maker's alone.
        assert (await maker.call("join_room", room_name="general"))["created"] is False
        assert (await other.call("join_room", room_name=made[0]))["created"] is False
        assert (await other.call("join_room", room_name=unique("theirs")))["created"] is True
        rooms = {r["room_id"] for r in (await other.call("list_rooms"))["rooms"]}
        assert {room.lower() for room in made} <= rooms
        assert not any(room.startswith("third") for room in rooms)


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


async def test_batches_are_bounded_and_every_member_counts_against_the_budget(
    start_server: Any,
) -> None:
    server = start_server(
        {"CHAT__RATE_LIMIT__REQUESTS_PER_MINUTE": "12", "CHAT__SERVER__MAX_BATCH_REQUESTS": "5"}
    )
    async with server.harness() as chat:
        _, client = await chat.user_client("batch")
        ping = json.loads(rpc_frame("p", "ping"))
        await client.raw_send(json.dumps([ping] * 6))
        too_large = await client.next_frame()
        assert too_large["error"]["code"] == -32600
        assert too_large["error"]["data"]["reason"] == "batch_too_large"
        # Invalid members and unanswered notifications count as much as real requests:
        # 1 (the refused batch) + 5 + 5 = 11 of the 12.
        await client.raw_send(json.dumps([1, 2, 3, 4, 5]))
        invalid = await client.next_frame()
        assert [answer["error"]["code"] for answer in invalid] == [-32600] * 5
        silent = {"jsonrpc": "2.0", "method": "no_such_method"}
        await client.raw_send(json.dumps([silent] * 5))
        assert (await client.call("ping"))["pong"] is True  # the 12th
        error = await client.error_of("ping")
        assert (error.code, error.reason) == (-32029, "rate_limited")
        assert not client.is_closed


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
