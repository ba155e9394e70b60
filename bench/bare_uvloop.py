"""Baseline for the fan-out: a plain uvloop server writing pre-framed, coalesced bytes.

    .venv/bin/python bench/bare_uvloop.py [--port 0]

No framework, no ASGI: an asyncio.Protocol that answers the WebSocket upgrade (RFC 6455), reads
masked client text frames, and on `send_message` encodes one `message_received` notification,
frames it once and appends the same bytes to every open socket's pending list; each socket's
list leaves in one `transport.write` from a callback at the end of the turn (what the chat does
with direct writes, without anything else). A socket whose transport holds more than 4 MiB
unsent is dropped. Prints `listening on http://HOST:PORT` on stderr once ready.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import socket
import struct
import sys
from datetime import UTC, datetime
from typing import Any

import msgspec
import uvloop
from websockets.utils import accept_key

UNSENT_LIMIT = 4 * 1024 * 1024
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode
PEERS: set[_Peer] = set()
SEQ = itertools.count(1)


def text_frame(payload: bytes) -> bytes:
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65_536:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


class _Peer(asyncio.Protocol):
    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.open = False
        self.out: list[bytes] = []
        self.scheduled = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        PEERS.discard(self)
        self.transport = None

    def send(self, wire: bytes) -> None:
        self.out.append(wire)
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.scheduled = False
        out, self.out = self.out, []
        t = self.transport
        if t is None or t.is_closing():
            return
        t.write(out[0] if len(out) == 1 else b"".join(out))
        if t.get_write_buffer_size() > UNSENT_LIMIT:
            t.close()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.open:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buf = self.buf[:end].decode("latin-1"), self.buf[end + 4 :]
            key = next(
                line.split(":", 1)[1].strip()
                for line in head.split("\r\n")
                if line.lower().startswith("sec-websocket-key:")
            )
            accept = accept_key(key)
            assert self.transport is not None
            self.transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept.encode() + b"\r\n\r\n"
            )
            self.open = True
            PEERS.add(self)
        self._frames()

    def _frames(self) -> None:
        buf = self.buf
        while len(buf) >= 6:
            opcode, size = buf[0] & 0x0F, buf[1] & 0x7F
            at = 2
            if size == 126:
                size, at = int.from_bytes(buf[2:4]), 4
            elif size == 127:
                size, at = int.from_bytes(buf[2:10]), 10
            if len(buf) < at + 4 + size:
                break
            mask = buf[at : at + 4]
            body = bytes(b ^ mask[i % 4] for i, b in enumerate(buf[at + 4 : at + 4 + size]))
            buf = buf[at + 4 + size :]
            if opcode == 0x8:
                if self.transport is not None:
                    self.transport.write(b"\x88\x02\x03\xe8")
                    self.transport.close()
                break
            if opcode == 0x1:
                self._request(body)
        self.buf = buf

    def _request(self, body: bytes) -> None:
        request = _decode(body)
        params = request.get("params") or {}
        seq = next(SEQ)
        now = datetime.now(UTC)
        if request.get("method") == "send_message":
            notice = {
                "jsonrpc": "2.0",
                "method": "message_received",
                "params": {
                    "seq": seq,
                    "message_id": seq,
                    "room_id": params.get("room_id"),
                    "username": "sender",
                    "text": params.get("text", ""),
                    "timestamp": now,
                },
            }
            wire = text_frame(_encode(notice))  # framed once for every recipient
            for peer in PEERS:
                peer.send(wire)
        if "id" in request:
            result = {"message_id": seq, "seq": seq, "timestamp": now, "duplicate": False}
            self.send(
                text_frame(_encode({"jsonrpc": "2.0", "id": request["id"], "result": result}))
            )


async def _serve(port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    server = await asyncio.get_running_loop().create_server(_Peer, sock=sock, backlog=4096)
    host, bound = sock.getsockname()[:2]
    print(f"bare-uvloop listening on http://{host}:{bound}", file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    uvloop.run(_serve(args.port))


if __name__ == "__main__":
    main()
