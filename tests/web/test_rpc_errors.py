"""JSON-RPC 2.0 over the connection: errors, batches, notifications (docs/protocol.md section
3). Socket-free: the real reader, handlers and processor in process (frames_kit), talked to by
the end-to-end tests' own client; nothing here depends on the network (the WebSocket itself is
tested end to end in tests/e2e)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from frames_kit import InProcessChat
from rpc_client import Client, rpc_frame, unique


def assert_error(frame: Any, code: int, reason: str, request_id: Any) -> dict[str, Any]:
    assert isinstance(frame, dict), frame
    assert frame.get("jsonrpc") == "2.0", frame
    assert "id" in frame and frame["id"] == request_id, frame
    assert "result" not in frame, frame
    error = frame["error"]
    assert error["code"] == code, frame
    assert isinstance(error["message"], str) and error["message"], frame
    assert error["data"]["reason"] == reason, frame
    return error


async def still_serves(client: Client) -> None:
    """A failing request never closes the connection."""
    assert (await client.call("ping"))["pong"] is True
    assert not client.is_closed


@pytest.fixture
async def client(chat: InProcessChat) -> Client:
    _, connected = await chat.user_client("rpc")
    return connected


async def test_unparsable_json_gets_a_parse_error_with_a_null_id(client: Client) -> None:
    await client.raw_send('{"jsonrpc": "2.0", "id": 1, "method": "ping"')
    assert_error(await client.next_frame(), -32700, "parse_error", None)
    await still_serves(client)


@pytest.mark.parametrize(
    ("frame", "request_id"),
    [
        ({"jsonrpc": "1.0", "id": 1, "method": "ping"}, 1),
        ({"id": "no-version", "method": "ping"}, "no-version"),
        ({"jsonrpc": "2.0", "id": 3, "method": 5}, 3),
        ({"jsonrpc": "2.0", "id": 4}, 4),
        ({"jsonrpc": "2.0", "id": {"nested": 1}, "method": "ping"}, None),
        ({"jsonrpc": "2.0", "id": [1], "method": "ping"}, None),
        (42, None),
        ("a string", None),
        (None, None),
    ],
)
async def test_invalid_requests_get_32600_with_the_id_when_it_can_be_read(
    client: Client, frame: Any, request_id: Any
) -> None:
    await client.raw_send(json.dumps(frame))
    assert_error(await client.next_frame(), -32600, "invalid_request", request_id)
    await still_serves(client)


@pytest.mark.parametrize("request_id", [7, "seven", "00-id-with-dashes"])
async def test_an_unknown_method_gets_32601_with_its_id(client: Client, request_id: Any) -> None:
    await client.raw_send(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "fly"}))
    assert_error(await client.next_frame(), -32601, "method_not_found", request_id)
    await still_serves(client)


@pytest.mark.parametrize(
    ("method", "params", "field"),
    [
        ("join_room", {}, "room_name"),
        ("join_room", {"room_name": 12}, "room_name"),
        ("send_message", {"room_id": "general"}, "text"),
        ("send_message", {"text": ["a"]}, "text"),
        ("get_history", {"room_id": "general", "limit": "ten"}, "limit"),
        ("list_members", {}, "room_id"),
        ("kick_user", {"reason": "x"}, "target_username"),
        ("set_role", {"target_username": "bob", "role": "emperor"}, "role"),
    ],
)
async def test_invalid_params_get_32602_naming_the_field(
    client: Client, method: str, params: dict[str, Any], field: str
) -> None:
    await client.raw_send(
        json.dumps({"jsonrpc": "2.0", "id": "p", "method": method, "params": params})
    )
    error = assert_error(await client.next_frame(), -32602, "invalid_params", "p")
    assert field in error["message"] or field in json.dumps(error["data"]), error
    await still_serves(client)


async def test_params_by_position_are_invalid_params(client: Client) -> None:
    await client.raw_send(
        json.dumps({"jsonrpc": "2.0", "id": 9, "method": "join_room", "params": ["general"]})
    )
    assert_error(await client.next_frame(), -32602, "invalid_params", 9)


async def test_omitted_params_mean_an_empty_object(client: Client) -> None:
    await client.raw_send(json.dumps({"jsonrpc": "2.0", "id": 10, "method": "whoami"}))
    frame = await client.next_frame()
    assert (
        frame["id"] == 10
        and frame["result"]["username"] == client.established["params"]["username"]
    )


async def test_extra_members_and_unknown_params_are_ignored(client: Client) -> None:
    await client.raw_send(
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 11,
                "type": "request",
                "method": "ping",
                "params": {"unexpected": True},
                "meta": {"trace": "abc"},
            }
        )
    )
    frame = await client.next_frame()
    assert frame["id"] == 11, frame
    assert frame["result"]["pong"] is True


async def test_a_batch_gets_an_array_of_the_responses_to_its_requests(client: Client) -> None:
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "method": "ping"},
        {"jsonrpc": "2.0", "id": "two", "method": "whoami"},
        {"jsonrpc": "2.0", "id": 3, "method": "no_such_method"},
        {"jsonrpc": "1.0", "id": 4, "method": "ping"},
        {"jsonrpc": "2.0", "id": 5, "method": "join_room", "params": {}},
    ]
    await client.raw_send(json.dumps(batch))
    frame = await client.next_frame()
    assert isinstance(frame, list), frame
    by_id = {item["id"]: item for item in frame}
    assert len(frame) == 5 and by_id.keys() == {1, "two", 3, 4, 5}, frame
    assert by_id[1]["result"]["pong"] is True
    assert by_id["two"]["result"]["username"] == client.established["params"]["username"]
    assert_error(by_id[3], -32601, "method_not_found", 3)
    assert_error(by_id[4], -32600, "invalid_request", 4)
    assert_error(by_id[5], -32602, "invalid_params", 5)
    await still_serves(client)
    assert client.stray_frames == []


async def test_a_batch_with_an_invalid_member_answers_it_with_a_null_id(client: Client) -> None:
    await client.raw_send(json.dumps([1, {"jsonrpc": "2.0", "id": "ok", "method": "ping"}]))
    frame = await client.next_frame()
    assert isinstance(frame, list) and len(frame) == 2, frame
    errors = [item for item in frame if "error" in item]
    assert len(errors) == 1
    assert_error(errors[0], -32600, "invalid_request", None)


async def test_a_batch_of_notifications_gets_no_answer_at_all(client: Client) -> None:
    batch = [
        {"jsonrpc": "2.0", "method": "ping"},
        {"jsonrpc": "2.0", "method": "whoami"},
        {"jsonrpc": "2.0", "method": "no_such_method"},
    ]
    await client.raw_send(json.dumps(batch))
    # Two round trips after it: anything the batch produced would have arrived by then.
    await still_serves(client)
    await still_serves(client)
    assert client.stray_frames == []


async def test_an_empty_batch_gets_a_single_32600_error(client: Client) -> None:
    await client.raw_send("[]")
    frame = await client.next_frame()
    assert not isinstance(frame, list), frame
    assert_error(frame, -32600, "invalid_request", None)
    await still_serves(client)


async def test_a_notification_is_carried_out_without_a_response(client: Client) -> None:
    room = unique("notified")
    await client.notify("join_room", room_name=room)
    joined = await client.params_of("user_joined", room_id=room.lower())
    assert joined["username"] == client.established["params"]["username"]
    assert room.lower() in (await client.call("whoami"))["rooms"]
    await still_serves(client)
    assert client.stray_frames == []


async def test_a_failing_notification_gets_no_response(client: Client) -> None:
    await client.notify("send_message", text="")
    await client.notify("no_such_method")
    await client.raw_send(json.dumps({"jsonrpc": "2.0", "method": "join_room", "params": 5}))
    await still_serves(client)
    await still_serves(client)
    assert client.stray_frames == []


async def test_every_request_gets_exactly_one_response_with_its_id(client: Client) -> None:
    ids = list(range(100, 140))
    for request_id in ids:
        await client.raw_send(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "ping"}))
    answers = [await client.next_frame() for _ in ids]
    assert sorted(frame["id"] for frame in answers) == ids
    await still_serves(client)
    assert client.stray_frames == []


async def test_deeply_nested_json_is_answered_not_fatal(client: Client) -> None:
    depth = 3000
    await client.raw_send("[" * depth + "]" * depth)
    frame = await client.next_frame()
    assert isinstance(frame, dict) and frame["id"] is None, str(frame)[:200]
    assert frame["error"]["code"] in (-32700, -32600)
    await still_serves(client)


async def test_results_are_objects_for_every_user_method(client: Client) -> None:
    room = unique("objs")
    results = [
        await client.call("join_room", room_name=room),
        await client.call("send_message", text="hello", room_id=room.lower()),
        await client.call("list_rooms"),
        await client.call("list_members", room_id=room.lower()),
        await client.call("get_history", room_id=room.lower()),
        await client.call("start_typing", room_id=room.lower()),
        await client.call("stop_typing", room_id=room.lower()),
        await client.call("whoami"),
        await client.call("ping"),
        await client.call("leave_room", room_id=room.lower()),
    ]
    assert all(isinstance(result, dict) for result in results)


async def test_pipelined_sends_are_answered_in_request_order(chat: InProcessChat) -> None:
    """Lone send_message frames run ahead of their commits; answers still leave in request
    order, whether a send commits, is refused by the processor (not a member, blank text) or
    by the parser (no text: that frame is not pipelined and waits for those before it)."""
    user = await chat.new_user()
    room, other = unique("order"), unique("other")
    client = await chat.connect(user)
    await client.call("join_room", room_name=other)
    await client.call("leave_room", room_id=other.lower())
    await client.call("join_room", room_name=room)
    kinds = [
        ({"room_id": room, "text": "ok"}, None),
        ({"room_id": other, "text": "not a member"}, "not_a_member"),
        ({"room_id": room, "text": "   "}, "empty_message"),
        ({"room_id": room}, "invalid_params"),
        ({"text": "to the current room"}, None),
    ]
    ids = [f"o{i}" for i in range(40)]
    for i, request_id in enumerate(ids):
        await client.raw_send(rpc_frame(request_id, "send_message", kinds[i % len(kinds)][0]))
    answers = [await client.next_frame(timeout=10) for _ in ids]

    assert [a["id"] for a in answers] == ids
    for i, answer in enumerate(answers):
        reason = kinds[i % len(kinds)][1]
        if reason is None:
            assert answer["result"]["room_id"] == room.lower(), answer
        else:
            assert answer["error"]["data"]["reason"] == reason, answer
    seqs = [a["result"]["seq"] for a in answers if "result" in a]
    assert len(seqs) == 16 and seqs == sorted(seqs)
