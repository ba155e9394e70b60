"""The WebSocket handshake, the first frame, frame kinds and sizes (docs/protocol.md section 2)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from helpers import GENEROUS_LIMITS, Client, Harness, handshake_outcome, parse_time

SECRET = "e2e-handshake-secret-" + "s" * 32
MAX_FRAME = 8192

REFUSED = {("http", 401), ("close", 4401)}
REFUSED_BANNED = {("http", 403), ("close", 4403)}


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    return {
        "CHAT__AUTH__JWT_SECRET": SECRET,
        "CHAT__SERVER__MAX_FRAME_BYTES": str(MAX_FRAME),
        **GENEROUS_LIMITS,
    }


def mint(sub: str, key: str = SECRET, **changes: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "role": "user",
        "iat": now - 10,
        "exp": now + 3600,
        "jti": uuid.uuid4().hex,
    }
    claims.update(changes)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm="HS256")


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# --- refusals ----------------------------------------------------------------------------------


async def test_handshake_without_a_token_is_refused(chat: Harness) -> None:
    assert await handshake_outcome(chat.ws_url, None) in REFUSED


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "Bearer", "x" * 500])
async def test_handshake_with_a_malformed_token_is_refused(chat: Harness, token: str) -> None:
    assert await handshake_outcome(chat.ws_url, token) in REFUSED
    assert await handshake_outcome(chat.ws_url, token, via="query") in REFUSED


async def test_handshake_with_a_token_signed_by_another_key_is_refused(chat: Harness) -> None:
    user = await chat.new_user("forged")
    forged = mint(user.username, key="another-secret-entirely-" + "k" * 32)
    assert await handshake_outcome(chat.ws_url, forged) in REFUSED


async def test_handshake_with_an_unsigned_alg_none_token_is_refused(chat: Harness) -> None:
    user = await chat.new_user("none")
    now = int(time.time())
    claims = {"sub": user.username, "role": "admin", "iat": now - 10, "exp": now + 3600}
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64({**claims, 'jti': 'x'})}."
    assert await handshake_outcome(chat.ws_url, unsigned) in REFUSED


async def test_handshake_with_a_tampered_token_is_refused(chat: Harness) -> None:
    user = await chat.new_user("tamper")
    header, payload, signature = user.token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    tampered = f"{header}.{b64(claims)}.{signature}"
    assert await handshake_outcome(chat.ws_url, tampered) in REFUSED


async def test_handshake_with_an_expired_token_is_refused(chat: Harness) -> None:
    user = await chat.new_user("expired")
    now = int(time.time())
    expired = mint(user.username, iat=now - 7200, exp=now - 60)
    assert await handshake_outcome(chat.ws_url, expired) in REFUSED


async def test_a_token_minted_with_the_configured_secret_is_accepted(chat: Harness) -> None:
    user = await chat.new_user("minted")
    outcome = await handshake_outcome(chat.ws_url, mint(user.username))
    assert outcome[0] == "frame"
    assert outcome[1]["params"]["username"] == user.username


async def test_handshake_with_a_token_missing_a_required_claim_is_refused(chat: Harness) -> None:
    user = await chat.new_user("noexp")
    assert await handshake_outcome(chat.ws_url, mint(user.username, exp=None)) in REFUSED
    assert await handshake_outcome(chat.ws_url, mint(user.username, jti=None)) in REFUSED


async def test_handshake_for_an_account_that_does_not_exist_is_refused(chat: Harness) -> None:
    assert await handshake_outcome(chat.ws_url, mint("nobody_" + uuid.uuid4().hex[:8])) in REFUSED


async def test_handshake_of_a_banned_user_is_refused_as_banned(chat: Harness) -> None:
    user = await chat.new_user("banned")
    admin = await chat.admin_client()
    await admin.call("ban_user", target_username=user.username)
    assert await handshake_outcome(chat.ws_url, user.token) in REFUSED_BANNED
    assert await handshake_outcome(chat.ws_url, user.token, via="query") in REFUSED_BANNED


# --- the first frame ---------------------------------------------------------------------------


async def test_first_frame_is_connection_established_with_every_field(chat: Harness) -> None:
    user, client = await chat.user_client("first")
    message = client.established
    assert message["jsonrpc"] == "2.0"
    assert "id" not in message
    params = message["params"]
    assert {
        "connection_id",
        "username",
        "role",
        "journal_seq",
        "rooms",
        "current_room",
        "resumed",
    } <= params.keys()
    assert params["connection_id"]
    assert params["username"] == user.username
    assert params["role"] == "user"
    assert isinstance(params["journal_seq"], int) and params["journal_seq"] >= 1
    assert params["rooms"] == []
    assert params["current_room"] is None
    assert params["resumed"] is False


async def test_connection_established_lists_durable_rooms_and_the_current_one(
    chat: Harness,
) -> None:
    user, client = await chat.user_client("rooms")
    suffix = uuid.uuid4().hex[:8]
    for name in (f"Zeta_{suffix}", f"alpha_{suffix}", f"Mid_{suffix}"):
        await client.call("join_room", room_name=name)
    await client.close()
    again = await chat.connect(user)
    params = again.established["params"]
    assert params["rooms"] == sorted(
        [f"zeta_{suffix}", f"alpha_{suffix}", f"mid_{suffix}"], key=str.lower
    )
    # The most recently joined room.
    assert params["current_room"] == f"mid_{suffix}"


async def test_each_connection_gets_its_own_connection_id(chat: Harness) -> None:
    user, first = await chat.user_client("ids")
    second = await chat.connect(user)
    assert (
        first.established["params"]["connection_id"]
        != (second.established["params"]["connection_id"])
    )


async def test_token_in_the_query_parameter_is_accepted(chat: Harness) -> None:
    user = await chat.new_user("query")
    client = await chat.connect(user, via="query")
    assert client.established["params"]["username"] == user.username
    assert (await client.call("whoami"))["username"] == user.username


async def test_ping_answers_with_journal_seq_and_timestamps_are_utc(chat: Harness) -> None:
    _, client = await chat.user_client("pong")
    result = await client.call("ping")
    assert result["pong"] is True
    assert result["journal_seq"] >= client.established["params"]["journal_seq"]
    joined = await client.call("join_room", room_name=f"t_{uuid.uuid4().hex[:8]}")
    event = await client.params_of("user_joined", room_id=joined["room_id"])
    parse_time(event["timestamp"])


# --- frames ------------------------------------------------------------------------------------


async def test_a_binary_frame_closes_the_socket_with_1003(chat: Harness) -> None:
    _, client = await chat.user_client("binary")
    payload = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode()
    await client.raw_send(payload)
    assert await client.wait_closed() == 1003


async def test_a_frame_over_max_frame_bytes_closes_the_socket_with_1009(chat: Harness) -> None:
    _, client = await chat.user_client("huge")
    request = {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": ""}}
    request["params"]["pad"] = "x" * (MAX_FRAME + 100)
    await client.raw_send(json.dumps(request))
    assert await client.wait_closed() == 1009


async def test_a_frame_just_under_max_frame_bytes_is_served(chat: Harness) -> None:
    _, client = await chat.user_client("big")
    request = {"jsonrpc": "2.0", "id": "big", "method": "ping", "params": {"pad": ""}}
    overhead = len(json.dumps(request))
    request["params"]["pad"] = "x" * (MAX_FRAME - overhead - 10)
    await client.raw_send(json.dumps(request))
    response = await client.next_frame()
    assert response["id"] == "big" and response["result"]["pong"] is True


async def test_the_server_answers_websocket_pings(chat: Harness) -> None:
    _, client = await chat.user_client("wsping")
    pong = await client.ws.ping(b"are-you-there")
    latency = await asyncio.wait_for(pong, 5)
    assert latency >= 0


async def test_the_client_can_close_normally(chat: Harness) -> None:
    user = await chat.new_user("bye")
    client = await Client.open(chat.ws_url, user.token)
    await client.close()
    assert client.ws.close_code == 1000
