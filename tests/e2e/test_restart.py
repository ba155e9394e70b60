"""Shutdown and restart on the same data directory: the journal is the state (sections 5, 6)."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from helpers import (
    Client,
    ConnectionLost,
    Harness,
    RpcError,
    durable,
    handshake_outcome,
    unique,
)

REFUSED_BANNED = {("http", 403), ("close", 4403)}


async def test_sigterm_closes_sockets_as_going_away_and_exits_0(start_server: Any) -> None:
    server = start_server()
    async with server.harness() as chat:
        _, client = await chat.user_client("bye")
        # Stopped from a thread, so this loop keeps answering the server's close frame.
        assert await asyncio.to_thread(server.stop) == 0
        assert await client.wait_closed() in (1001, 1012)
    assert not server.tracebacks(), server.log_text()


async def test_ctrl_c_stops_the_server_with_exit_code_0(start_server: Any) -> None:
    server = start_server()
    async with server.harness() as chat:
        _, client = await chat.user_client("int")
        assert await asyncio.to_thread(server.stop, signal.SIGINT) == 0
        assert await client.wait_closed() in (1001, 1012)


async def snapshot(client: Client, room_id: str) -> dict[str, Any]:
    rooms = (await client.call("list_rooms"))["rooms"]
    return {
        "whoami": await client.call("whoami"),
        # online_count depends on who is connected, not on the journal.
        "rooms": [{k: v for k, v in r.items() if k != "online_count"} for r in rooms],
        "members": [
            {k: v for k, v in m.items() if k != "online"}
            for m in (await client.call("list_members", room_id=room_id))["members"]
        ],
        "history": await client.call("get_history", room_id=room_id, limit=200),
    }


async def test_a_restart_keeps_accounts_rooms_memberships_bans_history_and_tokens(
    start_server: Any,
) -> None:
    server = start_server()
    async with server.harness() as chat:
        admin = await chat.admin_client()
        alice, a = await chat.user_client("alice")
        bob, b = await chat.user_client("bob")
        banned, banned_client = await chat.user_client("banned")
        promoted = await chat.new_user("promoted")
        name = unique("Keep")
        room = name.lower()
        for client in (a, b, banned_client):
            await client.call("join_room", room_name=name)
        await a.call("join_room", room_name=unique("side"))
        gone = unique("gone")
        await a.call("join_room", room_name=gone)
        await admin.call("delete_room", room_id=gone.lower())
        first = await a.call("send_message", room_id=room, text="hello", client_msg_id="idem-1")
        for i in range(3):
            await b.call("send_message", room_id=room, text=f"b{i}")
        await admin.call("ban_user", target_username=banned.username, reason="restart test")
        await admin.call("set_role", target_username=promoted.username, role="moderator")
        await b.call("send_message", room_id=room, text="last before a leaves")
        await a.params_of("message_received", text="last before a leaves")
        since = max(seq for _, seq in durable(a.notifications))
        before = await snapshot(a, room)
        await a.close()
        missed = await b.call("send_message", room_id=room, text="while a was away")
        head = await chat.journal_seq()
        max_message_id = missed["message_id"]

    assert await asyncio.to_thread(server.restart) == 0

    async with server.harness() as chat:
        # The old token still works: the secret was kept in the data directory.
        a = await chat.connect(alice.token, since=since)
        assert a.established["params"]["resumed"] is True
        replayed = await a.params_of("message_received", text="while a was away")
        assert replayed["seq"] == missed["seq"]
        after = await snapshot(a, room)
        assert after["whoami"]["rooms"] == before["whoami"]["rooms"]
        assert after["rooms"] == before["rooms"]
        assert gone.lower() not in [r["room_id"] for r in after["rooms"]]
        assert after["members"] == before["members"]
        assert after["history"]["messages"][:-1] == before["history"]["messages"]
        assert after["history"]["messages"][-1]["text"] == "while a was away"

        assert (await chat.login_response(alice.username, alice.password)).status_code == 200
        assert (await chat.login_response(bob.username, bob.password)).status_code == 200
        login = await chat.login_response(banned.username, banned.password)
        assert (login.status_code, login.json()["reason"]) == (403, "banned")
        assert await handshake_outcome(chat.ws_url, banned.token) in REFUSED_BANNED
        promoted_client = await chat.connect(promoted)
        assert (await promoted_client.call("whoami"))["role"] == "moderator"

        # Seqs continue upward, message ids are never reused, idempotency keys survive.
        assert await chat.journal_seq() >= head
        new = await a.call("send_message", room_id=room, text="after the restart")
        assert new["seq"] > head
        assert new["message_id"] > max_message_id
        retry = await a.call("send_message", room_id=room, text="hello", client_msg_id="idem-1")
        assert retry == {**first, "duplicate": True}


async def test_every_acknowledged_message_survives_a_shutdown_in_flight(
    start_server: Any,
) -> None:
    server = start_server()
    async with server.harness() as chat:
        user, client = await chat.user_client("inflight")
        room = unique("flight").lower()
        await client.call("join_room", room_name=room)
        acked: list[dict[str, Any]] = []
        enough = asyncio.Event()

        async def send(i: int) -> None:
            try:
                acked.append(await client.call("send_message", room_id=room, text=f"f{i}"))
            except (ConnectionLost, RpcError):
                return
            if len(acked) >= 10:
                enough.set()

        tasks = [asyncio.create_task(send(i)) for i in range(300)]
        async with asyncio.timeout(10):
            await enough.wait()
        assert await asyncio.to_thread(server.stop) == 0
        await asyncio.gather(*tasks)
    assert len(acked) >= 10

    server.start()
    async with Harness(server.url, server.ws_url) as chat:
        token = await chat.login(user.username, user.password)
        again = await chat.connect(token)
        stored: set[int] = set()
        before: int | None = None
        while True:
            params: dict[str, Any] = {"room_id": room, "limit": 200}
            if before is not None:
                params["before_seq"] = before
            page = await again.call("get_history", **params)
            stored |= {m["message_id"] for m in page["messages"]}
            if not page["has_more"]:
                break
            before = page["messages"][0]["seq"]
        missing = {r["message_id"] for r in acked} - stored
        assert not missing, f"acknowledged but lost: {sorted(missing)}"


async def test_a_deleted_default_room_stays_deleted_across_restarts(start_server: Any) -> None:
    server = start_server()
    async with server.harness() as chat:
        admin = await chat.admin_client()
        rooms = [r["room_id"] for r in (await admin.call("list_rooms"))["rooms"]]
        assert "general" in rooms  # made on the first start
        await admin.call("delete_room", room_id="general")
        head = await chat.journal_seq()
    assert server.restart() == 0
    async with server.harness() as chat:
        # No new room_created (nor anything else): the restart appended nothing to the journal.
        assert await chat.journal_seq() == head
        admin = await chat.admin_client()
        rooms = [r["room_id"] for r in (await admin.call("list_rooms"))["rooms"]]
        assert "general" not in rooms, rooms


async def test_demo_accounts_do_not_outlive_their_setting(start_server: Any) -> None:
    server = start_server()
    async with server.harness() as chat:
        alice_token = await chat.login("alice", "alice123")
        bob_token = await chat.login("bob", "bob123")
        assert (await handshake_outcome(server.ws_url, alice_token))[0] == "frame"
    server.extra_env["CHAT__ADMIN__SEED_DEMO_USERS"] = "false"
    assert server.restart() == 0
    async with server.harness() as chat:
        for name, password in (("alice", "alice123"), ("admin", "admin123")):
            response = await chat.login_response(name, password)
            assert response.status_code == 401, response.text
            assert response.json()["reason"] == "invalid_credentials"
        # Tokens issued before the restart are refused at the handshake.
        for token in (alice_token, bob_token):
            assert await handshake_outcome(server.ws_url, token) == ("http", 401)
        head = await chat.journal_seq()
    # Disabled once, for good: the next start has nothing to record.
    assert server.restart() == 0
    async with server.harness() as chat:
        assert await chat.journal_seq() == head
        assert (await chat.login_response("alice", "alice123")).status_code == 401
    # The setting back on: the demo users log in again.
    server.extra_env["CHAT__ADMIN__SEED_DEMO_USERS"] = "true"
    assert server.restart() == 0
    async with server.harness() as chat:
        token = await chat.login("alice", "alice123")
        assert (await handshake_outcome(server.ws_url, token))[0] == "frame"
