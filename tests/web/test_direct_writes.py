"""Direct writes (chat_web.ws.direct): pending frames leave in one write, framed once, and
unsent bytes past `server.send_queue_bytes` close with 4008. The socket is a recorder."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from chat_core.protocol.codes import Close
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

    def write_frames(self, data: bytes) -> bool:
        self.writes.append(data)
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
