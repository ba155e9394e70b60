"""A hostile client is bounded in bytes and CPU, with the default limits.

One user with `connections_per_ip` sockets that read nothing sends, for RELIABILITY_HOSTILE_
SECONDS (default 20; `bench/soak.py` runs it longer), what costs the server most: frames of
32k invalid members, batches of 200-message history pages of 1,000-character messages, ping
floods and connect/close loops (`hostile_load.py`, in a process of its own so that its work
does not delay the bystander's measurements). Meanwhile a bystander pings: its p99 must stay
under 50 ms, and the server's resident memory (from /proc) may grow by at most 64 MiB.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from helpers import unique
from reliability_kit import size

RSS_BOUND_KIB = 64 * 1024
P99_BOUND_S = 0.050
# The limits the bound is promised for: the defaults of config.example.toml.
DEFAULT_LIMITS = {
    "CHAT__RATE_LIMIT__CONNECTIONS_PER_IP": "20",
    "CHAT__RATE_LIMIT__REQUESTS_PER_MINUTE": "600",
    "CHAT__RATE_LIMIT__CONNECTS_PER_MINUTE": "60",
}


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_one_hostile_user_cannot_grow_memory_or_slow_a_bystander(launch: Any) -> None:
    seconds = size("hostile_seconds", 20)
    server = launch(DEFAULT_LIMITS)
    pid = server.proc.pid
    async with server.harness() as chat:
        room = unique("long").lower()
        _, writer = await chat.user_client("writer")
        await writer.call("join_room", room_name=room)
        # 200 messages of 1,000 characters: each history page answer is ~230 KB.
        for i in range(200):
            await writer.call("send_message", room_id=room, text=f"{i:03d}" + "w" * 997)
        await writer.close()
        hostile, setup = await chat.user_client("hostile")
        await setup.call("join_room", room_name=room)
        await setup.close()
        _, bystander = await chat.user_client("bystander")
        for _ in range(20):  # warm the path being measured
            await bystander.call("ping")
        rss_before = _rss_kib(pid)

        load = await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(__file__).with_name("hostile_load.py")),
            server.ws_url,
            hostile.token,
            room,
            str(seconds),
            stdout=asyncio.subprocess.PIPE,
        )
        latencies: list[float] = []
        rss_peak = rss_before
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.monotonic()
            assert (await bystander.call("ping"))["pong"] is True
            latencies.append(time.monotonic() - started)
            rss_peak = max(rss_peak, _rss_kib(pid))
            # A paced probe, not a flood: ~20 pings a second stay within the bystander's own
            # request budget (600 at once, then 10 a second) for the whole run.
            await asyncio.sleep(0.05)
        out, _ = await asyncio.wait_for(load.communicate(), 60)
        assert load.returncode == 0
        stats = json.loads(out)
        rss_peak = max(rss_peak, _rss_kib(pid))
        assert (await bystander.call("ping"))["pong"] is True

    p99 = statistics.quantiles(latencies, n=100)[98]
    growth = rss_peak - rss_before
    print(
        f"\nhostile user, {seconds}s: {stats}\nbystander: {len(latencies)} pings,"
        f" p50 {statistics.median(latencies) * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms,"
        f" max {max(latencies) * 1e3:.1f} ms; server RSS {rss_before / 1024:.0f} MiB"
        f" -> peak {rss_peak / 1024:.0f} MiB (+{growth / 1024:.1f} MiB)"
    )
    # The load did happen: every kind got through to the server.
    for kind in ("ones", "history", "ping"):
        assert stats.get(f"{kind}_frames", 0) > 0, stats
    # Connect/close loops ran: most attempts were refused by the connect rate, after a pause.
    assert stats.get("connects", 0) + stats.get("refused_429", 0) > 200, stats
    assert growth <= RSS_BOUND_KIB, growth
    assert p99 < P99_BOUND_S, p99
