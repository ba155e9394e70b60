"""Load generator for bench/run.py: client worker processes (servers and accounts: servers.py).

Clients are `websockets` asyncio connections on uvloop, spread over worker processes
(multiprocessing, spawn) so the generator is not the bottleneck. A worker opens its sockets,
reports `ready`, waits for `go` (with a monotonic end time), plays its role until then, and
reports its figures. CLOCK_MONOTONIC is system-wide on Linux, so send and receive times taken
in different processes compare directly. All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

import msgspec
from servers import CLK_TCK, raise_nofile


class _Params(msgspec.Struct):
    text: str = ""


class _Message(msgspec.Struct):
    """What the generator reads of a server message: msgspec skips the rest without building
    it, where a dict per message cost the generator (sharing the server's two cores) more."""

    method: str | None = None
    id: int | str | None = None
    error: msgspec.Raw | None = None
    params: _Params | None = None


_decode_one = msgspec.json.Decoder(_Message).decode
_decode_many = msgspec.json.Decoder(list[_Message]).decode
# A Socket.IO event packet's payload: `["message_received", {...params}]`.
_decode_event = msgspec.json.Decoder(tuple[str, _Params]).decode


# --- workers ---------------------------------------------------------------------------------


@dataclass
class Spec:
    """What one worker process does.

    role: `receive` (count/timestamp message_received), `fanout_send` (one sender at full
    speed, paced by the slowest receiver through `progress`), `closed_loop` (each socket sends
    send_message and awaits its ack, again and again), `paced_send` (`rate` posts per second,
    the text carrying the send time).
    """

    role: str
    ws_url: str
    tokens: list[str]
    rooms: list[str] = field(default_factory=list)  # per socket for senders
    index: int = 0  # receive: this worker's slot in `progress`; fanout_send: receiver count
    window: int = 256  # fanout_send: messages ahead of the slowest receiver
    inflight: int = 32  # fanout_send: unacknowledged requests
    rate: float = 10.0  # paced_send
    text: str = "hello from the benchmark, a message of a typical length for a chat line"
    # Connect with `batch=1` (docs/protocol.md section 2): the server may join queued messages into
    # one array frame. The bare baselines ignore it.
    batch: bool = False
    # Speak Socket.IO (engine.io v4 over a plain WebSocket) instead of JSON-RPC: the
    # bench/socketio/server.js baseline, loaded by the same generator as the chat.
    socketio: bool = False


class _Sock(asyncio.Protocol):
    """One client connection: `websockets`' Sans-I/O protocol on a bare asyncio transport.

    The asyncio client layer of `websockets` costs tens of microseconds of the generator's
    CPU per received frame (a queue, futures and a task switch each); here a frame is parsed
    and handled inside `data_received`. The generator shares two cores with the server, so
    what it spends per frame is taken from the server being measured (the durable scenario
    receives 5 frames per command, the echo baseline 1).

    With `socketio`, the frames are engine.io v4 packets: the server's open packet `0{...}` is
    answered with `40` (connect to the main namespace), whose `40{...}` answer opens the
    socket; `42["event",data]` is an event, `43<id>[data]` the ack of request `<id>`, and a
    ping `2` gets its pong `3`.
    """

    def __init__(
        self, uri: str, arrivals: dict[int, list[int]] | None, socketio: bool = False
    ) -> None:
        from websockets.client import ClientProtocol
        from websockets.uri import parse_uri

        self.protocol = ClientProtocol(parse_uri(uri), max_size=None)
        self.arrivals = arrivals
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.count = 0  # message_received messages
        self.frames = 0  # text frames (with batch=1, one may hold several messages)
        self.pending: dict[int, asyncio.Future[float]] = {}
        self.closed = False
        self.socketio = socketio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        from websockets.frames import Frame, Opcode

        protocol = self.protocol
        protocol.receive_data(data)
        for event in protocol.events_received():
            if type(event) is Frame:
                if event.opcode is Opcode.TEXT:
                    self.frames += 1
                    payload = event.data
                    self._frame(payload if type(payload) is bytes else bytes(payload))
                elif event.opcode is Opcode.CLOSE:
                    self.closed = True
            elif not self.opened.done():  # the handshake's response
                exc = protocol.handshake_exc
                if exc is not None:
                    self.opened.set_exception(exc)
                elif not self.socketio:  # Socket.IO: open once the namespace answers
                    self.opened.set_result(None)
        self._flush()  # pongs, the closing handshake

    def _frame(self, data: bytes) -> None:
        """Count message_received messages; resolve acks; with `arrivals`, keep the latest."""
        if self.socketio:
            self._packet(data)
        elif data[:1] == b"[":  # several messages in one frame (the client asked for batches)
            for msg in _decode_many(data):
                self._message(msg)
        elif b'"message_received"' in data:
            self._received(_decode_one(data) if self.arrivals is not None else None)
        elif self.pending and b'"id"' in data:
            self._message(_decode_one(data))

    def _packet(self, data: bytes) -> None:
        """One engine.io packet (Socket.IO)."""
        kind = data[:2]
        if kind == b"42":
            if b'"message_received"' in data:
                if self.arrivals is None:
                    self._received(None)
                else:
                    self._received(_Message(params=_decode_event(memoryview(data)[2:])[1]))
        elif kind == b"43":
            end = data.index(b"[")
            fut = self.pending.pop(int(data[2:end]), None)
            if fut is not None and not fut.done():
                fut.set_result(time.perf_counter())
        elif kind[:1] == b"2":  # ping
            self.protocol.send_text(b"3")
        elif kind[:1] == b"0":  # engine.io open: connect to the main namespace
            self.protocol.send_text(b"40")
        elif kind == b"40" and not self.opened.done():
            self.opened.set_result(None)
        elif kind[:1] == b"1" or kind == b"41":  # engine.io close, namespace disconnect
            self.closed = True

    def _message(self, msg: _Message) -> None:
        if msg.method is not None:
            if msg.method == "message_received":
                self._received(msg)
            return
        rid = msg.id
        fut = self.pending.pop(rid, None) if isinstance(rid, int) else None
        if fut is not None and not fut.done():
            if msg.error is not None:
                fut.set_exception(RuntimeError(bytes(msg.error).decode()))
            else:
                fut.set_result(time.perf_counter())

    def _received(self, msg: _Message | None) -> None:
        self.count += 1
        arrivals = self.arrivals
        if arrivals is not None and msg is not None and msg.params is not None:
            now = time.monotonic_ns()
            text = msg.params.text
            if text.startswith("lat "):
                # message number -> [latest arrival, receivers reached]
                seen = arrivals.setdefault(int(text.split()[1]), [0, 0])
                seen[0] = max(seen[0], now)
                seen[1] += 1

    def send(self, text: bytes) -> None:
        self.protocol.send_text(text)
        self._flush()

    def _flush(self) -> None:
        out = self.protocol.data_to_send()
        if out and self.transport is not None and not self.transport.is_closing():
            chunk = b"".join(out)
            if chunk:
                self.transport.write(chunk)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.lost.done():
            self.lost.set_result(None)
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError("connection lost"))

    async def close(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        with contextlib.suppress(Exception):
            self.protocol.send_close()
            self._flush()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.lost), 1)
        self.transport.close()


async def _open(
    url: str, token: str, arrivals: dict[int, list[int]] | None, batch: bool, socketio: bool
) -> _Sock:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    loop = asyncio.get_running_loop()
    query = ("&" if "?" in url else "?") + f"token={token}" + ("&batch=1" if batch else "")
    for attempt in range(5):
        sock = _Sock(url + query, arrivals, socketio)
        try:
            await loop.create_connection(lambda s=sock: s, host, port)  # type: ignore[misc]
            await asyncio.wait_for(sock.opened, 60)
            return sock
        except (OSError, TimeoutError):
            if sock.transport is not None:
                sock.transport.close()
            if attempt == 4:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _request(sock: _Sock, rid: int, room: str, text: str) -> asyncio.Future[float]:
    fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    sock.pending[rid] = fut
    params = {"room_id": room, "text": text}
    if sock.socketio:  # an event with an ack: 42<id>["send_message",{...}]
        sock.send(b"42%d" % rid + msgspec.json.encode(("send_message", params)))
        return fut
    sock.send(
        msgspec.json.encode(
            {"jsonrpc": "2.0", "id": rid, "method": "send_message", "params": params}
        )
    )
    return fut


async def _worker(spec: Spec, pipe: Pipe, progress: Any) -> None:
    loop = asyncio.get_running_loop()
    arrivals: dict[int, list[int]] | None = {} if spec.role == "receive" else None
    gate = asyncio.Semaphore(32)

    async def opened(token: str) -> _Sock:
        async with gate:
            return await _open(spec.ws_url, token, arrivals, spec.batch, spec.socketio)

    socks = await asyncio.gather(*(opened(t) for t in spec.tokens))
    pipe.send(("ready", len(socks)))
    command, until = await loop.run_in_executor(None, pipe.recv)
    result: dict[str, Any] = {}
    if command == "go":
        if spec.role == "receive":
            result = await _receive(spec, socks, progress, until, arrivals)
        elif spec.role == "fanout_send":
            result = await _fanout_send(spec, socks[0], progress, until)
        elif spec.role == "closed_loop":
            result = await _closed_loop(spec, socks, until)
        elif spec.role == "paced_send":
            result = await _paced_send(spec, socks[0], until)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.gather(*(s.close() for s in socks)), 5)
    pipe.send(("done", result))


async def _receive(
    spec: Spec, socks: Sequence[_Sock], progress: Any, until: float, arrivals: Any
) -> dict[str, Any]:
    slot = 2 * spec.index
    while time.monotonic() < until:
        counts = [s.count for s in socks]
        progress[slot] = sum(counts)
        progress[slot + 1] = min(counts)
        await asyncio.sleep(0.005)
    closed = sum(1 for s in socks if s.closed)
    return {"count": sum(s.count for s in socks), "closed": closed, "arrivals": arrivals}


async def _fanout_send(spec: Spec, sock: _Sock, progress: Any, until: float) -> dict[str, Any]:
    workers = spec.index  # receivers occupy slots 0 .. index-1
    sent = 0
    inflight: set[asyncio.Future[float]] = set()
    while time.monotonic() < until:
        slowest = min(progress[2 * i + 1] for i in range(workers))
        while len(inflight) < spec.inflight and sent - slowest < spec.window:
            sent += 1
            inflight.add(_request(sock, sent, spec.rooms[0], spec.text))
        if inflight:
            done, _ = await asyncio.wait(inflight, timeout=0.002)
            inflight -= done
        else:
            await asyncio.sleep(0.001)
    # Requests still unanswered at the end: nobody waits for them (closing the socket would
    # fail them with an exception that nobody reads, printed as a warning at exit).
    for fut in inflight:
        fut.cancel()
    sock.pending.clear()
    return {"sent": sent}


async def _closed_loop(spec: Spec, socks: Sequence[_Sock], until: float) -> dict[str, Any]:
    # (ack time, latency) of every command; the caller keeps those inside its window.
    acks: list[tuple[float, float]] = []
    errors = 0

    async def run(i: int, sock: _Sock) -> None:
        nonlocal errors
        rid = 0
        room = spec.rooms[i]
        while time.monotonic() < until:
            rid += 1
            started = time.perf_counter()
            try:
                done = await asyncio.wait_for(_request(sock, rid, room, spec.text), 30)
            except Exception:  # noqa: BLE001 (a load generator counts any failure)
                errors += 1
                return
            acks.append((done, done - started))

    await asyncio.gather(*(run(i, s) for i, s in enumerate(socks)))
    # perf_counter is CLOCK_MONOTONIC on Linux, as time.monotonic: comparable across processes.
    return {"acks": acks, "errors": errors, "frames": sum(s.frames for s in socks)}


async def _paced_send(spec: Spec, sock: _Sock, until: float) -> dict[str, Any]:
    sent: dict[int, int] = {}
    n = 0
    period = 1.0 / spec.rate
    next_at = time.monotonic()
    while next_at < until:
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        n += 1
        sent[n] = time.monotonic_ns()
        _request(sock, n, spec.rooms[0], f"lat {n} {spec.text}")
        next_at += period
    await asyncio.sleep(1.0)  # the last posts' deliveries
    return {"sent": sent}


def _main(spec: Spec, pipe: Pipe, progress: Any) -> None:
    import uvloop

    raise_nofile()
    uvloop.run(_worker(spec, pipe, progress))


class Workers:
    """A set of worker processes: start them, wait until every socket is open, go, collect."""

    def __init__(self, specs: list[Spec]) -> None:
        ctx = mp.get_context("spawn")
        self.progress = ctx.Array("q", 2 * max(1, len(specs)), lock=False)
        for i in range(len(self.progress)):
            self.progress[i] = 0
        self.pipes: list[Pipe] = []
        self.procs = []
        for spec in specs:
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=_main, args=(spec, theirs, self.progress), daemon=True)
            proc.start()
            self.pipes.append(mine)
            self.procs.append(proc)

    def wait_ready(self, timeout: float = 180.0) -> int:
        total = 0
        for pipe in self.pipes:
            if not pipe.poll(timeout):
                raise TimeoutError("a worker did not open its sockets in time")
            kind, n = pipe.recv()
            assert kind == "ready", kind
            total += n
        return total

    def go(self, until: float) -> None:
        for pipe in self.pipes:
            pipe.send(("go", until))

    def results(self, timeout: float = 60.0) -> list[dict[str, Any]]:
        out = []
        for pipe in self.pipes:
            if not pipe.poll(timeout):
                raise TimeoutError("a worker did not report in time")
            kind, result = pipe.recv()
            assert kind == "done", kind
            out.append(result)
        for proc in self.procs:
            proc.join(10)
        return out

    def cpu_seconds(self) -> float:
        """User + system CPU time of the worker processes so far (the load generator's)."""
        total = 0
        for proc in self.procs:
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(stat[11]) + int(stat[12])
        return total / CLK_TCK

    def delivered(self, receivers: int) -> int:
        return sum(self.progress[2 * i] for i in range(receivers))

    def kill(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
                proc.join(5)


def split(items: Sequence[Any], parts: int) -> list[list[Any]]:
    """`items` dealt into `parts` nearly equal lists (none empty)."""
    parts = max(1, min(parts, len(items)))
    return [list(items[i::parts]) for i in range(parts)]
