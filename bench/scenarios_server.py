"""bench/run.py scenarios of the server itself: latency, idle memory, cold start."""

from __future__ import annotations

import shutil
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RECEIVER_PROCS, ChatData, Row, Sizes, log, pct, settle
from loadgen import Spec, Workers, split
from servers import Server


def _latency_once(
    server: Server, receivers: list[str], sender: str, room: str, sz: Sizes
) -> dict[str, Any]:
    specs = [
        Spec("receive", server.ws_url, part, index=i)
        for i, part in enumerate(split(receivers, RECEIVER_PROCS))
    ]
    specs.append(Spec("paced_send", server.ws_url, [sender], rooms=[room], rate=10.0))
    workers = Workers(specs)
    try:
        workers.wait_ready()
        settle(server)
        until = time.monotonic() + sz.latency_seconds
        workers.go(until)
        results = workers.results(timeout=sz.latency_seconds + 60)
    finally:
        workers.kill()
    sent: dict[int, int] = results[-1]["sent"]
    last: dict[int, int] = {}
    counts: dict[int, int] = {}
    for r in results[:-1]:
        for n, (at, reached) in r["arrivals"].items():
            last[n] = max(last.get(n, 0), at)
            counts[n] = counts.get(n, 0) + reached
    lat = [(last[n] - t) / 1e6 for n, t in sent.items() if n in last]
    missing = sum(1 for n in sent if counts.get(n, 0) < len(receivers))
    return {
        "p50": pct(lat, 0.5),
        "p99": pct(lat, 0.99),
        "max": max(lat) if lat else float("nan"),
        "posts": len(sent),
        "missing": missing,
    }


def scenario_latency(sz: Sizes, work: Path) -> list[Row]:
    n = sz.latency_n
    users = [f"lat{i:04d}" for i in range(n)]
    memberships = {u: ["lat"] for u in users}
    memberships["latsender"] = ["lat"]
    data = ChatData(work / "latency", memberships)
    receivers = [data.tokens[u] for u in users]
    out: dict[str, dict[str, Any]] = {}
    runs: tuple[tuple[str, dict[str, str]], ...] = (
        ("bare", {}),
        ("untuned gc", {"CHAT__SERVER__GC_FREEZE": "false"}),
        ("gc.freeze + thresholds (default)", {}),
    )
    for label, env in runs:
        if label == "bare":
            server = Server.bare("broadcast").start()
            toks, sender = ["x"] * n, "x"
        else:
            server = data.server(env).start()
            toks, sender = receivers, data.tokens["latsender"]
        try:
            r = _latency_once(server, toks, sender, "lat", sz)
        finally:
            server.stop()
        log(f"latency {label}: p50 {r['p50']:.1f} p99 {r['p99']:.1f} max {r['max']:.1f} ms")
        out[label] = r
    rows = []
    bare = out.pop("bare")
    for label, r in out.items():
        is_target = label.endswith("(default)")  # untuned: the "before" of the issue
        rows.append(
            Row(
                "latency",
                f"N={n}, 10 posts/s, {label}: send -> last recipient p99",
                r["p99"],
                "ms",
                bare["p99"],
                "p99 < 50 ms" if is_target else "",
                r["p99"] < 50 if is_target else None,
                f"p50 {r['p50']:.1f} ms, max {r['max']:.1f} ms (bare p50 {bare['p50']:.1f},"
                f" max {bare['max']:.1f}); {r['posts']} posts, {r['missing']} not delivered to all",
            )
        )
    return rows


def _idle_once(server: Server, tokens: list[str]) -> dict[str, float]:
    settle(server)
    rss0 = server.rss_bytes()
    specs = [
        Spec("receive", server.ws_url, part, index=i)
        for i, part in enumerate(split(tokens, RECEIVER_PROCS))
    ]
    workers = Workers(specs)
    try:
        opened = workers.wait_ready()
        settle(server)
        rss1 = server.rss_bytes()
        workers.go(time.monotonic())
        workers.results()
    finally:
        workers.kill()
    return {"per_conn": (rss1 - rss0) / opened, "rss0": rss0, "rss1": rss1, "opened": opened}


def scenario_idle(sz: Sizes, work: Path) -> list[Row]:
    n = sz.idle_n
    n_rooms = max(2, n // 100)
    users = [f"idle{i:04d}" for i in range(n)]
    memberships = {
        u: [f"idle{i % n_rooms:03d}", f"idle{(i + 1) % n_rooms:03d}"] for i, u in enumerate(users)
    }
    data = ChatData(work / "idle", memberships)
    server = Server.bare("broadcast").start()
    try:
        bare = _idle_once(server, ["x"] * n)
    finally:
        server.stop()
    server = data.server().start()
    try:
        chat = _idle_once(server, [data.tokens[u] for u in users])
    finally:
        server.stop()
    log(f"idle: chat {chat['per_conn'] / 1024:.1f} KB/conn, bare {bare['per_conn'] / 1024:.1f}")
    return [
        Row(
            "idle memory",
            f"{n} connections x 2 rooms: RSS growth per connection",
            chat["per_conn"] / 1024,
            "KB",
            bare["per_conn"] / 1024,
            "< 30 KB",
            chat["per_conn"] / 1024 < 30,
            f"RSS {chat['rss0'] / 2**20:.0f} -> {chat['rss1'] / 2**20:.0f} MiB"
            f" (bare {bare['rss0'] / 2**20:.0f} -> {bare['rss1'] / 2**20:.0f} MiB)",
        )
    ]


def _cold_once(data_dir: Path, journal: Path | None) -> dict[str, float]:
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    if journal is not None:
        shutil.copyfile(journal, data_dir / "chat.db")
    env = {"JWT_SECRET": "b" * 48, "CHAT__ADMIN__SEED_DEMO_USERS": "false"}
    server = Server.chat(data_dir, env)
    server.start(timeout=120)
    try:
        with httpx.Client(base_url=server.url, timeout=5) as http:
            while True:
                try:
                    if http.get("/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.005)
        ready = time.perf_counter()
    finally:
        server.stop()
    return {
        "health": ready - server.started_at,
        "listening": server.listening_at - server.started_at,
    }


def scenario_cold(sz: Sizes, work: Path) -> list[Row]:
    import journal_data

    rows = []
    where = work / "cold"
    empty = min((_cold_once(where, None) for _ in range(sz.repeats)), key=lambda r: r["health"])
    log(f"cold start, empty journal: {empty['health']:.2f} s")
    for n in sz.cold:
        path = journal_data.ensure_journal(n)
        # immutable: a read that leaves no -shm/-wal beside the cached journal
        con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        try:
            n_rows = con.execute("SELECT count(*) FROM events").fetchone()[0]
        finally:
            con.close()
        best = min((_cold_once(where, path) for _ in range(sz.repeats)), key=lambda r: r["health"])
        log(f"cold start, {n:,} events: {best['health']:.2f} s")
        target = n >= 1_000_000
        rows.append(
            Row(
                "cold start",
                f"{n_rows:,} events: process start -> /health",
                best["health"],
                "s",
                empty["health"],
                "< 3 s" if target else "",
                best["health"] < 3 if target else None,
                f"listening after {best['listening']:.2f} s; baseline: same server, empty journal",
            )
        )
    shutil.rmtree(where, ignore_errors=True)
    return rows
