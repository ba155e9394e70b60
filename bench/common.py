"""What the scenarios of bench/run.py share: sizes, result rows, the chat data, logging."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import BENCH_DIR, Server, prepare_accounts

DATA_DIR = BENCH_DIR / "data"
RECEIVER_PROCS = 3


@dataclass
class Row:
    scenario: str
    measure: str
    value: float
    unit: str
    baseline: float | None = None
    target: str = ""
    ok: bool | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline


@dataclass
class Sizes:
    fanout: tuple[int, ...] = (100, 1000)
    fanout_seconds: float = 8.0
    durable_users: int = 200
    durable_seconds: float = 8.0
    latency_n: int = 1000
    latency_seconds: float = 20.0
    idle_n: int = 2000
    cold: tuple[int, ...] = (100_000, 1_000_000)
    warmup: float = 2.0
    repeats: int = 2
    # The fan-out against Socket.IO (Node, npm ci on first use); not in --quick, the smoke
    # test the test suite runs, which must need neither Node nor the npm registry.
    socketio: bool = True

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            fanout=(20,),
            fanout_seconds=2.0,
            durable_users=20,
            durable_seconds=2.0,
            latency_n=20,
            latency_seconds=2.0,
            idle_n=40,
            cold=(20_000,),
            warmup=0.5,
            repeats=1,
            socketio=False,
        )


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def log(msg: str) -> None:
    print(f"  .. {msg}", file=sys.stderr, flush=True)


class ChatData:
    """A data directory with users, rooms and tokens, prepared once by a set-up server run."""

    def __init__(self, path: Path, memberships: dict[str, list[str]]) -> None:
        self.path = path
        server = Server.chat(path).start()
        try:
            started = time.perf_counter()
            self.tokens = asyncio.run(prepare_accounts(server, memberships))
            log(f"prepared {len(memberships)} users in {time.perf_counter() - started:.1f} s")
        finally:
            server.stop()

    def server(self, env: dict[str, str] | None = None) -> Server:
        return Server.chat(self.path, env)


def settle(server: Server, seconds: float = 0.5) -> None:
    """Wait until the server's CPU use drops (start-up, connection storms), at most 15 s."""
    deadline = time.monotonic() + 15
    last = server.cpu_seconds()
    while time.monotonic() < deadline:
        time.sleep(seconds)
        now = server.cpu_seconds()
        if now - last < 0.1 * seconds:
            return
        last = now


def fmt(v: float, unit: str) -> str:
    if unit == "s":
        return f"{v:.2f} s"
    if unit in ("ms", "us", "KB"):
        return f"{v:,.2f} {unit}" if v < 100 else f"{v:,.0f} {unit}"
    return f"{v:,.0f}{unit}"
