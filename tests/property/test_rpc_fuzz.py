"""The JSON-RPC parser answers anything with valid items and never raises."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from chat_core.protocol.rpc import METHODS, Call, ErrorReply, Parsed, encode_error, parse_frame

ERROR_CODES = {-32700, -32600, -32601, -32602}
FIELD_NAMES = sorted({name for t in METHODS.values() for name in t.__struct_fields__})

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=25,
)
valid_ids = st.none() | st.integers() | st.text(max_size=10)
param_values = (
    st.text(max_size=140)
    | st.integers(min_value=-5, max_value=10**10)
    | st.sampled_from(["user", "moderator", "admin", "info"])
    | json_values
)
params = st.dictionaries(st.sampled_from(FIELD_NAMES), param_values, max_size=4) | json_values
requests = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.just("2.0") | json_values,
        "method": st.sampled_from(sorted(METHODS)) | json_values,
        "params": params,
        "id": valid_ids | json_values,
        "type": json_values,
    },
)
request_with_id = st.fixed_dictionaries(
    {"id": valid_ids},
    optional={
        "jsonrpc": st.just("2.0") | json_values,
        "method": st.sampled_from(sorted(METHODS)) | st.text(max_size=10) | json_values,
        "params": params,
    },
)
# Mostly right, so that the fast path and the params checks are reached often.
well_formed = st.fixed_dictionaries(
    {"jsonrpc": st.just("2.0"), "id": valid_ids, "method": st.sampled_from(sorted(METHODS))},
    optional={"params": st.dictionaries(st.sampled_from(FIELD_NAMES), param_values, max_size=4)},
)
any_request_with_id = request_with_id | well_formed


def check_items(parsed: Parsed) -> None:
    """Every item is a valid call or an encodable error with a JSON-RPC code."""
    assert isinstance(parsed, Parsed)
    for item in parsed.items:
        if isinstance(item, Call):
            assert isinstance(item.params, METHODS[item.method])
            assert item.id is None or type(item.id) in (int, str)
            assert not (item.is_notification and item.id is not None)
        else:
            assert isinstance(item, ErrorReply)
            assert item.error["code"] in ERROR_CODES
            assert isinstance(item.error["message"], str)
            assert isinstance(item.error["data"]["reason"], str)
            assert item.id is None or type(item.id) in (int, str)
            encode_error(item.id, item.error)


@given(st.binary(max_size=300))
def test_any_bytes_get_valid_items(data: bytes) -> None:
    check_items(parse_frame(data))


@given(st.text(st.characters(exclude_categories=()), max_size=100))
def test_any_text_gets_valid_items(data: str) -> None:
    check_items(parse_frame(data))


@given(json_values)
def test_any_json_value_gets_valid_items(value: Any) -> None:
    check_items(parse_frame(msgspec.json.encode(value)))


@settings(max_examples=300)
@given(requests | st.lists(requests, max_size=5))
def test_request_like_frames_get_valid_items(value: Any) -> None:
    parsed = parse_frame(msgspec.json.encode(value))
    check_items(parsed)
    if isinstance(value, list) and value:
        assert parsed.is_batch
        assert len(parsed.items) <= len(value)


@settings(max_examples=300)
@given(any_request_with_id)
def test_a_request_with_an_id_gets_exactly_one_item_with_that_id(request: dict[str, Any]) -> None:
    parsed = parse_frame(msgspec.json.encode(request))
    assert not parsed.is_batch
    assert [item.id for item in parsed.items] == [request["id"]]


@settings(max_examples=200)
@given(st.lists(any_request_with_id, min_size=1, max_size=6))
def test_every_batch_member_with_an_id_gets_one_item_with_that_id(members: list[Any]) -> None:
    parsed = parse_frame(msgspec.json.encode(members))
    assert parsed.is_batch
    assert [item.id for item in parsed.items] == [member["id"] for member in members]


@given(requests)
def test_a_notification_gets_no_reply_or_a_null_id_invalid_request(request: dict[str, Any]) -> None:
    request.pop("id", None)
    parsed = parse_frame(msgspec.json.encode(request))
    for item in parsed.items:
        if isinstance(item, Call):
            assert item.is_notification
        else:
            assert item.id is None
            assert item.error["code"] == -32600
