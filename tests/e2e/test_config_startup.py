"""Start-up and settings as an operator meets them (docs/protocol.md section 6)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from helpers import Harness
from server_kit import ServerProcess

from chat_core.settings.schema import JWT_SECRET_FILE

SECRET = "startup-test-secret-" + "q" * 32


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"CHAT__CHAT__NO_SUCH_KEY": "1"}, "chat.no_such_key"),
        ({"CHAT__CHAT__MAX_MESSAGE_LENGTH": "many"}, "chat.max_message_length"),
        ({"CHAT__AUTH__JWT_SECRET": "too-short"}, "auth.jwt_secret"),
        ({"CHAT__DATABASE__SYNCHRONOUS": "SOMETIMES"}, "database.synchronous"),
    ],
)
async def test_an_unknown_key_or_bad_value_stops_start_up_naming_the_key(
    tmp_path: Path, env: dict[str, str], key: str
) -> None:
    server = ServerProcess(tmp_path / "bad", {"CHAT__AUTH__BCRYPT_ROUNDS": "4", **env})
    with pytest.raises(RuntimeError):
        server.start(timeout=20)
    assert server.proc is not None and server.proc.returncode not in (0, None)
    assert key in server.log_text(), server.log_text()
    # A secret is never echoed back, even when it is refused.
    assert "too-short" not in server.log_text()


async def test_a_config_file_is_read_and_the_environment_wins_over_it(start_server: Any) -> None:
    config = """
[chat]
max_message_length = 12
max_room_name_length = 8
default_rooms = ["lobby", "Random"]
"""
    server = start_server({"CHAT__CHAT__MAX_ROOM_NAME_LENGTH": "9"}, config=config)
    async with server.harness() as chat:
        _, client = await chat.user_client("cfg")
        rooms = [r["room_id"] for r in (await client.call("list_rooms"))["rooms"]]
        assert rooms == ["lobby", "random"]
        await client.call("join_room", room_name="lobby")
        error = await client.error_of("send_message", room_id="lobby", text="x" * 13)
        assert error.reason == "message_too_long"
        assert (await client.call("join_room", room_name="n" * 9))["room_id"] == "n" * 9
        error = await client.error_of("join_room", room_name="n" * 10)
        assert error.reason == "invalid_room_name"


async def test_configured_users_are_created_and_demo_users_can_be_turned_off(
    start_server: Any,
) -> None:
    server = start_server(
        {
            "CHAT__ADMIN__SEED_DEMO_USERS": "false",
            "CHAT__ADMIN__USERS__0__USERNAME": "operator",
            "CHAT__ADMIN__USERS__0__PASSWORD": "operator-password",
            "CHAT__ADMIN__USERS__0__ROLE": "admin",
            "CHAT__ADMIN__USERS__1__USERNAME": "helper",
            "CHAT__ADMIN__USERS__1__PASSWORD": "helper-password",
        }
    )
    async with server.harness() as chat:
        for name, password in (("admin", "admin123"), ("alice", "alice123")):
            assert (await chat.login_response(name, password)).status_code == 401
        ops = await chat.login_response("operator", "operator-password")
        assert (ops.status_code, ops.json()["role"]) == (200, "admin")
        helper = await chat.login_response("helper", "helper-password")
        assert (helper.status_code, helper.json()["role"]) == (200, "user")


async def test_the_generated_jwt_secret_is_private_and_survives_a_restart(
    start_server: Any,
) -> None:
    server = start_server()
    secret_file = server.data_dir / JWT_SECRET_FILE
    assert secret_file.is_file()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    async with server.harness() as chat:
        user = await chat.new_user("keeps")
    secret = secret_file.read_text()
    assert server.restart() == 0
    assert secret_file.read_text() == secret
    async with Harness(server.url, server.ws_url) as chat:
        client = await chat.connect(user)
        assert (await client.call("whoami"))["username"] == user.username


async def secrets_in_log(start_server: Any, level: str) -> tuple[list[str], str]:
    """Exercise every path that carries a secret; (the secrets found in the log, the log).

    The demo passwords are public (docs/protocol.md section 6), so the warning may name them.
    """
    server = start_server({"CHAT__AUTH__JWT_SECRET": SECRET, "CHAT__LOGGING__LEVEL": level})
    async with server.harness() as chat:
        user = await chat.new_user("quiet", password="very-secret-password-1")
        await chat.login_response(user.username, "very-secret-password-1")
        await chat.login_response(user.username, "wrong-secret-password-2")
        by_header = await chat.connect(user)
        by_query = await chat.connect(user, via="query")
        assert (await by_header.call("ping"))["pong"] and (await by_query.call("ping"))["pong"]
    assert server.stop() == 0
    log = server.log_text()
    secrets = [SECRET, "very-secret-password-1", "wrong-secret-password-2", user.token]
    return [secret for secret in secrets if secret in log], log


async def test_secrets_passwords_and_tokens_never_reach_the_log(start_server: Any) -> None:
    found, log = await secrets_in_log(start_server, "info")
    assert found == [], log


async def test_debug_logging_does_not_leak_tokens_either(start_server: Any) -> None:
    found, log = await secrets_in_log(start_server, "debug")
    assert found == [], [line for line in log.splitlines() if any(s in line for s in found)][:5]


async def test_the_log_can_be_one_json_object_a_line(start_server: Any) -> None:
    server = start_server({"CHAT__LOGGING__FORMAT": "json"})
    async with server.harness() as chat:
        await chat.user_client("jsonlog")
    assert server.stop() == 0
    lines = [line for line in server.log_lines if line.strip()]
    assert lines
    for line in lines:
        assert isinstance(json.loads(line), dict), line


async def test_cors_can_be_restricted_to_listed_origins(start_server: Any) -> None:
    allowed = "https://chat.example.com"
    server = start_server(
        {
            "CHAT__SERVER__CORS__ALLOW_ANY_ORIGIN": "false",
            "CHAT__SERVER__CORS__ALLOWED_ORIGINS": json.dumps([allowed]),
        }
    )
    async with server.harness() as chat:
        ok = await chat.http.get("/health", headers={"Origin": allowed})
        assert ok.headers.get("access-control-allow-origin") == allowed
        other = await chat.http.get("/health", headers={"Origin": "https://evil.example"})
        assert other.headers.get("access-control-allow-origin") not in ("*", "https://evil.example")


@pytest.mark.parametrize(("setting", "frozen"), [(None, True), ("false", False)])
async def test_the_collector_is_tuned_after_start_up_unless_turned_off(
    start_server: Any, setting: str | None, frozen: bool
) -> None:
    server = start_server({} if setting is None else {"CHAT__SERVER__GC_FREEZE": setting})
    async with server.harness() as chat:
        await chat.user_client("gc")  # the server answers either way
    tuned = [line for line in server.log_lines if "gc: froze" in line]
    assert bool(tuned) is frozen, server.log_lines[-5:]
