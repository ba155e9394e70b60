"""HTTP: registration, login, health and CORS (docs/protocol.md section 1)."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import httpx
import jwt
import pytest
from helpers import PASSWORD, Harness, unique


def assert_error(response: httpx.Response, status: int, reason: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert body["reason"] == reason, body
    assert isinstance(body["error"], str) and body["error"], body
    return body


# --- registration ------------------------------------------------------------------------------


async def test_register_creates_a_user_account_with_201(chat: Harness) -> None:
    name = unique("reg")
    response = await chat.register(name, PASSWORD)
    assert response.status_code == 201, response.text
    assert response.json() == {"username": name, "role": "user"}


async def test_register_accepts_a_display_name_and_ignores_unknown_fields(chat: Harness) -> None:
    name = unique("reg")
    response = await chat.register(name, PASSWORD, display_name="Ann O'Nymous", shoe_size=44)
    assert response.status_code == 201, response.text
    assert response.json()["username"] == name


@pytest.mark.parametrize(
    ("display_name", "why"),
    [
        ("<admin>\x1b[2K forged", "control character"),
        ("\u200b\u200d", "empty"),
        ("d" * 65, "longer than 64"),
        ("", "empty"),
    ],
)
async def test_register_refuses_a_bad_display_name_with_400_invalid_body(
    chat: Harness, display_name: str, why: str
) -> None:
    name = unique("dn")
    response = await chat.register(name, PASSWORD, display_name=display_name)
    body = assert_error(response, 400, "invalid_body")
    assert "display_name" in body["error"] and why in body["error"], body
    # Nothing was created: the name is still free.
    assert (await chat.register(name, PASSWORD, display_name="D" * 64)).status_code == 201


@pytest.mark.parametrize("spelling", [str.upper, str.lower, str.swapcase, str])
async def test_register_refuses_a_taken_name_in_any_case_with_409(
    chat: Harness, spelling: Any
) -> None:
    name = unique("Taken")
    assert (await chat.register(name, PASSWORD)).status_code == 201
    response = await chat.register(spelling(name), "another-password-9")
    assert_error(response, 409, "username_taken")


async def test_register_never_changes_an_existing_account(chat: Harness) -> None:
    name = unique("keep")
    assert (await chat.register(name, PASSWORD)).status_code == 201
    assert (await chat.register(name.upper(), "hijacked-password")).status_code == 409
    assert (await chat.login_response(name, PASSWORD)).status_code == 200
    assert_error(await chat.login_response(name, "hijacked-password"), 401, "invalid_credentials")


@pytest.mark.parametrize(
    "username",
    [
        "ab",
        "a" * 33,
        "with space",
        "slash/name",
        "naïve",
        "tab\tname",
        "new\nline",
        "",
        "semi;colon",
    ],
)
async def test_register_rejects_invalid_usernames_with_400(chat: Harness, username: str) -> None:
    assert_error(await chat.register(username, PASSWORD), 400, "invalid_username")


async def test_register_accepts_usernames_at_the_length_bounds(chat: Harness) -> None:
    short = unique("x")[-3:]
    long = (unique("L") + "_.-" + "z" * 32)[:32]
    for name in (short, long):
        response = await chat.register(name, PASSWORD)
        assert response.status_code == 201, (name, response.text)


@pytest.mark.parametrize("password", ["", "short", "1234567", "p" * 129])
async def test_register_rejects_weak_passwords_with_400(chat: Harness, password: str) -> None:
    assert_error(await chat.register(unique("weak"), password), 400, "weak_password")


async def test_register_accepts_passwords_at_the_length_bounds(chat: Harness) -> None:
    for password in ("8chars!!", "q" * 128):
        name = unique("pw")
        assert (await chat.register(name, password)).status_code == 201
        assert (await chat.login_response(name, password)).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{not json",
        b"[]",
        b'"just a string"',
        b'{"username": "someone_ok"}',
        b'{"password": "long-enough-1"}',
        b'{"username": 12345, "password": "long-enough-1"}',
        b'{"username": "someone_ok", "password": ["long-enough-1"]}',
    ],
)
async def test_register_rejects_malformed_bodies_with_400_invalid_body(
    chat: Harness, body: bytes
) -> None:
    response = await chat.http.post(
        "/auth/register", content=body, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "invalid_body")


# --- login -------------------------------------------------------------------------------------


async def test_login_returns_a_bearer_token_with_the_documented_claims(chat: Harness) -> None:
    name = unique("log")
    assert (await chat.register(name, PASSWORD)).status_code == 201
    before = int(time.time())
    response = await chat.login_response(name, PASSWORD)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["username"] == name
    assert body["role"] == "user"
    assert isinstance(body["expires_at"], int)
    # Default ttl is a day.
    assert before + 86400 - 5 <= body["expires_at"] <= int(time.time()) + 86400 + 5
    header = jwt.get_unverified_header(body["token"])
    assert header["alg"] == "HS256"
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert {"sub", "role", "iat", "exp", "jti"} <= claims.keys()
    assert claims["sub"] == name
    assert claims["role"] == "user"
    assert claims["exp"] == body["expires_at"]
    assert claims["jti"]


async def test_each_login_issues_a_distinct_token_id(chat: Harness) -> None:
    user = await chat.new_user("jti")
    second = await chat.login(user.username, user.password)
    first_jti = jwt.decode(user.token, options={"verify_signature": False})["jti"]
    second_jti = jwt.decode(second, options={"verify_signature": False})["jti"]
    assert first_jti != second_jti


async def test_demo_users_exist_with_their_roles(chat: Harness) -> None:
    expected = {
        ("admin", "admin123"): "admin",
        ("moderator", "mod123"): "moderator",
        ("alice", "alice123"): "user",
        ("bob", "bob123"): "user",
    }
    for (name, password), role in expected.items():
        response = await chat.login_response(name, password)
        assert response.status_code == 200, (name, response.text)
        assert response.json()["role"] == role


async def test_login_answers_unknown_user_and_wrong_password_identically(chat: Harness) -> None:
    user = await chat.new_user("who")
    wrong = await chat.login_response(user.username, "not-the-password")
    unknown = await chat.login_response(unique("ghost"), "not-the-password")
    body = assert_error(wrong, 401, "invalid_credentials")
    assert assert_error(unknown, 401, "invalid_credentials") == body


@pytest.mark.parametrize(
    "body",
    [b"nope", b"[]", b'{"username": "alice"}', b'{"username": 1, "password": 2}'],
)
async def test_login_rejects_malformed_bodies_with_400(chat: Harness, body: bytes) -> None:
    response = await chat.http.post(
        "/auth/login", content=body, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "invalid_body")


async def test_login_of_a_banned_user_is_refused_with_403(chat: Harness) -> None:
    user = await chat.new_user("banme")
    admin = await chat.admin_client()
    await admin.call("ban_user", target_username=user.username, reason="test")
    assert_error(await chat.login_response(user.username, user.password), 403, "banned")


async def test_long_passwords_sharing_their_first_72_bytes_are_different(chat: Harness) -> None:
    prefix = "p" * 72
    password = prefix + "-the-real-one"
    name = unique("long")
    assert (await chat.register(name, password)).status_code == 201
    assert (await chat.login_response(name, password)).status_code == 200
    assert_error(await chat.login_response(name, prefix), 401, "invalid_credentials")
    impostor = prefix + "-an-impostor!"
    assert_error(await chat.login_response(name, impostor), 401, "invalid_credentials")


async def test_multibyte_passwords_past_72_bytes_are_not_truncated(chat: Harness) -> None:
    # 40 two-byte characters: 80 bytes, under the 128-character limit.
    password = "é" * 40
    name = unique("utf")
    assert (await chat.register(name, password)).status_code == 201
    assert (await chat.login_response(name, password)).status_code == 200
    assert_error(await chat.login_response(name, "é" * 36 + "e" * 4), 401, "invalid_credentials")


# --- health and CORS ---------------------------------------------------------------------------


async def test_health_reports_ok_and_a_growing_journal_seq(chat: Harness) -> None:
    response = await chat.http.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert isinstance(body["journal_seq"], int) and body["journal_seq"] >= 0
    # Registering an account is journaled.
    await chat.new_user("grow")
    assert await chat.journal_seq() > body["journal_seq"]


async def test_responses_allow_any_origin_by_default(chat: Harness) -> None:
    origin = "http://example.test:8080"
    response = await chat.http.get("/health", headers={"Origin": origin})
    assert response.status_code == 200
    assert response.headers.get("access-control-allow-origin") in ("*", origin)


async def test_cors_preflight_of_login_is_allowed(chat: Harness) -> None:
    origin = "http://example.test:8080"
    response = await chat.http.options(
        "/auth/login",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert 200 <= response.status_code < 300, (response.status_code, response.text)
    assert response.headers.get("access-control-allow-origin") in ("*", origin)
    allowed = response.headers.get("access-control-allow-methods", "").upper()
    assert "POST" in allowed or "*" in allowed


# --- servers of their own ----------------------------------------------------------------------


async def test_login_flood_is_rate_limited_with_429_and_retry_after(start_server: Any) -> None:
    server = start_server({"CHAT__RATE_LIMIT__LOGIN_ATTEMPTS_PER_HOUR": "3"})
    async with server.harness() as chat:
        victim = await chat.new_user("victim")
        bystander = await chat.new_user("bystander")
        for _ in range(3):
            response = await chat.login_response(victim.username, "wrong-password")
            assert_error(response, 401, "invalid_credentials")
        limited = await chat.login_response(victim.username, "wrong-password")
        assert_error(limited, 429, "rate_limited")
        retry_after = limited.headers.get("retry-after")
        assert retry_after is not None and retry_after.isdigit(), limited.headers
        assert 0 < int(retry_after) <= 3600
        # Per address *and* username: another account from the same address still logs in.
        assert (
            await chat.login_response(bystander.username, bystander.password)
        ).status_code == 200


async def test_registrations_are_limited_per_address_apart_from_logins(start_server: Any) -> None:
    server = start_server(
        {
            "CHAT__RATE_LIMIT__REGISTRATIONS_PER_HOUR": "2",
            "CHAT__RATE_LIMIT__LOGIN_ATTEMPTS_PER_HOUR": "1",
        }
    )
    async with server.harness() as chat:
        first = await chat.new_user("reg")
        failed = await chat.login_response(first.username, "wrong-password")
        assert_error(failed, 401, "invalid_credentials")
        locked = await chat.login_response(first.username, "wrong-password")
        assert_error(locked, 429, "rate_limited")
        # The exhausted login limit does not touch registrations, which have their own.
        await chat.new_user("reg")
        limited = await chat.register(unique("reg"))
        assert_error(limited, 429, "rate_limited")
        retry_after = limited.headers.get("retry-after")
        assert retry_after is not None and 0 < int(retry_after) <= 3600, limited.headers
        # Nor does the exhausted registration limit touch logins.
        assert (await chat.login_response("admin", "admin123")).status_code == 200


async def test_login_of_an_unknown_user_takes_about_as_long_as_a_wrong_password(
    start_server: Any,
) -> None:
    # A real bcrypt cost (not the tests' usual 4), so skipping the hash would be measurable.
    server = start_server({"CHAT__AUTH__BCRYPT_ROUNDS": "9"})
    async with server.harness() as chat:
        user = await chat.new_user("timed")

        async def timed(username: str) -> float:
            started = time.perf_counter()
            response = await chat.login_response(username, "not-the-password")
            elapsed = time.perf_counter() - started
            assert response.status_code == 401
            return elapsed

        wrong = [await timed(user.username) for _ in range(4)]
        unknown = [await timed(unique("nobody")) for _ in range(4)]
        ratio = statistics.median(unknown) / statistics.median(wrong)
        assert 0.5 < ratio < 2.0, (wrong, unknown)


async def test_a_login_flood_slows_logins_but_not_the_chat(start_server: Any) -> None:
    # A real bcrypt cost, so the flood keeps the hashing threads busy for a while.
    server = start_server({"CHAT__AUTH__BCRYPT_ROUNDS": "10"})
    async with server.harness() as chat:
        user = await chat.new_user("steady")
        client = await chat.connect(user)
        flood = [
            asyncio.create_task(chat.login_response(user.username, f"wrong-{i:04d}"))
            for i in range(24)
        ]
        latencies = []
        while not all(task.done() for task in flood):
            started = time.perf_counter()
            assert (await client.call("ping"))["pong"] is True
            latencies.append(time.perf_counter() - started)
        responses = await asyncio.gather(*flood)
        assert all(r.status_code in (401, 429) for r in responses)
        assert len(latencies) >= 5
        assert max(latencies) < 0.25, sorted(latencies)[-5:]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/no/such/page", 404), ("GET", "/auth/login", 405), ("DELETE", "/health", 405)],
)
async def test_every_http_error_has_the_error_and_reason_body(
    chat: Harness, method: str, path: str, status: int
) -> None:
    response = await chat.http.request(method, path)
    assert response.status_code == status
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("reason"), str) and body["reason"], body


async def test_a_websocket_path_without_upgrade_is_an_http_error(chat: Harness) -> None:
    response = await chat.http.get("/ws")
    assert 400 <= response.status_code < 500
