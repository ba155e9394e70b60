"""Configured limits checked at the edge or by the decider: lengths, room size, the message,
request and room-creation rates, batch size. Socket-free (frames_kit: the real reader, handlers,
limiters and processor in process, talked to by the end-to-end tests' own client); the limits
that are the socket's (sockets per address, connects per minute, slow readers, the read pause)
stay in tests/e2e/test_limits.py."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from frames_kit import GENEROUS_LIMITS, InProcessChat
from rpc_client import rpc_frame, unique

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


async def test_messages_up_to_max_message_length_are_accepted(chat: InProcessChat) -> None:
    _, client = await chat.user_client("len")
    room = short_room()
    await client.call("join_room", room_name=room)
    assert (await client.call("send_message", room_id=room, text="é" * MAX_MESSAGE))["seq"]
    error = await client.error_of("send_message", room_id=room, text="é" * (MAX_MESSAGE + 1))
    assert (error.code, error.reason) == (-32602, "message_too_long")


async def test_announcements_obey_max_message_length(chat: InProcessChat) -> None:
    admin = await chat.admin_client()
    error = await admin.error_of("broadcast_announcement", message="x" * (MAX_MESSAGE + 1))
    assert (error.code, error.reason) == (-32602, "message_too_long")


async def test_room_names_up_to_max_room_name_length_are_accepted(chat: InProcessChat) -> None:
    _, client = await chat.user_client("name")
    fits = "n" + uuid.uuid4().hex[: MAX_ROOM_NAME - 1]
    assert (await client.call("join_room", room_name=fits))["room_id"] == fits
    error = await client.error_of("join_room", room_name=fits + "x")
    assert (error.code, error.reason) == (-32602, "invalid_room_name")


async def test_a_full_room_refuses_new_members_with_32005(chat: InProcessChat) -> None:
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


async def test_sending_faster_than_messages_per_minute_is_rate_limited(chat: InProcessChat) -> None:
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
