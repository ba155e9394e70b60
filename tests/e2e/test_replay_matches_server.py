"""`chat-cli replay` on the journal of a real server session agrees with the server's own view.

The session goes through the real `chat-web serve` over WebSocket (joins, messages, a kick, a
ban, a role change, a deleted room); then `chat-cli replay --format json` reads the same data
directory, while the server still runs, and must report the rooms, members, message counts,
roles and bans the server reports through list_rooms, list_members and get_history.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from server_kit import ServerProcess

CHAT_CLI = str(Path(sys.executable).parent / "chat-cli")


async def run_replay(data_dir: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """`chat-cli replay` on a data directory, off the event loop (the clients keep reading)."""
    return await asyncio.to_thread(
        subprocess.run,
        [CHAT_CLI, "replay", "--data-dir", str(data_dir), *options],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def replay_json(data_dir: Path) -> dict[str, Any]:
    done = await run_replay(data_dir, "--format", "json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


async def message_count(client: Any, room_id: str) -> int:
    """Every message of a room, counted by paging get_history back to the start."""
    count, before = 0, None
    while True:
        params: dict[str, Any] = {"room_id": room_id, "limit": 200}
        if before is not None:
            params["before_seq"] = before
        page = await client.call("get_history", **params)
        count += len(page["messages"])
        if not page["has_more"]:
            return count
        before = page["messages"][0]["seq"]


async def test_replay_json_equals_the_servers_view_of_a_real_session(
    start_server: Any,
) -> None:
    server: ServerProcess = start_server()
    async with server.harness() as chat:
        admin = await chat.admin_client()
        moderator = await chat.new_staff("moderator")
        mod_client = await chat.connect(moderator)
        users = [await chat.new_user("r") for _ in range(3)]
        clients = [await chat.connect(user) for user in users]
        for index, client in enumerate(clients):
            await client.call("join_room", room_name="Lobby")
            if index < 2:
                await client.call("join_room", room_name="side-room")
            for n in range(3 + index):
                await client.call("send_message", text=f"m{n} from {index}", room_id="lobby")
        await admin.call("join_room", room_name="doomed")
        await admin.call("send_message", text="soon gone", room_id="doomed")
        await admin.call("delete_room", room_id="doomed")
        await mod_client.call("kick_user", target_username=users[0].username, room_id="side-room")
        await mod_client.call("ban_user", target_username=users[1].username, reason="spam")
        await admin.call("set_role", target_username=users[2].username, role="moderator")

        replayed = await replay_json(server.data_dir)
        rooms = (await admin.call("list_rooms"))["rooms"]
        assert replayed["last_seq"] == await chat.journal_seq()
        assert sorted(r["room_id"] for r in replayed["rooms"]) == [r["room_id"] for r in rooms]
        by_id = {room["room_id"]: room for room in replayed["rooms"]}
        # The admin joins every room to read its history; compare before that changes members.
        for room in rooms:
            members = (await admin.call("list_members", room_id=room["room_id"]))["members"]
            assert sorted(by_id[room["room_id"]]["members"], key=str.lower) == [
                m["username"] for m in members
            ]
            assert len(members) == room["user_count"]
            assert by_id[room["room_id"]]["room_name"] == room["room_name"]
        for room in rooms:
            await admin.call("join_room", room_name=room["room_id"])
            counted = await message_count(admin, room["room_id"])
            assert by_id[room["room_id"]]["message_count"] == counted
        assert by_id["lobby"]["message_count"] == 3 + 4 + 5

        roles = {user["username"]: user["role"] for user in replayed["users"]}
        assert roles[users[2].username] == "moderator"
        assert roles[moderator.username] == "moderator"
        assert [ban["username"] for ban in replayed["bans"]] == [users[1].username]
        assert "doomed" not in by_id

    verified = await run_replay(server.data_dir, "--verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
