"""Resume under churn: connections that drop and resume at random points while others chat.

Each observing user has two connections: a twin that never drops, and a churning one that
closes (cleanly or by dropping the TCP connection) after a random number of notifications and
reconnects with `since=<last seq it saw>`. The durable notifications the churning connections
received, put end to end, must equal the twin's stream exactly: same events, same order, no
gap, no duplicate.

Sizes: RELIABILITY_CHURN_OBSERVERS (3), RELIABILITY_CHURN_CHATTERS (3),
RELIABILITY_CHURN_MESSAGES (60 per chatter).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

from helpers import Client, ConnectionLost, Harness, User, unique
from reliability_kit import seed, size


def _durable(notifications: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (n["method"], n["params"])
        for n in notifications
        if n["method"] != "connection_established" and n["params"].get("seq") is not None
    ]


def _last_seq(stream: list[tuple[str, dict[str, Any]]], default: int) -> int:
    return stream[-1][1]["seq"] if stream else default


async def _chatter(chat: Harness, user: User, room: str, count: int, rng: random.Random) -> None:
    client = await chat.connect(user)
    await client.call("join_room", room_name=room)
    for i in range(count):
        if rng.random() < 0.05:
            # Other kinds of durable events: a new room (to everyone), a leave and a re-join.
            await client.call("join_room", room_name=unique("side"))
            await client.call("join_room", room_name=room)
        elif rng.random() < 0.05:
            await client.call("leave_room", room_id=room)
            await client.call("join_room", room_name=room)
        await client.call("send_message", room_id=room, text=f"{user.username} {i}")
    await client.close()


async def _churn(
    chat: Harness, user: User, since: int, stop: asyncio.Event, rng: random.Random
) -> tuple[list[tuple[str, dict[str, Any]]], Client, int]:
    """Drop and resume until `stop`; (the stream so far, the last connection, resumes)."""
    stream: list[tuple[str, dict[str, Any]]] = []
    resumes = 0
    while True:
        client = await chat.connect(user, since=_last_seq(stream, since))
        assert client.established["params"]["resumed"] is True
        if stop.is_set():
            return stream, client, resumes
        want = rng.randint(0, 15)
        with contextlib.suppress(AssertionError):
            for _ in range(want):
                await client.next_notification(timeout=0.5 if stop.is_set() else 5)
        if rng.random() < 0.5:
            await client.close()
        else:
            # Drop without a closing handshake, as a lost network would.
            client.ws.transport.abort()
            with contextlib.suppress(ConnectionLost, TimeoutError, AssertionError):
                await client.wait_closed()
        received = _durable(client.notifications)
        if stream and received:
            assert received[0][1]["seq"] > stream[-1][1]["seq"], "a resumed event was repeated"
        assert not [n for n in client.notifications if n["method"] == "resync_required"]
        stream += received
        resumes += 1


async def test_resumed_streams_equal_a_twin_that_never_dropped(launch: Any) -> None:
    observers = size("churn_observers", 3)
    chatters = size("churn_chatters", 3)
    messages = size("churn_messages", 60)
    rng = random.Random(seed())
    server = launch()
    room = unique("churn")
    async with server.harness() as chat:
        watchers = [await chat.new_user("watch") for _ in range(observers)]
        talkers = [await chat.new_user("talk") for _ in range(chatters)]
        twins: list[Client] = []
        for watcher in watchers:
            twin = await chat.connect(watcher)
            await twin.call("join_room", room_name=room)
            twins.append(twin)
        # The churning connections start from here; the twins' streams are compared from here.
        start = await chat.journal_seq()
        stop = asyncio.Event()
        churners = [
            asyncio.create_task(_churn(chat, watcher, start, stop, random.Random(rng.random())))
            for watcher in watchers
        ]
        talking = [
            asyncio.create_task(_chatter(chat, talker, room, messages, random.Random(rng.random())))
            for talker in talkers
        ]
        await asyncio.wait_for(asyncio.gather(*talking), 120)
        stop.set()
        results = await asyncio.wait_for(asyncio.gather(*churners), 60)
        total_resumes = 0
        compared = 0
        for watcher, twin, (stream, last, resumes) in zip(watchers, twins, results, strict=True):
            # A marker after everything: both connections see it, then the streams must agree.
            marker = await last.call("send_message", room_id=room, text="marker")
            for client in (twin, last):
                await client.params_of("message_received", seq=marker["seq"], timeout=10)
            full = stream + _durable(last.notifications)
            expected = [(m, p) for m, p in _durable(twin.notifications) if p["seq"] > start]
            assert [p["seq"] for _, p in full] == [p["seq"] for _, p in expected], watcher
            assert full == expected, watcher.username
            total_resumes += resumes
            compared += len(expected)
        print(f"\nresume under churn: resumes={total_resumes} durable events compared={compared}")
        assert total_resumes >= observers
        assert compared >= chatters * messages
