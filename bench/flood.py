"""What a client flooding past its request budget costs the server and everyone else.

    .venv/bin/python bench/flood.py [--seconds 5]

One user sends batches of 20 `ping`s as fast as its socket takes them while another pings
every 50 ms. Measured: the bystander's ping p50/max and the server's CPU share, first calm,
then under the flood with the default limits (`rate_limit.requests_per_minute` = 600: past it
the connection is read a pause later), then under the same flood with the limits off (every
ping is served: the cost of a flood nobody throttles), all in the same run. Talks only to
127.0.0.1; every phase stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import BENCH_DIR, Server, prepare_accounts

FLOOD_BATCH = 20


async def _phase(
    server: Server, tokens: dict[str, str], seconds: float, flood: bool
) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    def url(user: str) -> str:
        return f"{server.ws_url}?token={tokens[user]}"

    options: dict[str, Any] = {"compression": None, "max_size": None, "ping_interval": None}
    async with (
        connect(url("calm"), **options) as calm,
        connect(url("flooder"), **options) as flooder,
    ):
        await calm.recv()
        await flooder.recv()
        stop = time.monotonic() + seconds
        sent = answered = 0

        async def write() -> None:
            nonlocal sent
            frame = json.dumps(
                [{"jsonrpc": "2.0", "id": i, "method": "ping"} for i in range(FLOOD_BATCH)]
            )
            while time.monotonic() < stop:
                await flooder.send(frame)
                sent += FLOOD_BATCH

        async def read() -> None:
            nonlocal answered
            async for _ in flooder:
                answered += FLOOD_BATCH

        tasks = [asyncio.create_task(write()), asyncio.create_task(read())] if flood else []
        latencies: list[float] = []
        c0 = server.cpu_seconds()
        t0 = time.monotonic()
        n = 0
        while time.monotonic() < stop:
            n += 1
            started = time.perf_counter()
            await calm.send(json.dumps({"jsonrpc": "2.0", "id": n, "method": "ping"}))
            await asyncio.wait_for(calm.recv(), 10)
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)
        cpu = (server.cpu_seconds() - c0) / (time.monotonic() - t0)
        for task in tasks:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
    return {
        "p50": statistics.median(latencies) * 1e3,
        "max": max(latencies) * 1e3,
        "cpu": cpu,
        "sent": sent,
        "answered": answered,
    }


async def _run(seconds: float) -> list[tuple[str, dict[str, Any]]]:
    results = []
    work = BENCH_DIR / "data" / "flood"
    for label, limits, flood in (
        ("calm", "true", False),
        ("flood, default limits", "true", True),
        ("flood, limits off", "false", True),
    ):
        shutil.rmtree(work, ignore_errors=True)
        server = Server.chat(work, {"CHAT__RATE_LIMIT__ENABLED": limits}).start()
        try:
            tokens = await prepare_accounts(server, {"calm": [], "flooder": []})
            results.append((label, await _phase(server, tokens, seconds, flood)))
        finally:
            server.stop()
    shutil.rmtree(work, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each phase")
    args = parser.parse_args()
    results = asyncio.run(_run(args.seconds))
    calm = results[0][1]
    print(f"bench/flood.py  python {sys.version.split()[0]}  {args.seconds:g} s a phase")
    print(
        f"{'phase':<22} | {'bystander ping p50':>18} | {'max':>9} | {'server CPU':>10}"
        f" | {'vs calm':>7} | flood pings sent / answered"
    )
    for label, r in results:
        print(
            f"{label:<22} | {r['p50']:>15.2f} ms | {r['max']:>6.1f} ms | {r['cpu']:>10.0%}"
            f" | {r['p50'] / calm['p50']:>6.1f}x | {r['sent']:,} / {r['answered']:,}"
        )


if __name__ == "__main__":
    main()
