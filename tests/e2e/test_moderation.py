"""Roles and moderation: hierarchy, kicks, bans, roles, announcements, room deletion."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from helpers import Client, Harness, handshake_outcome, parse_time, unique

REFUSED_BANNED = {("http", 403), ("close", 4403)}


async def in_room(chat: Harness, room: str, *clients: Client) -> str:
    for client in clients:
        await client.call("join_room", room_name=room)
    return room.lower()


# --- the hierarchy -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("kick_user", {}),
        ("ban_user", {}),
        ("unban_user", {}),
        ("set_role", {"role": "admin"}),
        ("broadcast_announcement", {"message": "hi"}),
        ("delete_room", {"room_id": "general"}),
    ],
)
async def test_a_plain_user_cannot_moderate(
    chat: Harness, method: str, params: dict[str, Any]
) -> None:
    _, client = await chat.user_client("plain")
    victim = await chat.new_user("victim")
    if method != "delete_room" and method != "broadcast_announcement":
        params = {**params, "target_username": victim.username}
    error = await client.error_of(method, **params)
    assert (error.code, error.reason) == (-32002, "insufficient_role")


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("set_role", {"role": "moderator"}),
        ("broadcast_announcement", {"message": "hi"}),
        ("delete_room", {"room_id": "general"}),
    ],
)
async def test_a_moderator_cannot_use_admin_methods(
    chat: Harness, method: str, params: dict[str, Any]
) -> None:
    moderator = await chat.new_staff("moderator")
    client = await chat.connect(moderator)
    victim = await chat.new_user("victim")
    if method == "set_role":
        params = {**params, "target_username": victim.username}
    error = await client.error_of(method, **params)
    assert (error.code, error.reason) == (-32002, "insufficient_role")


@pytest.mark.parametrize("method", ["kick_user", "ban_user", "unban_user"])
async def test_a_moderator_cannot_act_on_a_moderator_or_an_admin(
    chat: Harness, method: str
) -> None:
    moderator = await chat.new_staff("moderator")
    peer = await chat.new_staff("moderator", prefix="peer")
    client = await chat.connect(moderator)
    for target in (peer.username, "admin"):
        error = await client.error_of(method, target_username=target)
        assert (error.code, error.reason) == (-32002, "cannot_moderate_peer"), target


async def test_nobody_can_kick_ban_or_change_the_role_of_themselves(chat: Harness) -> None:
    moderator = await chat.new_staff("moderator")
    client = await chat.connect(moderator)
    for method in ("kick_user", "ban_user"):
        error = await client.error_of(method, target_username=moderator.username)
        assert (error.code, error.reason) == (-32002, "cannot_target_self"), method
    admin = await chat.admin_client()
    error = await admin.error_of("set_role", target_username="ADMIN", role="user")
    assert (error.code, error.reason) == (-32002, "cannot_target_self")
    assert (await admin.call("whoami"))["role"] == "admin"


async def test_moderating_an_unknown_user_is_not_found(chat: Harness) -> None:
    admin = await chat.admin_client()
    for method in ("kick_user", "ban_user", "unban_user"):
        error = await admin.error_of(method, target_username=unique("ghost"))
        assert (error.code, error.reason) == (-32003, "user_not_found"), method


# --- kicks -------------------------------------------------------------------------------------


async def test_a_room_kick_removes_the_target_from_that_room_only(chat: Harness) -> None:
    moderator = await chat.new_staff("moderator")
    mod = await chat.connect(moderator)
    target, victim = await chat.user_client("target")
    _, witness = await chat.user_client("witness")
    room = await in_room(chat, unique("kickroom"), mod, victim, witness)
    other = await in_room(chat, unique("safe"), victim)

    result = await mod.call(
        "kick_user", target_username=target.username, room_id=room, reason="spam"
    )
    assert result == {"kicked": True}
    for someone in (victim, witness, mod):
        kicked = await someone.params_of("user_kicked", username=target.username)
        assert kicked["room_id"] == room
        assert kicked["reason"] == "spam"
        assert kicked["by"] == moderator.username
        assert isinstance(kicked["seq"], int)
        parse_time(kicked["timestamp"])
        left = await someone.params_of("user_left", username=target.username)
        assert (left["room_id"], left["reason"]) == (room, "kicked")
    # Still connected and still in the other room.
    me = await victim.call("whoami")
    assert me["rooms"] == [other]
    assert me["current_room"] == other
    error = await victim.error_of("send_message", room_id=room, text="hello?")
    assert error.code == -32004


async def test_a_room_kick_of_a_non_member_is_not_a_member(chat: Harness) -> None:
    admin = await chat.admin_client()
    target = await chat.new_user("absent")
    room = await in_room(chat, unique("kroom"), admin)
    error = await admin.error_of("kick_user", target_username=target.username, room_id=room)
    assert (error.code, error.reason) == (-32004, "not_a_member")


async def test_a_chat_wide_kick_closes_every_socket_of_the_target_with_4001(
    chat: Harness,
) -> None:
    moderator = await chat.new_staff("moderator")
    mod = await chat.connect(moderator)
    target, first = await chat.user_client("kicked")
    second = await chat.connect(target)
    _, witness = await chat.user_client("witness")
    rooms = [await in_room(chat, unique(f"k{i}"), first, witness) for i in range(2)]

    assert await mod.call("kick_user", target_username=target.username) == {"kicked": True}
    assert await first.wait_closed() == 4001
    assert await second.wait_closed() == 4001
    # The target is told before its sockets close.
    for closed in (first, second):
        assert [k["room_id"] for k in closed.received("user_kicked")] == [None]
    kicked = await witness.params_of("user_kicked", username=target.username)
    assert kicked["room_id"] is None
    left = [await witness.params_of("user_left", username=target.username) for _ in rooms]
    assert sorted(item["room_id"] for item in left) == sorted(rooms)
    assert all(item["reason"] == "kicked" for item in left)
    # Kicked, not banned: the user logs in again and is in no room.
    token = await chat.login(target.username, target.password)
    again = await chat.connect(token)
    assert (await again.call("whoami"))["rooms"] == []
    # The old token is still good too.
    assert (await chat.connect(target)).established["params"]["username"] == target.username


# --- bans --------------------------------------------------------------------------------------


async def test_a_ban_closes_sockets_with_4403_and_refuses_login_and_old_tokens(
    chat: Harness,
) -> None:
    moderator = await chat.new_staff("moderator")
    mod = await chat.connect(moderator)
    target, first = await chat.user_client("banned")
    second = await chat.connect(target)
    _, witness = await chat.user_client("witness")
    room = await in_room(chat, unique("banroom"), first, witness)

    result = await mod.call("ban_user", target_username=target.username, reason="abuse")
    assert result == {"banned": True, "until": None}
    assert await first.wait_closed() == 4403
    assert await second.wait_closed() == 4403
    for closed in (first, second):
        assert [b["username"] for b in closed.received("user_banned")] == [target.username]
    banned = await witness.params_of("user_banned", username=target.username)
    assert banned["reason"] == "abuse" and banned["by"] == moderator.username
    assert banned["until"] is None
    left = await witness.params_of("user_left", username=target.username)
    assert (left["room_id"], left["reason"]) == (room, "banned")
    members = (await witness.call("list_members", room_id=room))["members"]
    assert target.username not in [m["username"] for m in members]

    login = await chat.login_response(target.username, target.password)
    assert (login.status_code, login.json()["reason"]) == (403, "banned")
    assert await handshake_outcome(chat.ws_url, target.token) in REFUSED_BANNED


async def test_unban_restores_login_and_tokens_and_tells_staff(chat: Harness) -> None:
    moderator = await chat.new_staff("moderator")
    mod = await chat.connect(moderator)
    target = await chat.new_user("pardoned")
    await mod.call("ban_user", target_username=target.username)
    assert (await chat.login_response(target.username, target.password)).status_code == 403

    assert await mod.call("unban_user", target_username=target.username) == {"unbanned": True}
    unbanned = await mod.params_of("user_unbanned", username=target.username)
    assert unbanned["by"] == moderator.username
    assert isinstance(unbanned["seq"], int)
    admin = await chat.admin_client()
    await admin.params_of("user_unbanned", username=target.username)

    assert (await chat.login_response(target.username, target.password)).status_code == 200
    client = await chat.connect(target)
    assert (await client.call("whoami"))["rooms"] == []
    assert await mod.call("unban_user", target_username=target.username) == {"unbanned": False}


async def test_a_timed_ban_reports_until_and_expires_by_itself(chat: Harness) -> None:
    admin = await chat.admin_client()
    target = await chat.new_user("timed")
    before = time.time()
    result = await admin.call("ban_user", target_username=target.username, duration_seconds=1)
    until = parse_time(result["until"]).timestamp()
    assert before + 0.5 <= until <= time.time() + 1.5
    assert (await chat.login_response(target.username, target.password)).status_code == 403
    # The ban ends by the clock: let its second pass (time, not synchronisation).
    await asyncio.sleep(max(0.0, until - time.time()) + 0.05)
    response = await chat.login_response(target.username, target.password)
    assert response.status_code == 200, response.text


# --- roles -------------------------------------------------------------------------------------


async def test_set_role_takes_effect_on_an_open_connection(chat: Harness) -> None:
    admin = await chat.admin_client()
    promoted, client = await chat.user_client("promoted")
    victim, victim_client = await chat.user_client("victim")
    room = await in_room(chat, unique("roles"), client, victim_client)
    error = await client.error_of("kick_user", target_username=victim.username, room_id=room)
    assert error.reason == "insufficient_role"

    result = await admin.call("set_role", target_username=promoted.username, role="moderator")
    assert result == {"username": promoted.username, "role": "moderator"}
    changed = await client.params_of("role_changed", username=promoted.username)
    assert (changed["role"], changed["by"]) == ("moderator", "admin")
    await admin.params_of("role_changed", username=promoted.username)
    assert (await client.call("whoami"))["role"] == "moderator"
    # Same socket, same token (whose role claim still says "user").
    kicked = await client.call("kick_user", target_username=victim.username, room_id=room)
    assert kicked == {"kicked": True}

    await admin.call("set_role", target_username=promoted.username, role="user")
    await client.params_of("role_changed", username=promoted.username, role="user")
    await victim_client.call("join_room", room_name=room)
    error = await client.error_of("kick_user", target_username=victim.username, room_id=room)
    assert error.reason == "insufficient_role"


async def test_a_role_change_reaches_staff_but_not_other_users(chat: Harness) -> None:
    admin = await chat.admin_client()
    staff = await chat.connect(await chat.new_staff("moderator"))
    _, bystander = await chat.user_client("bystander")
    target = await chat.new_user("target")
    await admin.call("set_role", target_username=target.username, role="moderator")
    await staff.params_of("role_changed", username=target.username)
    # A later event that reaches everyone: the role change must not have preceded it.
    announcement = unique("after-role")
    await admin.call("broadcast_announcement", message=announcement)
    await bystander.params_of("system_announcement", message=announcement)
    assert not bystander.received("role_changed")


async def test_setting_the_same_role_again_appends_nothing(chat: Harness) -> None:
    admin = await chat.admin_client()
    target = await chat.new_user("same")
    await admin.call("set_role", target_username=target.username, role="moderator")
    before = await chat.journal_seq()
    again = await admin.call("set_role", target_username=target.username, role="moderator")
    assert again == {"username": target.username, "role": "moderator"}
    assert await chat.journal_seq() == before


async def test_an_admin_can_change_another_admin(chat: Harness) -> None:
    admin = await chat.admin_client()
    other = await chat.new_staff("admin", prefix="adm")
    result = await admin.call("set_role", target_username=other.username, role="user")
    assert result == {"username": other.username, "role": "user"}
    login = await chat.login_response(other.username, other.password)
    assert login.json()["role"] == "user"


# --- announcements and room deletion -----------------------------------------------------------


async def test_an_announcement_reaches_every_user_with_its_level(chat: Harness) -> None:
    admin = await chat.admin_client()
    _, lonely = await chat.user_client("lonely")
    _, busy = await chat.user_client("busy")
    await busy.call("join_room", room_name=unique("busy"))
    message = unique("notice")
    result = await admin.call("broadcast_announcement", message=message, level="warning")
    assert isinstance(result["seq"], int)
    parse_time(result["timestamp"])
    for someone in (lonely, busy, admin):
        got = await someone.params_of("system_announcement", message=message)
        assert got["level"] == "warning"
        assert got["by"] == "admin"
        assert got["seq"] == result["seq"]
    default = unique("plain")
    await admin.call("broadcast_announcement", message=default)
    assert (await lonely.params_of("system_announcement", message=default))["level"] == "info"


@pytest.mark.parametrize("level", ["critical", "INFO", "", "debug"])
async def test_an_announcement_with_an_unknown_level_is_refused(chat: Harness, level: str) -> None:
    admin = await chat.admin_client()
    error = await admin.error_of("broadcast_announcement", message="x", level=level)
    assert (error.code, error.reason) == (-32602, "invalid_level")


async def test_deleting_a_room_tells_everyone_and_ends_membership(chat: Harness) -> None:
    admin = await chat.admin_client()
    _, member = await chat.user_client("member")
    _, other_member = await chat.user_client("member2")
    _, outsider = await chat.user_client("outsider")
    name = unique("Doomed")
    room = await in_room(chat, name, member, other_member)
    await member.call("send_message", room_id=room, text="last words")

    assert await admin.call("delete_room", room_id=room) == {"deleted": True}
    for someone in (member, other_member, outsider, admin):
        deleted = await someone.params_of("room_deleted", room_id=room)
        assert (deleted["room_name"], deleted["by"]) == (name, "admin")
        assert isinstance(deleted["seq"], int)
    me = await member.call("whoami")
    assert room not in me["rooms"]
    assert me["current_room"] is None
    rooms = [r["room_id"] for r in (await outsider.call("list_rooms"))["rooms"]]
    assert room not in rooms
    error = await member.error_of("send_message", room_id=room, text="anyone?")
    assert error.code in (-32003, -32004)
    error = await admin.error_of("delete_room", room_id=room)
    assert (error.code, error.reason) == (-32003, "room_not_found")


async def test_a_deleted_room_can_be_created_again_empty(chat: Harness) -> None:
    admin = await chat.admin_client()
    _, member = await chat.user_client("phoenix")
    name = unique("phoenix")
    room = await in_room(chat, name, member)
    await member.call("send_message", room_id=room, text="before")
    await admin.call("delete_room", room_id=room)
    await member.params_of("room_deleted", room_id=room)
    again = await member.call("join_room", room_name=name)
    assert again["created"] is True
    assert again["user_count"] == 1
