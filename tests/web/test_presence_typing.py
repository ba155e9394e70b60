"""Presence and typing: ephemeral notifications, never journaled (docs/protocol.md 4, 5).
Socket-free: the real reader, hub (presence, typing) and processor in process (frames_kit),
talked to by the end-to-end tests' own client; a close is the reader seeing the disconnect."""

from __future__ import annotations

import time
import uuid
from typing import Any

from frames_kit import InProcessChat
from rpc_client import Client, unique


async def shared_room(*clients: Client) -> str:
    room = unique("pt")
    for client in clients:
        await client.call("join_room", room_name=room)
    return room.lower()


async def sentinel(sender: Client, room_id: str, *readers: Client) -> None:
    """A marker message every reader waits for: what was sent to them earlier has arrived."""
    text = f"sentinel {uuid.uuid4().hex}"
    await sender.call("send_message", room_id=room_id, text=text)
    for reader in readers:
        await reader.params_of("message_received", room_id=room_id, text=text)


def presence_of(client: Client, username: str) -> list[bool]:
    return [p["online"] for p in client.received("presence_changed") if p["username"] == username]


# --- presence ----------------------------------------------------------------------------------


async def test_co_members_see_a_user_come_online_and_go_offline(chat: InProcessChat) -> None:
    _, watcher = await chat.user_client("watcher")
    mover, first = await chat.user_client("mover")
    room = await shared_room(watcher, first)
    await first.close()
    offline = await watcher.params_of("presence_changed", username=mover.username)
    assert offline == {"username": mover.username, "online": False}

    again = await chat.connect(mover)
    online = await watcher.params_of("presence_changed", username=mover.username)
    assert online == {"username": mover.username, "online": True}
    members = (await watcher.call("list_members", room_id=room))["members"]
    assert {m["username"]: m["online"] for m in members}[mover.username] is True

    await again.close()
    await watcher.params_of("presence_changed", username=mover.username, online=False)
    members = (await watcher.call("list_members", room_id=room))["members"]
    assert {m["username"]: m["online"] for m in members}[mover.username] is False
    rooms = (await watcher.call("list_rooms"))["rooms"]
    online_count = [r["online_count"] for r in rooms if r["room_id"] == room]
    assert online_count == [1]


async def test_a_second_connection_keeps_a_user_online(chat: InProcessChat) -> None:
    _, watcher = await chat.user_client("watcher")
    user, first = await chat.user_client("twice")
    room = await shared_room(watcher, first)
    second = await chat.connect(user)
    await first.close()
    # The user is still online through `second`: no offline notice before this marker.
    await sentinel(second, room, watcher)
    assert False not in presence_of(watcher, user.username)
    members = (await watcher.call("list_members", room_id=room))["members"]
    assert {m["username"]: m["online"] for m in members}[user.username] is True
    await second.close()
    await watcher.params_of("presence_changed", username=user.username, online=False)


async def test_presence_is_not_sent_to_users_sharing_no_room(chat: InProcessChat) -> None:
    _, watcher = await chat.user_client("watcher")
    _, stranger = await chat.user_client("stranger")
    mover, first = await chat.user_client("mover")
    await shared_room(watcher, first)
    await stranger.call("join_room", room_name=unique("alone"))
    await first.close()
    await watcher.params_of("presence_changed", username=mover.username, online=False)
    # An event for everyone, sent afterwards, is the marker for the stranger.
    await (await chat.admin_client()).call("broadcast_announcement", message="marker")
    await stranger.params_of("system_announcement", message="marker")
    assert presence_of(stranger, mover.username) == []


# --- typing ------------------------------------------------------------------------------------


async def test_typing_start_and_stop_reach_the_other_members_only(chat: InProcessChat) -> None:
    typist, typing = await chat.user_client("typist")
    _, reader = await chat.user_client("reader")
    _, outsider = await chat.user_client("outsider")
    room = await shared_room(typing, reader)
    await outsider.call("join_room", room_name=unique("other"))

    assert await typing.call("start_typing", room_id=room) == {}
    started = await reader.params_of("user_started_typing", username=typist.username)
    assert started == {"room_id": room, "username": typist.username}
    assert await typing.call("stop_typing", room_id=room) == {}
    stopped = await reader.params_of("user_stopped_typing", username=typist.username)
    assert stopped == {"room_id": room, "username": typist.username}

    await sentinel(reader, room, typing)
    assert typing.received("user_started_typing") == []
    assert typing.received("user_stopped_typing") == []
    marker = unique("typing-marker")
    await (await chat.admin_client()).call("broadcast_announcement", message=marker)
    await outsider.params_of("system_announcement", message=marker)
    assert outsider.received("user_started_typing") == []


async def test_typing_defaults_to_the_current_room(chat: InProcessChat) -> None:
    typist, typing = await chat.user_client("typist")
    _, reader = await chat.user_client("reader")
    room = await shared_room(reader, typing)
    await typing.call("start_typing")
    started = await reader.params_of("user_started_typing", username=typist.username)
    assert started["room_id"] == room


async def test_sending_a_message_ends_typing(chat: InProcessChat) -> None:
    typist, typing = await chat.user_client("typist")
    _, reader = await chat.user_client("reader")
    room = await shared_room(typing, reader)
    await typing.call("start_typing", room_id=room)
    await reader.params_of("user_started_typing", username=typist.username)
    await typing.call("send_message", room_id=room, text="done typing")
    stopped = await reader.params_of("user_stopped_typing", username=typist.username)
    assert stopped["room_id"] == room


async def test_leaving_the_room_ends_typing(chat: InProcessChat) -> None:
    typist, typing = await chat.user_client("typist")
    _, reader = await chat.user_client("reader")
    room = await shared_room(typing, reader)
    await typing.call("start_typing", room_id=room)
    await reader.params_of("user_started_typing", username=typist.username)
    await typing.call("leave_room", room_id=room)
    await reader.params_of("user_stopped_typing", username=typist.username, room_id=room)


async def test_disconnecting_ends_typing(chat: InProcessChat) -> None:
    typist, typing = await chat.user_client("typist")
    _, reader = await chat.user_client("reader")
    room = await shared_room(typing, reader)
    await typing.call("start_typing", room_id=room)
    await reader.params_of("user_started_typing", username=typist.username)
    await typing.close()
    await reader.params_of("user_stopped_typing", username=typist.username, room_id=room)


async def test_a_kick_ends_typing(chat: InProcessChat) -> None:
    typist, typing = await chat.user_client("typist")
    _, reader = await chat.user_client("reader")
    room = await shared_room(typing, reader)
    await typing.call("start_typing", room_id=room)
    await reader.params_of("user_started_typing", username=typist.username)
    admin = await chat.admin_client()
    await admin.call("kick_user", target_username=typist.username, room_id=room)
    await reader.params_of("user_stopped_typing", username=typist.username, room_id=room)


async def test_typing_in_a_room_one_is_not_in_is_refused(chat: InProcessChat) -> None:
    _, owner = await chat.user_client("owner")
    _, stranger = await chat.user_client("stranger")
    room = await shared_room(owner)
    for method in ("start_typing", "stop_typing"):
        error = await stranger.error_of(method, room_id=room)
        assert (error.code, error.reason) == (-32004, "not_a_member"), method


async def test_typing_is_never_journaled(chat: InProcessChat) -> None:
    _, typing = await chat.user_client("typist")
    room = await shared_room(typing)
    before = await chat.journal_seq()
    await typing.call("start_typing", room_id=room)
    await typing.call("stop_typing", room_id=room)
    assert await chat.journal_seq() == before


async def test_typing_expires_after_the_typing_timeout(start_server: Any) -> None:
    server = start_server({"CHAT__CHAT__TYPING_TIMEOUT_SECONDS": "0.5"})
    async with server.harness() as chat:
        typist, typing = await chat.user_client("typist")
        _, reader = await chat.user_client("reader")
        room = await shared_room(typing, reader)
        started_at = time.monotonic()
        await typing.call("start_typing", room_id=room)
        await reader.params_of("user_started_typing", username=typist.username)
        stopped = await reader.params_of("user_stopped_typing", timeout=5, username=typist.username)
        elapsed = time.monotonic() - started_at
        assert stopped["room_id"] == room
        assert 0.4 <= elapsed < 4.0, elapsed
