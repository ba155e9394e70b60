"""The JSON-RPC codec: docs/protocol.md section 3 rules for parsing frames and encoding replies."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from chat_core.errors import Forbidden, NotFound
from chat_core.protocol.params import (
    BanUserParams,
    BroadcastAnnouncementParams,
    GetHistoryParams,
    JoinRoomParams,
    PingParams,
    SendMessageParams,
    SetRoleParams,
)
from chat_core.protocol.rpc import (
    METHODS,
    Call,
    ErrorReply,
    Parsed,
    encode_batch,
    encode_error,
    encode_notification,
    encode_result,
    error_from,
    error_object,
    parse_frame,
)


def frame(**members: Any) -> bytes:
    """A request frame with `"jsonrpc": "2.0"` unless given."""
    return json.dumps({"jsonrpc": "2.0", **members}).encode()


def only(parsed: Parsed) -> Call | ErrorReply:
    assert not parsed.is_batch
    assert len(parsed.items) == 1
    return parsed.items[0]


def only_call(data: str | bytes) -> Call:
    item = only(parse_frame(data))
    assert isinstance(item, Call), item
    return item


def only_error(data: str | bytes) -> ErrorReply:
    item = only(parse_frame(data))
    assert isinstance(item, ErrorReply), item
    return item


def assert_error(reply: ErrorReply, code: int, reason: str) -> None:
    assert reply.error["code"] == code
    assert isinstance(reply.error["message"], str) and reply.error["message"]
    assert reply.error["data"]["reason"] == reason


# --- the method catalogue ------------------------------------------------------------------


# The method names are held equal to the handler table and docs/protocol.md by
# tests/unit/test_catalogue.py.


@pytest.mark.parametrize("method", sorted(METHODS))
def test_params_structs_are_frozen(method: str) -> None:
    assert METHODS[method].__struct_config__.frozen


# --- single requests -----------------------------------------------------------------------


def test_single_request_decodes_to_a_call_with_typed_params() -> None:
    call = only_call(frame(id=1, method="join_room", params={"room_name": "General"}))
    assert call == Call(
        id=1, method="join_room", params=JoinRoomParams(room_name="General"), is_notification=False
    )


def test_text_frame_given_as_str_is_parsed() -> None:
    call = only_call(frame(id=1, method="ping").decode())
    assert call.params == PingParams()


def test_integer_id_is_kept_as_int() -> None:
    call = only_call(frame(id=7, method="ping"))
    assert call.id == 7 and type(call.id) is int


def test_string_id_is_kept_as_str() -> None:
    assert only_call(frame(id="abc", method="ping")).id == "abc"


def test_huge_integer_id_is_kept_exactly() -> None:
    big = 10**30
    call = only_call(frame(id=big, method="ping"))
    assert call.id == big
    assert json.loads(encode_result(call.id, {}))["id"] == big


def test_null_id_is_a_request_that_needs_a_response() -> None:
    call = only_call(frame(id=None, method="ping"))
    assert call.id is None and not call.is_notification


def test_request_without_id_is_a_notification() -> None:
    call = only_call(frame(method="ping"))
    assert call.is_notification and call.id is None


def test_omitted_params_mean_an_empty_object() -> None:
    call = only_call(frame(id=1, method="get_history", params={"room_id": "general"}))
    assert call.params == GetHistoryParams(room_id="general", before_seq=None, limit=50)
    assert only_call(frame(id=2, method="whoami")).method == "whoami"


def test_extra_top_level_members_are_ignored() -> None:
    call = only_call(frame(id=1, method="ping", type="request", extra={"x": [1, 2]}))
    assert call.method == "ping"


def test_unknown_params_fields_are_ignored() -> None:
    call = only_call(frame(id=1, method="join_room", params={"room_name": "a", "colour": "red"}))
    assert call.params == JoinRoomParams(room_name="a")


def test_members_may_come_in_any_order() -> None:
    data = b'{"params":{"text":"hi"},"method":"send_message","id":"x","jsonrpc":"2.0"}'
    assert only_call(data).params == SendMessageParams(text="hi")


# --- invalid JSON and invalid requests -----------------------------------------------------


@pytest.mark.parametrize("data", [b"{bad", b"", b"   ", b'{"jsonrpc": "2.0"', b"[1,", "{\u00e9}"])
def test_invalid_json_is_a_parse_error_with_null_id(data: str | bytes) -> None:
    reply = only_error(data)
    assert reply.id is None
    assert_error(reply, -32700, "parse_error")


def test_syntax_error_after_a_type_error_is_still_a_parse_error() -> None:
    reply = only_error(b'{"jsonrpc": 1, "id": 5, "method": "ping"')
    assert_error(reply, -32700, "parse_error")


@pytest.mark.parametrize("data", [b"1", b'"ping"', b"null", b"true", b"1e400"])
def test_a_scalar_frame_is_an_invalid_request(data: bytes) -> None:
    reply = only_error(data)
    assert reply.id is None
    assert_error(reply, -32600, "invalid_request")


@pytest.mark.parametrize("version", [None, "1.0", 2.0, "2"])
def test_missing_or_wrong_jsonrpc_version_is_invalid_request_with_the_id(version: Any) -> None:
    members: dict[str, Any] = {"id": 4, "method": "ping"}
    if version is not None:
        members["jsonrpc"] = version
    reply = only_error(json.dumps(members))
    assert reply.id == 4
    assert_error(reply, -32600, "invalid_request")


@pytest.mark.parametrize("method", [None, 1, ["ping"], {"name": "ping"}])
def test_non_string_method_is_invalid_request_with_the_id(method: Any) -> None:
    members: dict[str, Any] = {"id": "r1"}
    if method is not None:
        members["method"] = method
    reply = only_error(frame(**members))
    assert reply.id == "r1"
    assert_error(reply, -32600, "invalid_request")


@pytest.mark.parametrize("bad_id", [1.5, 1.0, True, False, {"a": 1}, [1]])
def test_id_that_is_not_string_integer_or_null_is_invalid_request_with_null_id(
    bad_id: Any,
) -> None:
    reply = only_error(frame(id=bad_id, method="ping"))
    assert reply.id is None
    assert_error(reply, -32600, "invalid_request")


def test_invalid_request_without_id_is_answered_with_null_id() -> None:
    reply = only_error(b'{"method": "ping"}')
    assert reply.id is None
    assert_error(reply, -32600, "invalid_request")


# --- unknown methods and invalid params ----------------------------------------------------


def test_unknown_method_is_method_not_found_with_the_id() -> None:
    reply = only_error(frame(id=9, method="fly"))
    assert reply.id == 9
    assert_error(reply, -32601, "method_not_found")
    assert "fly" in reply.error["message"]


def test_unknown_method_notification_gets_no_reply() -> None:
    assert parse_frame(frame(method="fly")) == Parsed(is_batch=False, items=[])


def test_params_as_an_array_are_invalid_params() -> None:
    reply = only_error(frame(id=1, method="join_room", params=["general"]))
    assert reply.id == 1
    assert_error(reply, -32602, "invalid_params")


@pytest.mark.parametrize("params", [None, "general", 3])
def test_params_that_are_not_an_object_are_invalid_params(params: Any) -> None:
    assert_error(only_error(frame(id=1, method="ping", params=params)), -32602, "invalid_params")


def test_params_of_the_wrong_type_name_the_field() -> None:
    reply = only_error(frame(id=1, method="join_room", params={"room_name": 5}))
    assert_error(reply, -32602, "invalid_params")
    assert "room_name" in reply.error["message"]
    assert reply.error["data"]["field"] == "room_name"


def test_missing_required_param_names_the_field() -> None:
    reply = only_error(frame(id="j", method="join_room"))
    assert reply.id == "j"
    assert_error(reply, -32602, "invalid_params")
    assert "room_name" in reply.error["message"]
    assert reply.error["data"]["field"] == "room_name"


def test_invalid_params_notification_gets_no_reply() -> None:
    assert parse_frame(frame(method="join_room", params={"room_name": 5})).items == []


@pytest.mark.parametrize(
    ("method", "params", "field"),
    [
        ("send_message", {"text": "hi", "client_msg_id": ""}, "client_msg_id"),
        ("send_message", {"text": "hi", "client_msg_id": "x" * 129}, "client_msg_id"),
        ("get_history", {"room_id": "a", "limit": 0}, "limit"),
        ("get_history", {"room_id": "a", "before_seq": 2**63}, "before_seq"),
        ("get_history", {"room_id": "a", "before_seq": 1.5}, "before_seq"),
        ("kick_user", {"target_username": "bob", "reason": "x" * 501}, "reason"),
        ("ban_user", {"target_username": "bob", "duration_seconds": 0}, "duration_seconds"),
        ("ban_user", {"target_username": "bob", "duration_seconds": 10**20}, "duration_seconds"),
        ("set_role", {"target_username": "bob", "role": "owner"}, "role"),
        ("send_message", {"text": None}, "text"),
    ],
)
def test_obvious_bounds_are_checked_at_decode_time(
    method: str, params: dict[str, Any], field: str
) -> None:
    reply = only_error(frame(id=1, method=method, params=params))
    assert_error(reply, -32602, "invalid_params")
    assert reply.error["data"]["field"] == field


def test_bounds_accept_their_limits() -> None:
    call = only_call(
        frame(id=1, method="send_message", params={"text": "x", "client_msg_id": "c" * 128})
    )
    assert isinstance(call.params, SendMessageParams) and call.params.client_msg_id == "c" * 128
    ban = only_call(
        frame(id=2, method="ban_user", params={"target_username": "bob", "duration_seconds": 1})
    )
    assert ban.params == BanUserParams(target_username="bob", duration_seconds=1)
    role = only_call(
        frame(id=3, method="set_role", params={"target_username": "b", "role": "admin"})
    )
    assert role.params == SetRoleParams(target_username="b", role="admin")


def test_configured_domain_rules_are_left_to_the_decider() -> None:
    announcement = only_call(
        frame(id=1, method="broadcast_announcement", params={"message": "", "level": "loud"})
    )
    assert announcement.params == BroadcastAnnouncementParams(message="", level="loud")
    only_call(frame(id=2, method="send_message", params={"text": "x" * 100_000}))
    only_call(frame(id=3, method="join_room", params={"room_name": "not a valid name!"}))


def test_announcement_level_defaults_to_info() -> None:
    call = only_call(frame(id=1, method="broadcast_announcement", params={"message": "hi"}))
    assert call.params == BroadcastAnnouncementParams(message="hi", level="info")


# --- batches -------------------------------------------------------------------------------


def test_empty_batch_is_a_single_invalid_request() -> None:
    parsed = parse_frame(b"[]")
    assert not parsed.is_batch
    reply = only(parsed)
    assert isinstance(reply, ErrorReply) and reply.id is None
    assert_error(reply, -32600, "invalid_request")


def test_batch_gets_one_item_per_member_in_order() -> None:
    members = [
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "id": "b", "method": "fly"},
        {"jsonrpc": "2.0", "id": 3, "method": "join_room", "params": {}},
        {"jsonrpc": "2.0", "id": 4, "method": "whoami"},
    ]
    parsed = parse_frame(json.dumps(members))
    assert parsed.is_batch
    assert [item.id for item in parsed.items] == [1, "b", 3, 4]
    kinds = [type(item) for item in parsed.items]
    assert kinds == [Call, ErrorReply, ErrorReply, Call]


def test_non_object_batch_members_are_invalid_requests() -> None:
    parsed = parse_frame(b"[1, 2, 3]")
    assert parsed.is_batch and len(parsed.items) == 3
    for item in parsed.items:
        assert isinstance(item, ErrorReply) and item.id is None
        assert_error(item, -32600, "invalid_request")


def test_batch_of_notifications_needs_no_response() -> None:
    members = [
        {"jsonrpc": "2.0", "method": "start_typing"},
        {"jsonrpc": "2.0", "method": "fly"},
        {"jsonrpc": "2.0", "method": "join_room", "params": {"room_name": 1}},
    ]
    parsed = parse_frame(json.dumps(members))
    assert parsed.is_batch
    assert len(parsed.items) == 1
    call = parsed.items[0]
    assert isinstance(call, Call) and call.is_notification


def test_nested_batch_member_is_an_invalid_request() -> None:
    parsed = parse_frame(b'[[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]]')
    item = parsed.items[0]
    assert isinstance(item, ErrorReply)
    assert_error(item, -32600, "invalid_request")


# --- robustness ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b"[" * 100_000,
        b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":' + b"[" * 100_000 + b"]" * 100_000,
        b"{" * 50_000,
    ],
)
def test_deep_nesting_is_a_clean_error(data: bytes) -> None:
    parsed = parse_frame(data)
    assert len(parsed.items) == 1
    assert isinstance(parsed.items[0], ErrorReply)


def test_huge_numbers_are_clean_errors() -> None:
    assert only_error(frame(id=1, method="ping") + b"9" * 10_000).error["code"] == -32700
    reply = only_error(b'{"jsonrpc":"2.0","id":1e999,"method":"ping"}')
    assert_error(reply, -32600, "invalid_request")
    # Beyond what Python converts from text (4300 digits), msgspec refuses the number.
    reply = only_error(frame(id=1, method="ping").replace(b'"id": 1', b'"id": ' + b"9" * 5_000))
    assert reply.id is None
    assert_error(reply, -32600, "invalid_request")
    digits = "9" * 5_000
    params = f'{{"room_id":"a","limit":{digits}}}'
    data = f'{{"jsonrpc":"2.0","id":1,"method":"get_history","params":{params}}}'
    reply = only_error(data)
    assert_error(reply, -32602, "invalid_params")
    assert reply.error["data"]["field"] == "limit"


def test_long_integer_id_round_trips() -> None:
    big = int("9" * 4_000)
    call = only_call(frame(id=1, method="ping").replace(b'"id": 1', b'"id": ' + str(big).encode()))
    assert call.id == big
    assert msgspec.json.decode(encode_result(call.id, {}))["id"] == big


@pytest.mark.parametrize(
    "data",
    [
        b'{"jsonrpc":"2.0","id":1,"method":"send_message","params":{"text":"\\ud800"}}',
        b'{"jsonrpc":"2.0","id":"\\udc00","method":"ping"}',
        '{"jsonrpc":"2.0","id":1,"method":"send_message","params":{"text":"\ud800"}}',
        b'{"jsonrpc":"2.0","id":1,"method":"ping","x":"\xff"}',
    ],
)
def test_lone_surrogates_and_bad_utf8_never_escape_as_exceptions(data: str | bytes) -> None:
    parsed = parse_frame(data)
    for item in parsed.items:
        if isinstance(item, ErrorReply):
            encode_error(item.id, item.error)


def test_escaped_surrogate_pair_is_a_valid_character() -> None:
    data = b'{"jsonrpc":"2.0","id":1,"method":"send_message","params":{"text":"\\ud83d\\ude00"}}'
    call = only_call(data)
    assert isinstance(call.params, SendMessageParams) and call.params.text == "\U0001f600"


# --- encoding ------------------------------------------------------------------------------


class _Pong(msgspec.Struct, frozen=True, kw_only=True):
    pong: bool
    at: datetime


def test_result_is_encoded_with_jsonrpc_and_id() -> None:
    assert json.loads(encode_result("a", {"pong": True})) == {
        "jsonrpc": "2.0",
        "id": "a",
        "result": {"pong": True},
    }


def test_struct_result_and_datetimes_encode_as_rfc3339_utc() -> None:
    at = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    decoded = json.loads(encode_result(1, _Pong(pong=True, at=at)))
    assert decoded["result"] == {"pong": True, "at": "2024-05-01T12:30:00Z"}


def test_error_is_encoded_with_null_id_where_unknown() -> None:
    error = error_object(-32600, "Invalid request", "invalid_request")
    assert json.loads(encode_error(None, error)) == {"jsonrpc": "2.0", "id": None, "error": error}


def test_notification_has_no_id() -> None:
    decoded = json.loads(encode_notification("user_joined", {"seq": 3, "room_id": "general"}))
    assert decoded == {
        "jsonrpc": "2.0",
        "method": "user_joined",
        "params": {"seq": 3, "room_id": "general"},
    }


def test_batch_joins_encoded_responses_without_reencoding() -> None:
    parts = [encode_result(1, {}), encode_error(2, error_object(-32601, "no", "method_not_found"))]
    batch = encode_batch(parts)
    assert batch == b"[" + parts[0] + b"," + parts[1] + b"]"
    assert [r["id"] for r in json.loads(batch)] == [1, 2]


def test_error_object_has_code_message_and_data_with_reason() -> None:
    assert error_object(-32029, "Slow down", "rate_limited", retry_after_ms=250) == {
        "code": -32029,
        "message": "Slow down",
        "data": {"reason": "rate_limited", "retry_after_ms": 250},
    }


def test_error_from_a_chat_error_carries_its_code_and_reason() -> None:
    assert error_from(Forbidden("Moderators only")) == {
        "code": -32002,
        "message": "Moderators only",
        "data": {"reason": "insufficient_role"},
    }
    assert error_from(NotFound("No such room", "room_not_found"))["data"] == {
        "reason": "room_not_found"
    }


def test_parse_errors_encode() -> None:
    for data in (b"{", b"[]", b"[1]", frame(id=1, method="fly")):
        for item in parse_frame(data).items:
            assert isinstance(item, ErrorReply)
            assert json.loads(encode_error(item.id, item.error))["error"] == item.error


def test_a_batch_over_the_limit_is_one_invalid_request_and_its_members_are_not_read() -> None:
    frame = "[" + ",".join(["1"] * 51) + "]"
    parsed = parse_frame(frame, max_batch=50)
    assert not parsed.is_batch and parsed.members == 1
    [item] = parsed.items
    assert isinstance(item, ErrorReply) and item.id is None
    assert (item.error["code"], item.error["data"]["reason"]) == (-32600, "batch_too_large")
    at_limit = parse_frame("[" + ",".join(["1"] * 50) + "]", max_batch=50)
    assert at_limit.is_batch and len(at_limit.items) == 50


def test_members_counts_every_request_of_a_frame_answered_or_not() -> None:
    notify = '{"jsonrpc": "2.0", "method": "no_such_method"}'
    ping = '{"jsonrpc": "2.0", "id": 1, "method": "ping"}'
    parsed = parse_frame(f"[{notify},{notify},{ping},7]")
    assert parsed.members == 4 and len(parsed.items) == 2
    assert parse_frame(ping).members == 1
    assert parse_frame("not json").members == 1
