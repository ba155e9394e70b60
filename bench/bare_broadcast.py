"""Baseline servers for bench/run.py: bare Litestar + uvicorn, no journal, no auth.

    .venv/bin/python bench/bare_broadcast.py --mode broadcast|echo|room [--port 0]

Speaks just enough of docs/protocol.md for the load generator (bench/loadgen.py) to drive it
exactly as it drives `chat-web serve`:

- `/ws` accepts any socket (no token check), sends `connection_established`, then answers
  every JSON-RPC request with a result of the same shape as the chat server's.
- broadcast: `send_message` also encodes one `message_received` notification and puts it on
  every connection's bounded queue (1024, overflow closes with 4008), drained by one writer
  task per connection, as the chat server's hub does.
- echo: `send_message` is parsed and answered, nothing else (the durable-command baseline).
- room: as echo, and the notification also goes to every connection that has sent to the
  same room_id (a connection joins the room of its first send_message): the chat server's
  frames for a durable command, without its journal, auth or rules. A client that connects
  with `?batch=1` gets what is queued for it as one array frame, as from the chat's writer.
- `/health` answers `{"status": "ok"}`.

Same uvicorn settings as chat_web.server (websockets-sansio, per-message-deflate off, uvloop,
httptools, no access log). Prints `listening on http://HOST:PORT` on stderr once ready.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import socket
import sys
from datetime import UTC, datetime
from typing import Any

import msgspec
import uvicorn
import uvloop
from litestar import Litestar, WebSocket, get, websocket

QUEUE_LIMIT = 1024
MAX_FRAME = 65536
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode
MODE = "broadcast"


class _Peer:
    __slots__ = ("batching", "closer", "queue", "room", "socket", "writer")

    def __init__(self, sock: WebSocket[Any, Any, Any]) -> None:
        self.socket = sock
        self.batching = sock.query_params.get("batch") in ("1", "true")
        self.room: str | None = None
        self.queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_LIMIT)
        self.writer: asyncio.Task[None] | None = None
        self.closer: asyncio.Future[None] | None = None

    def send(self, frame: str) -> None:
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            if self.writer is not None:
                self.writer.cancel()
            self.closer = asyncio.ensure_future(self.socket.close(4008))

    async def write(self) -> None:
        with contextlib.suppress(Exception):
            queue = self.queue
            while True:
                frame = await queue.get()
                if self.batching and not queue.empty():
                    # batch=1: what is queued leaves as one array frame, as the chat's writer.
                    frames = [frame]
                    while not queue.empty():
                        frames.append(queue.get_nowait())
                    frame = "[" + ",".join(frames) + "]"
                await self.socket.send_text(frame)


PEERS: set[_Peer] = set()
ROOMS: dict[str, set[_Peer]] = {}
SEQ = itertools.count(1)
IDS = itertools.count(1)


def _answer(peer: _Peer, text: str) -> None:
    try:
        request = _decode(text)
    except msgspec.DecodeError:
        peer.send('{"jsonrpc":"2.0","id":null,"error":{"code":-32700}}')
        return
    method = request.get("method")
    params = request.get("params") or {}
    result: dict[str, Any] = {}
    if method == "send_message":
        now = datetime.now(UTC)
        seq, message_id = next(SEQ), next(IDS)
        room_id = params.get("room_id") or "general"
        result = {
            "message_id": message_id,
            "room_id": room_id,
            "seq": seq,
            "timestamp": now,
            "duplicate": False,
        }
        targets: set[_Peer] | None = None
        if MODE == "broadcast":
            targets = PEERS
        elif MODE == "room":
            if peer.room is None:
                peer.room = room_id
                ROOMS.setdefault(room_id, set()).add(peer)
            targets = ROOMS.get(room_id, set())
        if targets is not None:
            notice = {
                "jsonrpc": "2.0",
                "method": "message_received",
                "params": {
                    "seq": seq,
                    "message_id": message_id,
                    "room_id": room_id,
                    "username": "sender",
                    "text": params.get("text", ""),
                    "timestamp": now,
                },
            }
            frame = _encode(notice).decode()
            for other in targets:
                other.send(frame)
    if "id" in request:
        peer.send(_encode({"jsonrpc": "2.0", "id": request["id"], "result": result}).decode())


@websocket("/ws")
async def bare_socket(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    peer = _Peer(socket)
    PEERS.add(peer)
    peer.send(
        _encode(
            {"jsonrpc": "2.0", "method": "connection_established", "params": {"bare": True}}
        ).decode()
    )
    peer.writer = asyncio.create_task(peer.write())
    try:
        while True:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if isinstance(text, str):
                _answer(peer, text)
    finally:
        PEERS.discard(peer)
        if peer.room is not None:
            ROOMS.get(peer.room, set()).discard(peer)
        peer.writer.cancel()


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


def main() -> None:
    global MODE
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["broadcast", "echo", "room"], default="broadcast")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    MODE = args.mode
    app = Litestar(route_handlers=[bare_socket, health], logging_config=None, debug=False)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    config = uvicorn.Config(
        app,
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        ws_max_size=MAX_FRAME,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=5,
    )

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            host, port = sock.getsockname()[:2]
            print(f"bare-{MODE} listening on http://{host}:{port}", file=sys.stderr, flush=True)

    uvloop.run(_Server(config).serve(sockets=[sock]))


if __name__ == "__main__":
    main()
