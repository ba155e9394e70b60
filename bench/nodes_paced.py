"""Open-loop load for bench/scenarios_nodes.py: `send_message` at a fixed rate, whatever the
answers do, from one worker process per node, each socket to its own room (batch=1 clients).

The closed loop of the durable run keeps every node's writer busy (the worst case for
conflicts); a fixed rate below capacity is what a deployment sees. A worker opens its sockets,
reports `ready`, waits for the end time, sends every request that is due (round robin over
its sockets), and reports each ack as (ack time, latency) and the errors. The sockets are
bench/loadgen.py's (Sans-I/O `websockets` on bare uvloop transports).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import time
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection as Pipe
from typing import Any

from loadgen import _open, _request, _Sock
from servers import raise_nofile

TEXT = "hello from the benchmark, a message of a typical length for a chat line"


@dataclass
class Paced:
    ws_url: str
    tokens: list[str]
    rooms: list[str]  # per socket
    rate: float  # requests per second over all the worker's sockets


async def _send_all(spec: Paced, socks: list[_Sock], until: float) -> dict[str, Any]:
    acks: list[tuple[float, float]] = []
    errors = 0

    def answered(fut: asyncio.Future[float], started: float) -> None:
        nonlocal errors
        if fut.cancelled() or fut.exception() is not None:
            errors += 1
        else:
            done = fut.result()
            acks.append((done, done - started))

    period = 1.0 / spec.rate
    next_at = time.monotonic()
    rid = 0
    while next_at < until:
        now = time.monotonic()
        while next_at <= now:
            i = rid % len(socks)
            rid += 1
            fut = _request(socks[i], rid, spec.rooms[i], TEXT)
            fut.add_done_callback(partial(answered, started=time.perf_counter()))
            next_at += period
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    await asyncio.sleep(1.0)  # the last answers
    for sock in socks:
        for fut in sock.pending.values():
            fut.cancel()
        sock.pending.clear()
    return {"acks": acks, "errors": errors, "sent": rid}


async def _worker(spec: Paced, pipe: Pipe) -> None:
    gate = asyncio.Semaphore(32)

    async def opened(token: str) -> _Sock:
        async with gate:
            return await _open(spec.ws_url, token, None, True, False)

    socks = list(await asyncio.gather(*(opened(t) for t in spec.tokens)))
    pipe.send("ready")
    until = await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
    result = await _send_all(spec, socks, until)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.gather(*(s.close() for s in socks)), 5)
    pipe.send(result)


def _main(spec: Paced, pipe: Pipe) -> None:
    import uvloop

    raise_nofile()
    uvloop.run(_worker(spec, pipe))


class PacedWorkers:
    """One process per spec: start, wait until every socket is open, go, collect."""

    def __init__(self, specs: list[Paced]) -> None:
        ctx = mp.get_context("spawn")
        self.pipes: list[Pipe] = []
        self.procs = []
        for spec in specs:
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=_main, args=(spec, theirs), daemon=True)
            proc.start()
            self.pipes.append(mine)
            self.procs.append(proc)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.pid is not None]

    def wait_ready(self, timeout: float = 120.0) -> None:
        for pipe in self.pipes:
            if not pipe.poll(timeout):
                raise TimeoutError("a paced worker did not open its sockets in time")
            assert pipe.recv() == "ready"

    def go(self, until: float) -> None:
        for pipe in self.pipes:
            pipe.send(until)

    def results(self, timeout: float = 60.0) -> list[dict[str, Any]]:
        out = []
        for pipe in self.pipes:
            if not pipe.poll(timeout):
                raise TimeoutError("a paced worker did not report in time")
            out.append(pipe.recv())
        for proc in self.procs:
            proc.join(10)
        return out

    def kill(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
                proc.join(5)
