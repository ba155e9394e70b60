"""Server benchmarks: every scenario of issue 5, each against a baseline measured in the same run.

    .venv/bin/python bench/run.py [--quick] [--only fanout,durable,metrics,latency,idle,cold]

1. fan-out: N receivers in one room, one sender at full speed (paced only so that it never
   runs more than 256 messages ahead of the slowest receiver, so nobody overflows its queue):
   deliveries/s and server CPU us per delivery, against bench/bare_broadcast.py (broadcast)
   and against Socket.IO 4 on Node (bench/socketio/server.js, installed by `npm ci` in its
   folder on first use; the same generator speaks engine.io v4 to it), with the load
   generator's CPU share (not with --quick, the test suite's smoke run).
1b. wire: the fan-out against bench/bare_uvloop.py (a plain uvloop server writing pre-framed,
   coalesced bytes) and against the chat with server.direct_writes = false (through ASGI send).
2. durable: 200 users, 4 to a room, each sending send_message as soon as its previous one is
   acked: acked/s and ack latency p50/p99, at database.synchronous FULL and NORMAL, with
   clients that ask for batch=1 (as chat-cli does) and, at FULL, clients that do not,
   against bench/bare_broadcast.py (echo: parse, answer, no journal); and, as a second
   baseline, the bare server sending the chat's messages (room, with and without batch=1).
2b. metrics: the durable run at FULL with batch=1 clients, with server.metrics off and on
   (scraped once a second while on): acked/s and CPU per command, on against off.
3. latency: N = 1000 in one room, 10 posts/s: send -> last recipient p50/p99/max, with the
   server's collector untuned (server.gc_freeze = false) and tuned (the default), against
   the bare broadcast server driven the same way.
4. idle memory: RSS growth per idle authenticated connection, 2,000 connections each a member
   of 2 rooms, against the bare server's growth per connection.
5. cold start: process start -> /health answering, journals of 100k and 1M events (made by
   bench/journal.py's generator through the real codec, cached under bench/data/), against the
   same server on an empty journal.

Every scenario is bounded in connections and in time, and talks only to 127.0.0.1. Servers and
client workers are subprocesses; the data directories live under bench/data/run-*/ and are
removed at the end. The machine is shared and noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import servers
from common import DATA_DIR, Row, Sizes, fmt, log
from scenarios_load import scenario_durable, scenario_fanout, scenario_metrics, scenario_wire
from scenarios_nodes import scenario_nodes
from scenarios_server import scenario_cold, scenario_idle, scenario_latency

# --- 1. fan-out ----------------------------------------------------------------------------


# --- 3. latency under load -----------------------------------------------------------------


# --- 5. cold start -------------------------------------------------------------------------


def print_table(rows: list[Row], header: str) -> None:
    cols = ["scenario", "measure", "value", "baseline", "ratio", "target", "ok", "notes"]
    table = [
        [
            r.scenario,
            r.measure,
            fmt(r.value, r.unit),
            fmt(r.baseline, r.unit) if r.baseline is not None else "",
            f"{r.ratio:.2f}x" if r.ratio is not None else "",
            r.target,
            {True: "yes", False: "NO", None: ""}[r.ok],
            r.note,
        ]
        for r in rows
    ]
    widths = [max(len(cols[i]), *(len(t[i]) for t in table)) for i in range(len(cols))]
    print(header)
    print(" | ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for t in table:
        print(" | ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)).rstrip())


SCENARIOS = {
    "fanout": scenario_fanout,
    "wire": scenario_wire,
    "durable": scenario_durable,
    "metrics": scenario_metrics,
    "latency": scenario_latency,
    "idle": scenario_idle,
    "cold": scenario_cold,
    "nodes": scenario_nodes,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny sizes")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    args = parser.parse_args()
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; choose from {list(SCENARIOS)}")
    sz = Sizes.quick() if args.quick else Sizes()
    servers.raise_nofile()
    work = DATA_DIR / f"run-{os.getpid()}"
    rows: list[Row] = []
    started = time.perf_counter()
    try:
        for name in chosen:
            log(f"scenario {name}")
            rows += SCENARIOS[name](sz, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    header = (
        f"bench/run.py{' --quick' if args.quick else ''}  python {sys.version.split()[0]}"
        f"  cpus {os.cpu_count()} ({cpu})  took {time.perf_counter() - started:.0f} s"
        f"  best of {sz.repeats} where repeated"
    )
    print_table(rows, header)


if __name__ == "__main__":
    main()
