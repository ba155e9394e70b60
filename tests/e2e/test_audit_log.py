"""Audit lines of a scripted session, with `logging.format = json`: one object a line."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from helpers import ADMIN, PASSWORD, unique
from server_kit import ServerProcess


def json_lines(server: ServerProcess) -> list[dict[str, Any]]:
    """Every line of the current run, each parsed as one JSON object."""
    entries = []
    for line in server.log_lines[server.run_start :]:
        entry = json.loads(line)
        assert isinstance(entry, dict), line
        entries.append(entry)
    return entries


async def audit_lines(server: ServerProcess, count: int) -> list[dict[str, Any]]:
    """The audit lines, once at least `count` were written (a writer thread writes them)."""
    async with asyncio.timeout(10):
        while True:
            lines = [e for e in json_lines(server) if e["logger"] == "chat_web.audit"]
            if len(lines) >= count:
                return lines
            await asyncio.sleep(0.02)


async def audit_text_line(server: ServerProcess) -> str:
    """The first login audit line of the text format, once written."""
    async with asyncio.timeout(10):
        while True:
            for line in server.log_lines:
                if "chat_web.audit: login " in line:
                    return line
            await asyncio.sleep(0.02)


def without_time(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k not in ("time", "message")}


async def test_audit_lines_say_who_did_what_to_whom_from_where(
    start_server: Callable[..., ServerProcess],
) -> None:
    admin_password = "admin-password-1"
    server = start_server(
        {
            "CHAT__LOGGING__FORMAT": "json",
            "CHAT__ADMIN__SEED_DEMO_USERS": "false",
            "CHAT__ADMIN__USERS__0__USERNAME": ADMIN[0],
            "CHAT__ADMIN__USERS__0__PASSWORD": admin_password,
            "CHAT__ADMIN__USERS__0__ROLE": "admin",
        }
    )
    async with server.harness() as chat:
        carol = unique("carol")
        assert (await chat.register(carol, PASSWORD)).status_code == 201
        assert (await chat.register(carol, PASSWORD)).status_code == 409
        carol_token = await chat.login(carol, PASSWORD)
        assert (await chat.login_response(carol, "wrong-password")).status_code == 401
        assert (await chat.login_response("no\nsuch user", "x")).status_code == 401
        admin = await chat.connect(await chat.login(ADMIN[0], admin_password))
        user = await chat.connect(carol_token)
        room = unique("aroom")
        await user.call("join_room", room_name=room)
        refused = await user.error_of("kick_user", target_username=ADMIN[0])
        await admin.call("set_role", target_username=carol, role="moderator")
        await admin.call("kick_user", target_username=carol, room_id=room, reason="secret words")
        await admin.call("ban_user", target_username=carol, duration_seconds=60)
        await admin.call("unban_user", target_username=carol)
        await admin.call("broadcast_announcement", message="announced text")
        await admin.call("delete_room", room_id=room)

        lines = await audit_lines(server, 14)
    expected = [
        {"action": "account_configured", "actor": "system", "target": "admin", "role": "admin",
         "addr": "config", "outcome": "ok"},
        {"action": "registration", "actor": carol, "role": "user", "outcome": "ok"},
        {"action": "registration", "actor": carol, "outcome": "username_taken"},
        {"action": "login", "actor": carol, "role": "user", "outcome": "ok"},
        {"action": "login", "actor": carol, "outcome": "invalid_credentials"},
        {"action": "login", "actor": "(invalid username)", "outcome": "invalid_credentials"},
        {"action": "login", "actor": "admin", "role": "admin", "outcome": "ok"},
        {"action": "kick", "actor": carol, "target": "admin",
         "outcome": refused.error["data"]["reason"]},
        {"action": "role_change", "actor": "admin", "target": carol, "role": "moderator",
         "outcome": "ok"},
        {"action": "kick", "actor": "admin", "target": carol, "room": room, "outcome": "ok"},
        {"action": "ban", "actor": "admin", "target": carol, "duration_seconds": 60,
         "outcome": "ok"},
        {"action": "unban", "actor": "admin", "target": carol, "outcome": "ok"},
        {"action": "announcement", "actor": "admin", "outcome": "ok"},
        {"action": "room_deletion", "actor": "admin", "room": room, "outcome": "ok"},
    ]  # fmt: skip
    assert len(lines) == len(expected), lines
    for line, want in zip(lines, expected, strict=True):
        got = without_time(line)
        assert got["level"] == "info"
        assert got.pop("addr") == want.pop("addr", "127.0.0.1"), line
        assert {k: v for k, v in got.items() if k not in ("level", "logger")} == want, line
    # Never a token, a password, a hash or text a user wrote, in any line.
    everything = "\n".join(server.log_lines)
    for secret in (carol_token, PASSWORD, admin_password, "$2b$", "secret words", "announced"):
        assert secret not in everything


async def test_audit_lines_show_in_the_text_format(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server()
    async with server.harness() as chat:
        assert (await chat.login_response(ADMIN[0], "not-the-password")).status_code == 401

        line = await audit_text_line(server)
    assert "login by admin: invalid_credentials" in line
    assert "addr=127.0.0.1" in line and "action=login" in line and "actor=admin" in line
