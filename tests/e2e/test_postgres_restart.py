"""`chat-web serve` on a PostgreSQL journal: it starts, serves, and a restart loses nothing."""

from __future__ import annotations

import asyncio
from typing import Any

from helpers import unique


async def test_a_server_on_postgresql_keeps_everything_across_a_restart(
    start_server: Any, postgres_url: str
) -> None:
    from pg_kit import empty_journal

    await empty_journal(postgres_url)
    server = start_server({"CHAT__DATABASE__URL": postgres_url})
    assert "journal=postgresql+asyncpg://" in server.log_text()
    async with server.harness() as chat:
        alice, a = await chat.user_client("alice")
        _, b = await chat.user_client("bob")
        room = unique("Pg")
        for client in (a, b):
            await client.call("join_room", room_name=room)
        first = await a.call(
            "send_message", room_id=room.lower(), text="hello", client_msg_id="pg-1"
        )
        for i in range(5):
            await b.call("send_message", room_id=room.lower(), text=f"b{i}")
        before = await a.call("get_history", room_id=room.lower(), limit=50)
        head = await chat.journal_seq()

    assert await asyncio.to_thread(server.restart) == 0

    async with server.harness() as chat:
        assert await chat.journal_seq() == head
        a = await chat.connect(alice.token)
        after = await a.call("get_history", room_id=room.lower(), limit=50)
        assert after == before
        assert [m["text"] for m in after["messages"]] == ["hello"] + [f"b{i}" for i in range(5)]
        retry = await a.call(
            "send_message", room_id=room.lower(), text="hello", client_msg_id="pg-1"
        )
        assert retry == {**first, "duplicate": True}
        new = await a.call("send_message", room_id=room.lower(), text="after the restart")
        assert new["seq"] == head + 1
    assert not server.tracebacks(), server.log_text()
