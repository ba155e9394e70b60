"""Hostile input: hypothesis-driven frames over a real socket, checked against JSON-RPC's rules.

Each example is one text frame: a request or a batch built with wrong types in every field of
every method, ids of every JSON type, unknown methods, unicode edge cases (lone surrogates
escaped as `\\ud800`, RTL marks, zero-width characters, 10k combining marks), deep or huge
JSON, batches around `server.max_batch_requests` (past it: one `batch_too_large`), batches of
history pages (a few bytes asking for up to 200 messages each), or arbitrary text. After it the
fuzzing connection sends a `ping`, which must answer (the connection stays usable) and which
marks the end of the frame's answers: every answer before it is checked against what the frame
deserves (exactly one response per id'd request, none per valid notification, `-32600` with id
null for a member that is not a request, codes from the protocol's table, never -32603 for bad
input). A well-behaved client on another connection pings between the examples and must answer
quickly; the server must log no traceback.

Lone surrogates (`"\\ud800"` in the JSON text) are not Unicode scalar values; the server's
JSON decoder refuses them, so such a frame is a parse error (-32700, id null).

Sizes: RELIABILITY_FUZZ_EXAMPLES (default 1500).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import GENEROUS_LIMITS, Client, Harness, open_socket
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_kit import ServerProcess, size, stop_and_check
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

ROOM = "fuzzroom"
MAX_FRAME_BYTES = 65536
MAX_BATCH = 50  # server.max_batch_requests
VALID_CODES = {-32700, -32600, -32601, -32602, -32001, -32002, -32003, -32004, -32005, -32006}
VALID_CODES |= {-32029}
METHOD_FIELDS: dict[str, list[str]] = {
    "join_room": ["room_name"],
    "leave_room": ["room_id"],
    "send_message": ["text", "room_id", "client_msg_id"],
    "list_rooms": [],
    "list_members": ["room_id"],
    "get_history": ["room_id", "before_seq", "limit"],
    "kick_user": ["target_username", "reason", "room_id"],
    "ban_user": ["target_username", "reason", "duration_seconds"],
    "unban_user": ["target_username"],
    "set_role": ["target_username", "role"],
    "broadcast_announcement": ["message", "level"],
    "delete_room": ["room_id"],
    "start_typing": ["room_id"],
    "stop_typing": ["room_id"],
    "whoami": [],
    "ping": [],
}
EDGE_TEXTS = [
    "\ud800",
    "a\udfffb",
    "\u200f\u202eevil\u202c",
    "\u200b\u200c\u200d\ufeff",
    "e" + "\u0301" * 10_000,
    "a" + "\u0301" * 999,
    "\U0001f600" * 50,
    "\x00\x01\x1f",
    "\u2028\u2029",
    " ",
    "",
    "x" * 5000,
    "\ufffd",
    "\uff21\uff2c\uff29\uff23\uff25",
]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(EDGE_TEXTS)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
good_values: dict[str, st.SearchStrategy[Any]] = {
    "room_name": st.sampled_from([ROOM, "general", "x", "-bad", "a" * 60]),
    "room_id": st.sampled_from([ROOM, "general", "nowhere", ""]),
    "text": st.sampled_from(EDGE_TEXTS) | st.text(max_size=50),
    "client_msg_id": st.text(min_size=1, max_size=20) | st.just("y" * 200),
    "before_seq": st.integers(min_value=-5, max_value=2**64),
    "limit": st.integers(min_value=-5, max_value=10_000),
    "target_username": st.sampled_from(["admin", "nobody_here", "", "moderator"]),
    "reason": st.text(max_size=20) | st.just("r" * 600),
    "duration_seconds": st.integers(min_value=-1, max_value=2**63),
    "role": st.sampled_from(["user", "moderator", "admin", "god"]),
    "message": st.sampled_from(EDGE_TEXTS),
    "level": st.sampled_from(["info", "warning", "error", "panic"]),
}
ids = (
    st.text(max_size=12)
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)


@st.composite
def params_for(draw: st.DrawFn, method: str) -> Any:
    shape = draw(st.sampled_from(["fields", "fields", "fields", "omit", "null", "array", "any"]))
    if shape == "omit":
        return _OMIT
    if shape == "null":
        return None
    if shape == "array":
        return draw(st.lists(json_values, max_size=3))
    if shape == "any":
        return draw(json_values)
    params: dict[str, Any] = {}
    for name in METHOD_FIELDS.get(method, []):
        choice = draw(st.sampled_from(["good", "good", "wrong", "omit"]))
        if choice == "good":
            params[name] = draw(good_values[name])
        elif choice == "wrong":
            params[name] = draw(json_values)
    if draw(st.booleans()):
        params[draw(st.text(max_size=6))] = draw(json_values)
    return params


_OMIT = object()


@st.composite
def requests(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["request"] * 6 + ["not_object", "junk_dict"]))
    if kind == "not_object":
        return draw(json_values)
    if kind == "junk_dict":
        return draw(st.dictionaries(st.text(max_size=8), json_values, max_size=5))
    method = draw(st.sampled_from(sorted(METHOD_FIELDS)) | st.text(max_size=10) | json_scalars)
    message: dict[str, Any] = {}
    version = draw(st.sampled_from(["2.0", "2.0", "2.0", "2.0", "1.0", None, 2.0, "omit"]))
    if version != "omit":
        message["jsonrpc"] = version
    if draw(st.integers(0, 4)) > 0:
        message["id"] = draw(ids)
    message["method"] = method
    params = draw(params_for(method if isinstance(method, str) else ""))
    if params is not _OMIT:
        message["params"] = params
    if draw(st.integers(0, 5)) == 0:
        message["type"] = "extra"
    return message


@st.composite
def frames(draw: st.DrawFn) -> tuple[str, Any]:
    """(the frame's text, the value it encodes, or a marker of raw text)."""
    kinds = ["single"] * 4 + ["batch"] * 3 + ["raw", "bytes", "deep", "huge", "wide", "history"]
    kind = draw(st.sampled_from(kinds))
    if kind == "single":
        value = draw(requests())
    elif kind == "batch":
        value = draw(st.lists(requests(), max_size=6))
    elif kind == "wide":
        # Around server.max_batch_requests: past it, one -32600 batch_too_large for all. Kept
        # under the frame limit (a multi-megabyte frame is the "huge" kind's business).
        count = draw(st.integers(MAX_BATCH - 3, MAX_BATCH + 3))
        member = draw(requests())
        if len(json.dumps(member)) * count > MAX_FRAME_BYTES // 2:
            member = {"jsonrpc": "2.0", "id": "wide", "method": "ping"}
        value = [member] * count
    elif kind == "history":
        # Amplification: a few bytes a member, a page of up to 200 messages an answer.
        limit = draw(st.sampled_from([1, 200, 10_000]))
        value = [
            {
                "jsonrpc": "2.0",
                "id": i,
                "method": "get_history",
                "params": {"room_id": ROOM, "limit": limit},
            }
            for i in range(draw(st.integers(1, MAX_BATCH)))
        ]
    elif kind == "raw":
        return draw(st.text(max_size=200)), RAW
    elif kind == "bytes":
        return draw(st.binary(max_size=200)).decode("latin-1"), RAW
    elif kind == "deep":
        depth = draw(st.integers(1, 3000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        return opener * depth + "1" + closer * depth, ("deep", depth)
    else:
        value = {
            "jsonrpc": "2.0",
            "id": "huge",
            "method": "send_message",
            "params": {"room_id": ROOM, "text": "h" * draw(st.integers(1000, 60_000))},
        }
    ascii_only = draw(st.booleans()) or _has_surrogate(value)
    return json.dumps(value, ensure_ascii=ascii_only), value


RAW = object()


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any(0xD800 <= ord(ch) <= 0xDFFF for ch in value)
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    return False


# --- the oracle ---------------------------------------------------------------------------------

NULL_ERROR = ("null", -32600)


def _member_expectation(member: Any) -> Any:
    """What one request object deserves: None (no answer), NULL_ERROR, or ("id", id)."""
    if not isinstance(member, dict):
        return NULL_ERROR
    if "id" in member:
        request_id = member["id"]
        if isinstance(request_id, bool) or not isinstance(request_id, str | int | None):
            return NULL_ERROR
        return ("id", request_id)
    if member.get("jsonrpc") != "2.0" or not isinstance(member.get("method"), str):
        return NULL_ERROR
    return None


def _expectation(text: str, value: Any) -> tuple[bool | None, list[Any]]:
    """(is the answer a batch array (None: no answer frame at all), the expected answers).

    Each expected answer is NULL_ERROR, ("id", id) or ("parse", None).
    """
    if isinstance(value, tuple) and value[0] == "deep":
        depth = value[1]
        if depth >= 1100:
            return False, [("parse", None)]
        if depth <= 900:
            # `[[...1...]]` is a batch of one member that is no object, `{"a": ...}` an object
            # that is no request: each deserves one -32600 with id null.
            return text.startswith("["), [NULL_ERROR]
        else:
            return False, [("deep", None)]
    elif value is RAW:
        try:
            value = json.loads(text, parse_constant=_no_constants)
        except (ValueError, RecursionError):
            return False, [("parse", None)]
    if _has_surrogate(value):
        return False, [("parse", None)]
    if isinstance(value, list):
        if not value:
            return False, [NULL_ERROR]
        if len(value) > MAX_BATCH:
            return False, [("too_large", None)]
        answers = [a for a in map(_member_expectation, value) if a is not None]
        return (True if answers else None), answers
    answer = _member_expectation(value)
    return (None if answer is None else False), [] if answer is None else [answer]


def _no_constants(name: str) -> Any:
    raise ValueError(name)


def _check_response(response: Any) -> None:
    assert isinstance(response, dict), response
    assert response.get("jsonrpc") == "2.0", response
    assert ("result" in response) != ("error" in response), response
    assert "id" in response, response
    if "result" in response:
        assert isinstance(response["result"], dict), response
        return
    error = response["error"]
    assert set(error) >= {"code", "message", "data"}, response
    assert error["code"] in VALID_CODES, response
    assert isinstance(error["data"].get("reason"), str), response


def _check_answers(text: str, value: Any, answers: list[Any]) -> None:
    batch, expected = _expectation(text, value)
    if batch is None:
        assert answers == [], (text[:300], answers)
        return
    assert len(answers) == 1, (text[:300], answers)
    answer = answers[0]
    # Near the nesting limit: parsed (a batch, or an object that is no request) or not.
    if expected[0][0] == "deep" and (isinstance(answer, list) or answer["error"]["code"] == -32600):
        batch, expected = isinstance(answer, list), [NULL_ERROR]
    responses = answer if batch else [answer]
    assert isinstance(responses, list), (text[:300], answer)
    assert len(responses) == len(expected), (text[:300], responses, expected)
    for response in responses:
        _check_response(response)
    if batch is False and expected[0][0] == "too_large":
        (response,) = responses
        assert response["id"] is None, response
        assert response["error"]["data"]["reason"] == "batch_too_large", response
        return
    if batch is False and expected[0][0] in ("parse", "deep"):
        (response,) = responses
        assert response["id"] is None, response
        codes = {-32700} if expected[0][0] == "parse" else {-32700, -32600}
        assert response["error"]["code"] in codes, (text[:200], response)
        return
    # The ids answered are exactly the ids expected, as a multiset (a member that is not a
    # valid request counts as id null), and every such member got a -32600 of its own.
    wanted = sorted(json.dumps(e[1] if e[0] == "id" else None) for e in expected)
    got = sorted(json.dumps(r["id"]) for r in responses)
    assert wanted == got, (text[:300], responses, expected)
    null_invalids = sum(
        1 for r in responses if r["id"] is None and r.get("error", {}).get("code") == -32600
    )
    assert null_invalids >= expected.count(NULL_ERROR), (text[:300], responses, expected)


# --- the test -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    process = ServerProcess(tmp_path_factory.mktemp("fuzz") / "data", dict(GENEROUS_LIMITS))
    process.start()
    try:
        yield process
    finally:
        stop_and_check(process)


class Fuzzing:
    """The fuzzing socket and the bystander, on one event loop of their own."""

    def __init__(self, server: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = server
        self.frames = 0
        self.oversized = 0
        self.token = ""
        self.worst_bystander_ms = 0.0
        self.harness: Harness
        self.socket: ClientConnection
        self.bystander: Client

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, 30))

    async def open(self) -> None:
        self.harness = self.server.harness()
        user = await self.harness.new_user("fuzzer")
        # An admin, so every method is exercised past the role check.
        admin = await self.harness.admin_client()
        await admin.call("set_role", target_username=user.username, role="admin")
        bystander = await self.harness.new_user("bystander")
        self.token = user.token
        await self._connect()
        await self._ask(
            json.dumps(
                {"jsonrpc": "2.0", "id": 1, "method": "join_room", "params": {"room_name": ROOM}}
            )
        )
        self.bystander = await self.harness.connect(bystander)
        await self.bystander.call("join_room", room_name=ROOM)

    async def _ask(self, text: str) -> list[Any]:
        """Send a frame, then a ping; the frames answered before the ping's answer."""
        await self.socket.send(text)
        ping_id = "ping-" + uuid.uuid4().hex
        await self.socket.send(json.dumps({"jsonrpc": "2.0", "id": ping_id, "method": "ping"}))
        answers: list[Any] = []
        while True:
            message = json.loads(await self.socket.recv())
            if isinstance(message, dict) and message.get("id") == ping_id:
                assert message["result"]["pong"] is True, message
                return answers
            if isinstance(message, dict) and "method" in message and "id" not in message:
                continue  # a notification
            answers.append(message)

    async def _connect(self) -> None:
        self.socket = await open_socket(self.harness.ws_url, self.token, max_size=None)
        first = json.loads(await self.socket.recv())
        assert first["method"] == "connection_established"

    async def one(self, text: str, value: Any) -> None:
        if len(text.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES:
            # Over server.max_frame_bytes: the protocol's answer is a close with 1009.
            await self.socket.send(text)
            with pytest.raises(ConnectionClosed) as closed:
                await self.socket.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009, closed.value
            self.frames += 1
            self.oversized += 1
            await self._connect()
            return
        answers = await self._ask(text)
        self.frames += 1
        _check_answers(text, value, answers)
        started = time.monotonic()
        result = await self.bystander.call("ping")
        assert result["pong"] is True
        self.worst_bystander_ms = max(self.worst_bystander_ms, (time.monotonic() - started) * 1e3)

    async def close(self) -> None:
        await self.socket.close()
        await self.harness.aclose()


@pytest.fixture(scope="module")
def fuzzing(server: Any) -> Iterator[Fuzzing]:
    fuzz = Fuzzing(server)
    fuzz.run(fuzz.open())
    try:
        yield fuzz
    finally:
        fuzz.run(fuzz.close())
        fuzz.loop.close()


@settings(
    max_examples=size("fuzz_examples", 1500),
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
    database=None,
)
@given(frame=frames())
def test_every_frame_gets_the_protocols_answer(fuzzing: Fuzzing, frame: tuple[str, Any]) -> None:
    text, value = frame
    fuzzing.run(fuzzing.one(text, value))


def test_fixed_hostile_frames(fuzzing: Fuzzing, server: Any) -> None:
    """The cases a random search could miss, each once; then the tally."""
    # The admin fuzzer may have deleted the room: make sure both are in it again.
    fuzzing.run(fuzzing.bystander.call("join_room", room_name=ROOM))
    join = {"jsonrpc": "2.0", "id": "j", "method": "join_room", "params": {"room_name": ROOM}}
    fuzzing.run(fuzzing.one(json.dumps(join), join))
    cases: list[tuple[str, Any]] = []
    for depth in (999, 1001, 1500, 5000, 20_000):
        text = "[" * depth + "]" * depth
        cases.append((text, ("deep", depth)))
    for text in EDGE_TEXTS:
        value = {
            "jsonrpc": "2.0",
            "id": "edge",
            "method": "send_message",
            "params": {"room_id": ROOM, "text": text, "client_msg_id": text[:100] or "c"},
        }
        cases.append((json.dumps(value), value))
        member = {"jsonrpc": "2.0", "id": text[:50], "method": "ping"}
        batch = [member, 1, {"jsonrpc": "2.0", "method": "nope"}, {"id": 2.5}, {}]
        cases.append((json.dumps(batch), batch))
    cases.append(("[]", []))
    cases.append(("[[]]", [[]]))
    cases.append(
        (
            '{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": null}',
            {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": None},
        )
    )
    cases.append(('{"jsonrpc":"2.0","id":1,"method":"ping"} trailing', RAW))
    cases.append(('{"jsonrpc":"2.0","id":NaN,"method":"ping"}', RAW))
    cases.append(("\ufeff{}", RAW))
    # Malformed text that starts as a valid scalar (found by this fuzzer: it was -32600).
    for text in ("0:", '"a"b', "1]", "1e400", "1e400x", "-1e999", "true false", "nul"):
        cases.append((text, RAW))
    for text, value in cases:
        fuzzing.run(fuzzing.one(text, value))
    # The history holding every accepted edge-case text is still readable, by a joiner too.
    history = fuzzing.run(fuzzing.bystander.call("get_history", room_id=ROOM, limit=200))
    texts = {message["text"] for message in history["messages"]}
    # 10k combining marks are too long a message (code points); 999 of them are stored intact.
    assert "e" + "\u0301" * 10_000 not in texts
    assert "a" + "\u0301" * 999 in texts
    assert "\u200f\u202eevil\u202c" in texts
    print(
        f"\nhostile input: frames fuzzed={fuzzing.frames} (oversized, closed 1009:"
        f" {fuzzing.oversized})"
        f" worst bystander ping={fuzzing.worst_bystander_ms:.0f} ms"
    )
    assert fuzzing.frames >= len(cases)
    assert fuzzing.worst_bystander_ms < 2000
    assert not server.tracebacks(), server.log_text()


async def test_binary_and_invalid_utf8_frames_close_only_their_own_socket(server: Any) -> None:
    """A binary frame closes with 1003 and a text frame that is not UTF-8 with 1007 (the
    WebSocket layer's answer); the server and other connections carry on."""
    async with server.harness() as chat:
        user = await chat.new_user("bin")
        bystander = await chat.connect(await chat.new_user("calm"))
        for payload, text, code in [
            (b"\x00\x01binary", False, 1003),
            (b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "x": "\xff\xfe"}', True, 1007),
            (b"\xed\xa0\x80", True, 1007),  # a surrogate encoded as if it were UTF-8
        ]:
            socket = await open_socket(chat.ws_url, user.token)
            assert json.loads(await socket.recv())["method"] == "connection_established"
            await socket.send(payload, text=text)
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(10):
                    while True:
                        await socket.recv()
            assert closed.value.rcvd is not None, closed.value
            assert closed.value.rcvd.code == code, (payload, closed.value)
            assert (await bystander.call("ping"))["pong"] is True
