"""Socket-free tests of chat_web's connection (queue, writer, bounds) and hub (fan-out,
presence, turns): the ASGI socket is a recorder, everything else is the real code."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from chat_core.domain import events as e
from chat_core.domain.evolve import evolve
from chat_core.domain.state import initial_state
from chat_core.processor import Committed
from chat_core.protocol.codes import Close
from chat_kit import T0
from chat_web.hub.fanout import Hub
from chat_web.ws.connection import MAX_BATCH, Connection


class RecordingSocket:
    """Stands in for the ASGI WebSocket: records what the connection sends it."""

    def __init__(self) -> None:
        self.frames: list[str] = []
        self.close_code: int | None = None
        self.changed = asyncio.Event()

    async def send(self, event: dict[str, Any]) -> None:
        if event["type"] == "websocket.send":
            self.frames.append(event["text"])
        elif event["type"] == "websocket.close":
            self.close_code = event["code"]
        self.changed.set()

    async def wait_for(self, done: Any, within: float = 2.0) -> None:
        async with asyncio.timeout(within):
            while not done():
                self.changed.clear()
                await self.changed.wait()


async def _nothing() -> None:
    return None


def connection(
    name: str, *, limit: int = 1024, queue_bytes: int = 0, batching: bool = False
) -> tuple[Connection, RecordingSocket]:
    socket = RecordingSocket()
    conn = Connection(
        socket,  # type: ignore[arg-type]
        connection_id=f"c-{name}",
        username=name,
        key=name.lower(),
        address="127.0.0.1",
        current_room=None,
        queue_limit=limit,
        queue_bytes=queue_bytes,
        batching=batching,
    )
    return conn, socket


async def test_frames_leave_in_the_order_they_were_queued() -> None:
    conn, socket = connection("ann")
    conn.start_writer(_nothing)
    for i in range(100):
        conn.send(f'{{"n":{i}}}')
    await socket.wait_for(lambda: len(socket.frames) == 100)
    assert [json.loads(f)["n"] for f in socket.frames] == list(range(100))
    await conn.finish()


async def test_a_full_queue_in_frames_or_in_bytes_closes_with_4008() -> None:
    by_count, counted = connection("cnt", limit=3)
    by_bytes, weighed = connection("big", queue_bytes=1000)
    # No writer yet: everything stays queued, as for a client that reads nothing.
    for i in range(4):
        by_count.send(f'{{"n":{i}}}')
    by_bytes.send('"' + "x" * 600 + '"')
    assert not by_bytes.closing
    by_bytes.send('"' + "y" * 600 + '"')
    for conn, socket in ((by_count, counted), (by_bytes, weighed)):
        await socket.wait_for(lambda s=socket: s.close_code is not None)
        assert socket.close_code == Close.SLOW_READER and socket.frames == []
        assert conn.queued_bytes == 0  # what was queued is freed at once
        await conn.finish()


async def test_a_batching_client_gets_what_is_queued_as_one_array() -> None:
    conn, socket = connection("bat", batching=True)
    for i in range(MAX_BATCH + 10):
        conn.send(f'{{"n":{i}}}')
    conn.start_writer(_nothing)
    await socket.wait_for(lambda: sum(_count(f) for f in socket.frames) == MAX_BATCH + 10)
    assert [_count(f) for f in socket.frames] == [MAX_BATCH, 10]
    assert conn.queued_bytes == 0
    await conn.finish()


def _count(frame: str) -> int:
    value = json.loads(frame)
    return len(value) if isinstance(value, list) else 1


async def test_close_after_queued_writes_the_queue_first() -> None:
    conn, socket = connection("kick")
    conn.send('{"bye":1}')
    conn.close_after_queued(4001)
    conn.send('{"late":1}')  # closing: nothing more is queued
    conn.start_writer(_nothing)
    await socket.wait_for(lambda: socket.close_code is not None)
    assert socket.frames == ['{"bye":1}'] and socket.close_code == 4001
    await conn.finish()


def _state_with_room(*names: str) -> Any:
    state = initial_state()
    events: list[e.Event] = [
        e.AccountRegistered(username=name, password_hash="x") for name in names
    ]
    events.append(e.RoomCreated(room_id="lobby", room_name="lobby", created_by=names[0]))
    events += [e.UserJoined(room_id="lobby", username=name) for name in names]
    for seq, event in enumerate(events, start=1):
        state = evolve(state, e.Recorded(seq=seq, at=T0, actor="system", event=event))
    return state


async def test_presence_lingers_so_a_quick_reconnect_is_no_change() -> None:
    state = _state_with_room("ann", "bob")
    hub = Hub(typing_timeout=5.0, presence_linger=0.05, committed=Committed(state))
    watcher, seen = connection("bob")
    watcher.start_writer(_nothing)
    hub.register(watcher, state)
    first, _ = connection("ann")
    hub.register(first, state)
    await seen.wait_for(lambda: len(seen.frames) == 1)
    assert json.loads(seen.frames[0])["params"] == {"username": "ann", "online": True}
    hub.unregister(first)
    again, _ = connection("ann")
    hub.register(again, state)  # back within the linger: nobody is told anything
    assert hub.is_online("ann")
    hub.unregister(again)
    assert hub.is_online("ann")  # lingering
    await seen.wait_for(lambda: len(seen.frames) == 2)
    assert json.loads(seen.frames[1])["params"] == {"username": "ann", "online": False}
    assert not hub.is_online("ann")
    await watcher.finish()


async def test_a_user_with_several_connections_takes_turns() -> None:
    hub = Hub(typing_timeout=5.0)
    state = _state_with_room("ann")
    one, _ = connection("ann")
    hub.register(one, state)
    assert hub.gate("ann") is None  # one socket: its frames are already one at a time
    two, _ = connection("ann")
    hub.register(two, state)
    gate = hub.gate("ann")
    assert isinstance(gate, asyncio.Lock) and hub.gate("ann") is gate
    hub.unregister(two)
    hub.unregister(one)
    assert hub.gate("ann") is None


@pytest.mark.parametrize("count", [1, 3])
async def test_send_to_reaches_every_connection_of_each_user_once(count: int) -> None:
    hub = Hub(typing_timeout=5.0)
    state = _state_with_room("ann", "bob")
    sockets = []
    for _ in range(count):
        conn, socket = connection("ann")
        conn.start_writer(_nothing)
        hub.register(conn, state)
        sockets.append((conn, socket))
    hub.send_to(["ann", "nobody"], '{"hello":1}')
    for conn, socket in sockets:
        await socket.wait_for(lambda s=socket: '{"hello":1}' in s.frames)
        assert socket.frames.count('{"hello":1}') == 1
        await conn.finish()
