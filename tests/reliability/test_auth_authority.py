"""Auth and authority: forged and stale tokens, every privileged method from every lower role,
acting on rooms one is not in, and registrations that would replace an account.

Usernames are ASCII only (docs/protocol.md section 1), so Unicode lookalikes of a taken name are not
normalised onto it: they are refused outright with `invalid_username`, which also means no
account can ever be a confusable of another.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import jwt
import pytest
from helpers import GENEROUS_LIMITS, PASSWORD, Harness, User, handshake_outcome, unique
from reliability_kit import ServerProcess, stop_and_check

SECRET = "reliability-secret-" + "k" * 64
OTHER_SECRET = "another-secret-entirely-" + "x" * 32

MODERATOR_METHODS: dict[str, dict[str, Any]] = {
    "kick_user": {},
    "ban_user": {"reason": "x"},
    "unban_user": {},
}
ADMIN_METHODS: dict[str, dict[str, Any]] = {
    "set_role": {"role": "moderator"},
    "broadcast_announcement": {"message": "hi"},
    "delete_room": {},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    env = {**GENEROUS_LIMITS, "CHAT__AUTH__JWT_SECRET": SECRET}
    process = ServerProcess(tmp_path_factory.mktemp("auth") / "data", env)
    process.start()
    try:
        yield process
    finally:
        stop_and_check(process)


@pytest.fixture
async def chat(server: Any) -> AsyncIterator[Harness]:
    async with server.harness() as harness:
        yield harness


def _claims(sub: str, role: str = "user", **over: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "role": role,
        "iat": now - 5,
        "exp": now + 3600,
        "jti": uuid.uuid4().hex,
    }
    claims.update(over)
    return claims


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(claims: dict[str, Any]) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def _tampered_role(token: str, role: str) -> str:
    """The same token with its payload's role changed and the original signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = role
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


async def _refused_with(chat: Harness, token: str, status: int, close_code: int) -> None:
    for via in ("header", "query"):
        outcome = await handshake_outcome(chat.ws_url, token, via=via)
        assert outcome in (("http", status), ("close", close_code)), (via, outcome)


async def test_forged_and_invalid_tokens_are_refused_at_the_handshake(chat: Harness) -> None:
    user = await chat.new_user("tok")
    now = int(time.time())
    forged = {
        "alg none": _unsigned(_claims(user.username)),
        "alg none as admin": _unsigned(_claims("admin", "admin")),
        "another key": jwt.encode(_claims(user.username), OTHER_SECRET, algorithm="HS256"),
        "another key as admin": jwt.encode(_claims("admin", "admin"), OTHER_SECRET, "HS256"),
        "altered role claim": _tampered_role(user.token, "admin"),
        "expired": jwt.encode(_claims(user.username, iat=now - 7200, exp=now - 10), SECRET),
        "issued in the future": jwt.encode(_claims(user.username, iat=now + 600), SECRET),
        "not valid before the future": jwt.encode(_claims(user.username, nbf=now + 600), SECRET),
        "no such user": jwt.encode(_claims(unique("ghost")), SECRET),
        "missing jti": jwt.encode(
            {k: v for k, v in _claims(user.username).items() if k != "jti"}, SECRET
        ),
        "HS512 with the right key": jwt.encode(_claims(user.username), SECRET, "HS512"),
        "garbage": "not.a.token",
        "empty signature": user.token.rsplit(".", 1)[0] + ".",
    }
    for name, token in forged.items():
        try:
            await _refused_with(chat, token, 401, 4401)
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from None
    # The genuine token of the same user still works.
    client = await chat.connect(user)
    assert (await client.call("whoami"))["username"] == user.username


async def test_banned_users_token_is_refused_with_403(chat: Harness) -> None:
    user = await chat.new_user("banned")
    admin = await chat.admin_client()
    await admin.call("ban_user", target_username=user.username, reason="test")
    await _refused_with(chat, user.token, 403, 4403)
    login = await chat.login_response(user.username, user.password)
    assert login.status_code == 403, login.text
    await admin.call("unban_user", target_username=user.username)
    client = await chat.connect(user)
    assert (await client.call("ping"))["pong"] is True


async def test_a_role_claim_grants_nothing_the_state_does_not(chat: Harness) -> None:
    """A genuinely signed token claiming admin for a plain user (a stale token, a leaked
    secret's misuse aside) is served with the user's current role from the state."""
    user = await chat.new_user("claim")
    now = int(time.time())
    token = jwt.encode(_claims(user.username, "admin", iat=now - 1), SECRET, "HS256")
    client = await chat.connect(token)
    assert client.established["params"]["role"] == "user"
    victim = await chat.new_user("victim")
    error = await client.error_of("ban_user", target_username=victim.username)
    assert (error.code, error.reason) == (-32002, "insufficient_role")


async def _assert_refused_everything(
    chat: Harness, who: User, methods: dict[str, dict[str, Any]], target: str, room: str
) -> None:
    client = await chat.connect(who)
    before = await chat.journal_seq()
    for method, extra in methods.items():
        params = {**extra}
        if method == "delete_room":
            params["room_id"] = room
        elif method != "broadcast_announcement":
            params["target_username"] = target
        error = await client.error_of(method, **params)
        assert (error.code, error.reason) == (-32002, "insufficient_role"), (
            who.role,
            method,
            error,
        )
    assert await chat.journal_seq() == before, "a refused command appended events"
    await client.close()


async def test_every_privileged_method_is_refused_to_every_lower_role(chat: Harness) -> None:
    room = unique("priv")
    admin = await chat.admin_client()
    await admin.call("join_room", room_name=room)
    target = await chat.new_user("target")
    user = await chat.new_user("plain")
    moderator = await chat.new_staff("moderator")
    both = {**MODERATOR_METHODS, **ADMIN_METHODS}
    await _assert_refused_everything(chat, user, both, target.username, room)
    await _assert_refused_everything(chat, moderator, ADMIN_METHODS, target.username, room)
    # A moderator cannot act on a peer or a higher role, nor on itself.
    client = await chat.connect(moderator)
    other = await chat.new_staff("moderator")
    for method, extra in MODERATOR_METHODS.items():
        for victim in (other.username, "admin"):
            error = await client.error_of(method, target_username=victim, **extra)
            assert error.code == -32002, (method, victim, error)
        error = await client.error_of(method, target_username=moderator.username, **extra)
        assert error.code == -32002, (method, "self", error)
    # A demotion takes effect on an open connection and on the token issued before it.
    await admin.call("set_role", target_username=moderator.username, role="user")
    error = await client.error_of("kick_user", target_username=target.username)
    assert (error.code, error.reason) == (-32002, "insufficient_role")
    again = await chat.connect(moderator)
    assert again.established["params"]["role"] == "user"
    error = await again.error_of("ban_user", target_username=target.username)
    assert (error.code, error.reason) == (-32002, "insufficient_role")
    # An admin cannot change its own role.
    error = await admin.error_of("set_role", target_username="admin", role="user")
    assert error.code == -32002, error


async def test_a_user_cannot_act_on_a_room_it_is_not_in(chat: Harness) -> None:
    owner, owner_client = await chat.user_client("owner")
    room = unique("closed")
    await owner_client.call("join_room", room_name=room)
    sent = await owner_client.call("send_message", room_id=room, text="secret")
    _outsider, client = await chat.user_client("outsider")
    before = await chat.journal_seq()
    calls: list[tuple[str, dict[str, Any]]] = [
        ("send_message", {"room_id": room, "text": "let me in"}),
        ("send_message", {"room_id": room, "text": "retry", "client_msg_id": "x1"}),
        ("leave_room", {"room_id": room}),
        ("start_typing", {"room_id": room}),
        ("stop_typing", {"room_id": room}),
        ("get_history", {"room_id": room}),
        ("get_history", {"room_id": room, "before_seq": sent["seq"] + 1, "limit": 5}),
    ]
    for method, params in calls:
        error = await client.error_of(method, **params)
        assert (error.code, error.reason) == (-32004, "not_a_member"), (method, error)
    assert await chat.journal_seq() == before
    assert not owner_client.unread("user_started_typing")
    # A user that left loses the history too.
    await client.call("join_room", room_name=room)
    await client.call("leave_room", room_id=room)
    error = await client.error_of("get_history", room_id=room)
    assert error.code == -32004, error
    # Without a current room, the room-optional methods are invalid params, not a free pass.
    for method, params in [("send_message", {"text": "x"}), ("leave_room", {})]:
        error = await client.error_of(method, **params)
        assert (error.code, error.reason) == (-32602, "invalid_params"), (method, error)
    members = (await owner_client.call("list_members", room_id=room))["members"]
    assert [m["username"] for m in members] == [owner.username]


def _variants(name: str) -> list[str]:
    return sorted({name.upper(), name.capitalize(), name.swapcase(), name[:-1] + name[-1].upper()})


CONFUSABLES = [
    "\uff41\uff4c\uff49\uff43\uff45",  # fullwidth "alice"
    "\u0430lice",  # Cyrillic a
    "al\u0456ce",  # Cyrillic i
    "alic\u0435",  # Cyrillic e
    "ali\u200bce",  # zero-width space
    "alice\u200d",  # zero-width joiner
    "\u202ealice",  # right-to-left override
    "alic\u0065\u0301",  # e + combining acute
    "al\u0131ce",  # dotless i
    "\u212alice",  # Kelvin sign (lowercases to k)
    "alice\n",
    " alice",
    "alice\x00",
    "\uff21\uff2c\uff29\uff23\uff25",
]


async def test_registration_never_replaces_an_account(chat: Harness) -> None:
    user = await chat.new_user("Owner")
    for variant in [user.username, *_variants(user.username)]:
        response = await chat.register(variant, "another-password-9")
        assert response.status_code == 409, (variant, response.text)
        assert response.json()["reason"] == "username_taken"
    for variant in ["alice", "ALICE", "Alice", "aLiCe"]:
        response = await chat.register(variant, "another-password-9")
        assert response.status_code == 409, (variant, response.text)
    for name in [*CONFUSABLES, "\u212a" + user.username[1:]]:
        response = await chat.register(name, "another-password-9")
        assert response.status_code == 400, (name, response.text)
        assert response.json()["reason"] == "invalid_username", (name, response.text)
    # The accounts are untouched: the old passwords still work, the new ones do not.
    assert await chat.login(user.username, PASSWORD)
    assert await chat.login("alice", "alice123")
    refused = await chat.login_response(user.username.upper(), "another-password-9")
    assert refused.status_code == 401, refused.text
