"""Direct writes (chat_web.ws.direct): pending frames leave in one write, framed once, and
unsent bytes past `server.send_queue_bytes` close with 4008, and answers leave with their
commit's deliveries. The socket is a recorder."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterable
from typing import Any

from frames_kit import WITHIN, FakeSocket, World, serve

from chat_core.domain import events as e
from chat_core.domain.evolve import evolve
from chat_core.domain.state import initial_state
from chat_core.processor import Committed, Delivery
from chat_core.protocol.codes import Close
from chat_kit import T0
from chat_web.hub.fanout import Hub
from chat_web.ws.connection import Connection
from chat_web.ws.direct import text_frame


class RecordingSocket:
    """Stands in for the ASGI WebSocket: only the close goes through it."""

    def __init__(self) -> None:
        self.close_code: int | None = None

    async def send(self, event: dict[str, Any]) -> None:
        assert event["type"] == "websocket.close", event
        self.close_code = event["code"]


async def _nothing() -> None:
    return None


class RecordingWriter:
    """Stands in for DirectWebSocketProtocol: records each write, holds `unsent` bytes."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.unsent = 0
        self.written = asyncio.Event()

    def write_frames(self, data: bytes) -> bool:
        self.writes.append(data)
        self.written.set()
        self.unsent += len(data)  # the peer reads nothing: all of it stays in the transport
        return True

    def unsent_bytes(self) -> int:
        return self.unsent


def _texts(data: bytes) -> list[str]:
    """The text frames in `data`, each checked whole (FIN) and unmasked, as a client reads."""
    texts = []
    at = 0
    while at < len(data):
        assert data[at] == 0x81  # FIN, text
        size = data[at + 1]
        at += 2
        assert size & 0x80 == 0  # a server never masks
        if size == 126:
            size, at = int.from_bytes(data[at : at + 2]), at + 2
        elif size == 127:
            size, at = int.from_bytes(data[at : at + 8]), at + 8
        texts.append(data[at : at + size].decode())
        at += size
    return texts


def _connection(batching: bool = False, queue_bytes: int = 0) -> tuple[Connection, RecordingWriter]:
    writer = RecordingWriter()
    conn = Connection(
        RecordingSocket(),  # type: ignore[arg-type]
        connection_id="c-d",
        username="dee",
        key="dee",
        address="127.0.0.1",
        current_room=None,
        queue_limit=1024,
        queue_bytes=queue_bytes,
        batching=batching,
        direct=writer,
    )
    return conn, writer


async def test_what_a_turn_queues_leaves_in_one_write_one_frame_each() -> None:
    conn, writer = _connection()
    conn.start_writer(_nothing)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    sizes = (3, 200, 70_000)  # the three header lengths of RFC 6455
    for n in sizes:
        text = json.dumps({"n": "x" * n})
        conn.send(text, text_frame(text.encode()))
    assert writer.writes == []  # nothing before the end of the turn
    await asyncio.sleep(0)
    assert len(writer.writes) == 1
    assert [len(json.loads(t)["n"]) for t in _texts(writer.writes[0])] == list(sizes)
    conn.send('{"lone":1}')  # a lone message leaves at the end of its turn
    await asyncio.sleep(0)
    assert _texts(writer.writes[1]) == ['{"lone":1}']
    await conn.finish()


async def test_a_batching_client_still_gets_one_array_frame() -> None:
    conn, writer = _connection(batching=True)
    for i in range(3):
        conn.send(f'{{"n":{i}}}')
    conn.start_writer(_nothing)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert [_texts(w) for w in writer.writes] == [['[{"n":0},{"n":1},{"n":2}]']]
    await conn.finish()


async def test_unsent_bytes_past_the_bound_close_with_4008() -> None:
    conn, writer = _connection(queue_bytes=1000)
    conn.start_writer(_nothing)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    writer.unsent = 900  # the kernel took nothing: the transport holds it
    conn.send('"' + "x" * 200 + '"')
    socket = conn.socket
    assert isinstance(socket, RecordingSocket)
    await asyncio.sleep(0.01)
    # 900 + 202 bytes unsent once written: past the bound, closed, nothing more is queued.
    assert socket.close_code == Close.SLOW_READER and conn.closing
    assert len(writer.writes) == 1
    await conn.finish()


async def test_a_fan_out_schedules_one_callback_for_every_socket() -> None:
    conns = [_connection() for _ in range(3)]
    for conn, _ in conns:
        conn.start_writer(_nothing)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    scheduled: list[object] = []
    call_soon = loop.call_soon

    def counting(callback: Any, *args: Any, **kwargs: Any) -> asyncio.Handle:
        scheduled.append(callback)
        return call_soon(callback, *args, **kwargs)

    loop.call_soon = counting  # type: ignore[method-assign]
    try:
        for i in range(2):
            wire = text_frame(f'{{"n":{i}}}'.encode())
            for conn, _ in conns:
                conn.send(f'{{"n":{i}}}', wire)
    finally:
        del loop.call_soon  # back to the class's method
    assert len(scheduled) == 1  # not one per socket
    await asyncio.sleep(0)
    for conn, writer in conns:
        assert [_texts(w) for w in writer.writes] == [['{"n":0}', '{"n":1}']]
        await conn.finish()


def _lobby(*names: str) -> Any:
    state = initial_state()
    events: list[e.Event] = [e.AccountRegistered(username=n, password_hash="x") for n in names]
    events.append(e.RoomCreated(room_id="lobby", room_name="lobby", created_by=names[0]))
    events += [e.UserJoined(room_id="lobby", username=n) for n in names]
    for seq, event in enumerate(events, start=1):
        state = evolve(state, e.Recorded(seq=seq, at=T0, actor="system", event=event))
    return state


async def test_an_ack_leaves_with_its_deliveries_even_after_an_earlier_send_of_the_turn() -> None:
    """The processor resolves a command's future (its answer is written by a callback) and
    then publishes; the deliveries must not leave in a write scheduled before that callback."""
    before = _lobby("ann", "bob")
    hub = Hub(typing_timeout=5.0, committed=Committed(before))
    conn, writer = _connection()
    conn.key, conn.username = "ann", "ann"
    conn.start_writer(_nothing)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    hub.register(conn, before)
    conn.send('{"early":1}')  # something else for this socket earlier in the same turn
    answered = asyncio.get_running_loop().create_future()
    answered.add_done_callback(lambda _: conn.send('{"id":7,"result":{}}'))
    answered.set_result(None)  # as CommandProcessor._resolve, then it publishes:
    sent = e.MessageSent(message_id=1, room_id="lobby", username="ann", text="hi")
    recorded = e.Recorded(seq=99, at=T0, actor="ann", event=sent)
    hub.publish([Delivery(recorded, before, evolve(before, recorded))], before)
    for _ in range(3):
        await asyncio.sleep(0)
    texts = [_texts(w) for w in writer.writes]
    ack = next(w for w in texts if '{"id":7,"result":{}}' in w)
    assert json.loads(ack[-2])["method"] == "message_received"  # the delivery, then the ack
    assert texts[0][0] == '{"early":1}'  # order kept
    await conn.finish()


async def test_a_batch_of_writes_is_answered_in_the_same_write_as_its_deliveries() -> None:
    """The real reader and processor: a batch frame's writes share one commit, and its one
    array answer leaves the sender's socket together with that commit's deliveries."""
    w = await World.open()
    socket = FakeSocket()
    conn, writer = _connection()
    conn.socket = socket  # type: ignore[assignment]
    conn.key = conn.username = "bob"
    conn.start_writer(_nothing)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    w.rt.hub.register(conn, w.processor.state)
    serving = asyncio.create_task(serve(w.rt, socket, conn, int(time.time()) + 3600))
    try:
        batch = [
            {"jsonrpc": "2.0", "id": i, "method": "send_message", "params": p}
            for i, p in enumerate([{"room_id": "general", "text": f"m{i}"} for i in range(3)])
        ]
        socket.put_text(json.dumps(batch))
        async with asyncio.timeout(WITHIN):
            while not any(b"[{" in data for data in writer.writes):
                writer.written.clear()
                await writer.written.wait()
        (holding,) = [_texts(data) for data in writer.writes if b"[{" in data]
        methods = [json.loads(t).get("method") for t in holding[:-1]]
        assert methods == ["message_received"] * 3  # the commit's deliveries, then the answer
        assert [a["id"] for a in json.loads(holding[-1])] == [0, 1, 2]
    finally:
        socket.inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
        async with asyncio.timeout(WITHIN):
            await serving
        await w.close()


class _StuckSocket(RecordingSocket):
    """A peer that never takes the close frame."""

    async def send(self, event: dict[str, Any]) -> None:
        await asyncio.Event().wait()


async def test_cancelling_a_finish_that_waits_for_a_stuck_close_is_not_swallowed() -> None:
    conn, _ = _connection()
    conn.socket = _StuckSocket()  # type: ignore[assignment]
    conn.start_writer(_nothing)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    conn.abort(Close.SLOW_READER)  # the close task now waits on the stuck peer
    finishing = asyncio.create_task(conn.finish())
    await asyncio.sleep(0)
    finishing.cancel()
    async with asyncio.timeout(WITHIN):  # not CLOSE_TIMEOUT later, and not as if it finished
        with contextlib.suppress(asyncio.CancelledError):
            await finishing
    assert finishing.cancelled()


def _message(seq: int, username: str, before: Any) -> Delivery:
    sent = e.MessageSent(message_id=seq, room_id="lobby", username=username, text=f"m{seq}")
    recorded = e.Recorded(seq=seq, at=T0, actor=username, event=sent)
    return Delivery(recorded, before, evolve(before, recorded))


def _messages(seqs: Iterable[int], username: str, before: Any) -> list[Delivery]:
    """Messages of `username` to the lobby, one after the other from `before`."""
    deliveries = []
    for seq in seqs:
        deliveries.append(_message(seq, username, before))
        before = deliveries[-1].after
    return deliveries


async def _hub_with(*names: str) -> tuple[Hub, Any, dict[str, RecordingWriter]]:
    before = _lobby(*names)
    hub = Hub(typing_timeout=5.0, committed=Committed(before))
    writers = {}
    for name in names:
        conn, writer = _connection()
        conn.key = conn.username = name
        conn.start_writer(_nothing)
        writers[name] = writer
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        hub.register(conn, before)
    await asyncio.sleep(0)  # the presence frames of the registrations leave
    for writer in writers.values():
        writer.writes.clear()
    return hub, before, writers


def _received(writer: RecordingWriter) -> list[Any]:
    return [json.loads(t) for data in writer.writes for t in _texts(data)]


async def test_a_commit_of_messages_to_one_room_leaves_each_socket_in_order_in_one_write() -> None:
    hub, before, writers = await _hub_with("ann", "bob", "cid")
    deliveries = _messages(range(100, 104), "ann", before)
    hub.publish(deliveries, deliveries[-1].after)
    await asyncio.sleep(0)
    for writer in writers.values():
        assert len(writer.writes) == 1
        assert [m["params"]["seq"] for m in _received(writer)] == [100, 101, 102, 103]
    assert hub.delivered == 12


async def test_a_typing_notice_between_two_messages_keeps_its_place() -> None:
    hub, before, writers = await _hub_with("ann", "bob", "cid")
    hub.typing.start("ann", "ann", "lobby")  # ann types; her message ends it
    await asyncio.sleep(0)
    for writer in writers.values():
        writer.writes.clear()
    first = _message(100, "bob", before)
    second = _message(101, "ann", first.after)  # ann's: stops her typing
    third = _message(102, "bob", second.after)
    hub.publish([first, second, third], third.after)
    await asyncio.sleep(0)
    seen = [m["params"].get("seq", m["method"]) for m in _received(writers["cid"])]
    assert seen == [100, 101, "user_stopped_typing", 102]
    hub.typing.cancel_all()


async def test_a_run_past_the_send_queue_closes_with_4008() -> None:
    hub, before, writers = await _hub_with("ann", "bob")
    (bob,) = hub.connections_of("bob")
    bob._max_out = 2  # a queue of 2 frames: a run of 3 overflows it
    deliveries = _messages(range(100, 103), "ann", before)
    hub.publish(deliveries, deliveries[-1].after)
    await asyncio.sleep(0.01)
    socket = bob.socket
    assert isinstance(socket, RecordingSocket)
    assert socket.close_code == Close.SLOW_READER and bob.closing
    assert writers["bob"].writes == []  # nothing of the run was written
    assert [m["params"]["seq"] for m in _received(writers["ann"])] == [100, 101, 102]
