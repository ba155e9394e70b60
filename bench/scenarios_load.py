"""bench/run.py scenarios under load: fan-out, durable sends, metrics on and off."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RECEIVER_PROCS, ChatData, Row, Sizes, log, pct, settle
from loadgen import Spec, Workers, split
from servers import Server


def _fanout_once(
    server: Server, receivers: list[str], sender: str, room: str, sz: Sizes, inflight: int = 32
) -> dict[str, float]:
    sio = server.ws_path.startswith("/socket.io/")
    specs = [
        Spec("receive", server.ws_url, part, index=i, socketio=sio)
        for i, part in enumerate(split(receivers, RECEIVER_PROCS))
    ]
    n_recv = len(specs)
    specs.append(
        Spec(
            "fanout_send",
            server.ws_url,
            [sender],
            rooms=[room],
            index=n_recv,
            socketio=sio,
            inflight=inflight,
        )
    )
    workers = Workers(specs)
    try:
        workers.wait_ready()
        settle(server)
        start = time.monotonic()
        until = start + sz.warmup + sz.fanout_seconds
        workers.go(until)
        time.sleep(sz.warmup)
        d0, c0, t0 = workers.delivered(n_recv), server.cpu_seconds(), time.monotonic()
        g0, w0 = workers.cpu_seconds(), server.write_calls()
        time.sleep(sz.fanout_seconds)
        d1, c1, t1 = workers.delivered(n_recv), server.cpu_seconds(), time.monotonic()
        g1, w1 = workers.cpu_seconds(), server.write_calls()
        results = workers.results()
    finally:
        workers.kill()
    closed = sum(r.get("closed", 0) for r in results)
    deliveries = d1 - d0
    return {
        "rate": deliveries / (t1 - t0),
        "cpu_us": (c1 - c0) / deliveries * 1e6 if deliveries else float("nan"),
        "cpu_share": (c1 - c0) / (t1 - t0),
        # The load generator's processes, in cores (the machine has os.cpu_count()).
        "gen_share": (g1 - g0) / (t1 - t0),
        # Deliveries per write system call of the server (all its threads: the journal's too).
        "per_write": deliveries / (w1 - w0) if w1 > w0 else float("nan"),
        "closed": closed,
    }


def _fanout_best(
    sz: Sizes,
    work: Path,
    kinds: tuple[str, ...],
    sizes: tuple[int, ...] | None = None,
    inflight: int = 32,
) -> dict[int, dict[str, Any]]:
    """For each N (of `sizes`, else sz.fanout), the best run of each kind of server
    (interleaved: the machine is noisy), the sender keeping `inflight` requests unanswered.

    bare: bench/bare_broadcast.py; uvloop: bench/bare_uvloop.py; socketio:
    bench/socketio/server.js (Socket.IO 4 on Node); chat; chat-asgi: the chat with
    `server.direct_writes = false` (frames through ASGI send, one write per message).
    """
    biggest = max(sz.fanout)
    users = [f"fan{i:04d}" for i in range(biggest)]
    memberships = {u: [f"fan{n}" for n in sz.fanout if i < n] for i, u in enumerate(users)}
    memberships["fansender"] = [f"fan{n}" for n in sz.fanout]
    data = ChatData(work / f"fanout-{'-'.join(kinds)}", memberships)
    found: dict[int, dict[str, Any]] = {}
    for n in sizes or sz.fanout:
        best: dict[str, dict[str, float]] = {}
        for _ in range(sz.repeats):
            for kind in kinds:
                if kind in ("bare", "uvloop", "socketio"):
                    server = (
                        Server.bare("broadcast")
                        if kind == "bare"
                        else Server.bare_uvloop()
                        if kind == "uvloop"
                        else Server.socketio()
                    )
                    server.start()
                    receivers = ["x"] * n
                    sender = "x"
                else:
                    off = {"CHAT__SERVER__DIRECT_WRITES": "false"} if kind == "chat-asgi" else {}
                    server = data.server(off).start()
                    receivers = [data.tokens[u] for u in users[:n]]
                    sender = data.tokens["fansender"]
                try:
                    r = _fanout_once(server, receivers, sender, f"fan{n}", sz, inflight)
                finally:
                    server.stop()
                log(
                    f"fan-out N={n} {kind} ({inflight} in flight):"
                    f" {r['rate']:,.0f} deliveries/s, {r['cpu_us']:.2f} us,"
                    f" server CPU {r['cpu_share']:.0%}, generator CPU {r['gen_share']:.0%},"
                    f" {r['per_write']:.1f} deliveries per write"
                )
                if kind not in best or r["rate"] > best[kind]["rate"]:
                    best[kind] = r
        found[n] = best
    return found


def scenario_fanout(sz: Sizes, work: Path) -> list[Row]:
    rows = []
    kinds = ("bare", "socketio", "chat") if sz.socketio else ("bare", "chat")
    for n, best in _fanout_best(sz, work, kinds).items():
        chat, bare = best["chat"], best["bare"]
        rows.append(
            Row(
                "fan-out",
                f"N={n}: deliveries/s",
                chat["rate"],
                "/s",
                bare["rate"],
                ">= 0.5x",
                chat["rate"] >= 0.5 * bare["rate"],
                f"server CPU {chat['cpu_share']:.0%} (bare {bare['cpu_share']:.0%});"
                f" slow-reader closes {chat['closed']:.0f} (bare {bare['closed']:.0f})",
            )
        )
        rows.append(
            Row(
                "fan-out",
                f"N={n}: server CPU per delivery",
                chat["cpu_us"],
                "us",
                bare["cpu_us"],
                "<= 2x",
                chat["cpu_us"] <= 2 * bare["cpu_us"],
            )
        )
        sio = best.get("socketio")
        if sio is None:
            continue
        rows.append(
            Row(
                "fan-out",
                f"N={n}: deliveries/s against Socket.IO 4 (Node)",
                chat["rate"],
                "/s",
                sio["rate"],
                ">= 1.0x",
                chat["rate"] >= sio["rate"],
                f"server CPU {chat['cpu_share']:.0%} (Socket.IO {sio['cpu_share']:.0%});"
                f" load generator CPU {chat['gen_share']:.0%} (Socket.IO run"
                f" {sio['gen_share']:.0%}) of {os.cpu_count()} cores",
            )
        )
        rows.append(
            Row(
                "fan-out",
                f"N={n}: server CPU per delivery against Socket.IO 4 (Node)",
                chat["cpu_us"],
                "us",
                sio["cpu_us"],
                "<= 0.6x",
                chat["cpu_us"] <= 0.6 * sio["cpu_us"],
                f"deliveries per write {chat['per_write']:.1f} (Socket.IO"
                f" {sio['per_write']:.1f}); slow-reader closes {chat['closed']:.0f}"
                f" (Socket.IO {sio['closed']:.0f})",
            )
        )
    return rows


# The sender's window (requests unanswered) of the wire scenario's second comparison.
WIDE_WINDOW = 128


def scenario_wire(sz: Sizes, work: Path) -> list[Row]:
    """Fan-out at wire speed: the chat against a plain uvloop server writing pre-framed,
    coalesced bytes, and against itself through ASGI send (before direct writes)."""
    rows = []
    for n, best in _fanout_best(sz, work, ("uvloop", "chat-asgi", "chat")).items():
        chat, uvl, asgi = best["chat"], best["uvloop"], best["chat-asgi"]
        rows.append(
            Row(
                "wire",
                f"N={n}: server CPU per delivery against plain uvloop, pre-framed",
                chat["cpu_us"],
                "us",
                uvl["cpu_us"],
                "<= 1.5x",
                chat["cpu_us"] <= 1.5 * uvl["cpu_us"],
                f"chat {chat['rate']:,.0f} deliveries/s, CPU {chat['cpu_share']:.0%},"
                f" {chat['per_write']:.1f} deliveries per write; bench/bare_uvloop.py"
                f" {uvl['rate']:,.0f}/s, CPU {uvl['cpu_share']:.0%}, {uvl['per_write']:.1f}",
            )
        )
        rows.append(
            Row(
                "wire",
                f"N={n}: server CPU per delivery against the chat through ASGI send",
                chat["cpu_us"],
                "us",
                asgi["cpu_us"],
                "",
                None,
                f"server.direct_writes = false: {asgi['rate']:,.0f} deliveries/s,"
                f" CPU {asgi['cpu_share']:.0%}",
            )
        )
    # The sender keeps 32 requests unanswered: the plain server answers all of them in the turn
    # it reads them, the chat in two commits (one appended while the next is decided), so its
    # writes carry about half as many deliveries. With a wider window both writes grow: what
    # remains of the ratio is not the window.
    n = min(sz.fanout)
    wide = _fanout_best(sz, work, ("uvloop", "chat"), (n,), WIDE_WINDOW)[n]
    chat, uvl = wide["chat"], wide["uvloop"]
    rows.append(
        Row(
            "wire",
            f"N={n}, {WIDE_WINDOW} requests in flight (not 32): CPU per delivery against plain"
            " uvloop",
            chat["cpu_us"],
            "us",
            uvl["cpu_us"],
            "",
            None,
            f"deliveries per write: chat {chat['per_write']:.1f}, bench/bare_uvloop.py"
            f" {uvl['per_write']:.1f}; deliveries/s {chat['rate']:,.0f} / {uvl['rate']:,.0f}",
        )
    )
    return rows


def _closed_loop_once(
    server: Server, tokens: list[str], rooms: list[str], sz: Sizes, batch: bool = False
) -> dict[str, float]:
    parts = split(list(zip(tokens, rooms, strict=True)), RECEIVER_PROCS)
    specs = [
        Spec(
            "closed_loop",
            server.ws_url,
            [t for t, _ in part],
            rooms=[r for _, r in part],
            batch=batch,
        )
        for part in parts
    ]
    workers = Workers(specs)
    try:
        workers.wait_ready()
        settle(server)
        start = time.monotonic()
        t0, t1 = start + sz.warmup, start + sz.warmup + sz.durable_seconds
        workers.go(t1)
        time.sleep(sz.warmup)
        c0 = server.cpu_seconds()
        time.sleep(sz.durable_seconds)
        c1 = server.cpu_seconds()
        results = workers.results()
    finally:
        workers.kill()
    lat = [lt for r in results for at, lt in r["acks"] if t0 <= at < t1]
    errors = sum(r["errors"] for r in results)
    acked = sum(len(r["acks"]) for r in results)
    return {
        "rate": len(lat) / (t1 - t0),
        "p50": pct(lat, 0.5) * 1e3,
        "p99": pct(lat, 0.99) * 1e3,
        "cpu_share": (c1 - c0) / (t1 - t0),
        "errors": errors,
        # Frames the clients received per acked command (the whole run, warm-up included).
        "frames": sum(r["frames"] for r in results) / max(1, acked),
    }


# The durable runs: (label, server, the clients connect with batch=1).
DURABLE_KINDS = (
    ("echo", "echo", False),
    ("room", "room", False),
    ("room batch=1", "room", True),
    ("FULL", "FULL", True),
    ("NORMAL", "NORMAL", True),
    ("FULL plain", "FULL", False),
)


def scenario_durable(sz: Sizes, work: Path) -> list[Row]:
    users = [f"dur{i:04d}" for i in range(sz.durable_users)]
    rooms = [f"dur{i // 4:03d}" for i in range(len(users))]
    data = ChatData(work / "durable", {u: [r] for u, r in zip(users, rooms, strict=True)})
    tokens = [data.tokens[u] for u in users]
    best: dict[str, dict[str, float]] = {}
    for _ in range(sz.repeats):
        for label, kind, batch in DURABLE_KINDS:
            if kind in ("echo", "room"):
                server = Server.bare(kind).start()
                toks = ["x"] * len(users)
            else:
                server = data.server({"CHAT__DATABASE__SYNCHRONOUS": kind}).start()
                toks = tokens
            try:
                r = _closed_loop_once(server, toks, rooms, sz, batch)
            finally:
                server.stop()
            log(
                f"durable {label}: {r['rate']:,.0f} acked/s p50 {r['p50']:.1f} ms"
                f" p99 {r['p99']:.1f} ms server CPU {r['cpu_share']:.0%}"
                f" {r['frames']:.2f} frames per command, errors {r['errors']:.0f}"
            )
            if label not in best or r["rate"] > best[label]["rate"]:
                best[label] = r
    echo, room, room_batched = best["echo"], best["room"], best["room batch=1"]
    echo_cpu = 1e6 * echo["cpu_share"] / echo["rate"]
    prefix = f"{len(users)} users"
    rows = []
    for sync in ("FULL", "NORMAL"):
        r = best[sync]
        is_target = sync == "FULL"
        rows += [
            Row(
                "durable",
                f"{prefix}, sync {sync}, batch=1: acked send_message/s",
                r["rate"],
                "/s",
                echo["rate"],
                ">= 15000/s, >= 0.5x" if is_target else "",
                (r["rate"] >= 15000 and r["rate"] >= 0.5 * echo["rate"]) if is_target else None,
                f"server CPU {r['cpu_share']:.0%}; errors {r['errors']:.0f};"
                f" {r['frames']:.2f} frames per command",
            ),
            Row(
                "durable",
                f"{prefix}, sync {sync}, batch=1: server CPU per acked command",
                1e6 * r["cpu_share"] / r["rate"],
                "us",
                echo_cpu,
                "",
                None,
                "a command is 1 frame in and 5 messages out (ack + 4 room deliveries) and a"
                " journal row; the echo's 1 in, 1 out",
            ),
            Row(
                "durable",
                f"{prefix}, sync {sync}, batch=1: ack latency p99",
                r["p99"],
                "ms",
                echo["p99"],
                "p99 < 20 ms" if is_target else "",
                r["p99"] < 20 if is_target else None,
                f"p50 {r['p50']:.2f} ms (echo p50 {echo['p50']:.2f} ms)",
            ),
        ]
    # Not the baseline, a second one: the bare server sending the same messages as
    # the chat (the ack and the room's 4 deliveries, coalesced for batch=1 clients as the
    # chat's writer does), so the ratio shows what the journal, auth and rules cost on top of
    # the frames; and that bare server against the echo, the most any chat could reach here.
    r = best["FULL"]
    rows += [
        Row(
            "durable",
            f"{prefix}, sync FULL, batch=1: acked/s against bare echo + room fan-out",
            r["rate"],
            "/s",
            room_batched["rate"],
            "",
            None,
            f"bare echo + room, batch=1: CPU {room_batched['cpu_share']:.0%},"
            f" {1e6 * room_batched['cpu_share'] / room_batched['rate']:.0f} us per command,"
            f" p50 {room_batched['p50']:.1f} ms, p99 {room_batched['p99']:.1f} ms,"
            f" {room_batched['frames']:.2f} frames per command",
        ),
        Row(
            "durable",
            f"{prefix}, bare echo + room fan-out, batch=1 (no journal, auth, rules): acked/s",
            room_batched["rate"],
            "/s",
            echo["rate"],
            "",
            None,
            "the same messages as the chat with nothing else: the ceiling of the chat's"
            " ratio to the echo",
        ),
    ]
    # Clients that did not ask for batch=1: every message is a frame of its own.
    r = best["FULL plain"]
    rows.append(
        Row(
            "durable",
            f"{prefix}, sync FULL, one message per frame: acked send_message/s",
            r["rate"],
            "/s",
            echo["rate"],
            "",
            None,
            f"{1e6 * r['cpu_share'] / r['rate']:.0f} us CPU per command, p50 {r['p50']:.1f} ms,"
            f" p99 {r['p99']:.1f} ms, {r['frames']:.2f} frames per command;"
            f" bare echo + room, one message per frame: {room['rate']:,.0f}/s",
        )
    )
    return rows


def scenario_metrics(sz: Sizes, work: Path) -> list[Row]:
    """The durable run (FULL, batch=1) with server.metrics on and off, scraped every second
    while on (15 times as often as Prometheus' default interval)."""
    users = [f"met{i:04d}" for i in range(sz.durable_users)]
    rooms = [f"met{i // 4:03d}" for i in range(len(users))]
    data = ChatData(work / "metrics", {u: [r] for u, r in zip(users, rooms, strict=True)})
    tokens = [data.tokens[u] for u in users]
    best: dict[str, dict[str, float]] = {}
    kinds = [("off", "false"), ("on", "true")]
    # Twice the usual repeats, the order swapped each time: the shared machine's load drifts.
    for repeat in range(2 * sz.repeats):
        for label, flag in kinds if repeat % 2 == 0 else kinds[::-1]:
            server = data.server({"CHAT__SERVER__METRICS": flag}).start()
            scraper = _Scraper(server.url) if flag == "true" else None
            try:
                r = _closed_loop_once(server, tokens, rooms, sz, batch=True)
            finally:
                if scraper is not None:
                    r["scrapes"] = scraper.stop()
                server.stop()
            log(
                f"metrics {label}: {r['rate']:,.0f} acked/s p99 {r['p99']:.1f} ms"
                f" server CPU {r['cpu_share']:.0%}"
            )
            if label not in best or r["rate"] > best[label]["rate"]:
                best[label] = r
    on, off = best["on"], best["off"]
    prefix = f"{len(users)} users, sync FULL, batch=1"
    return [
        Row(
            "metrics",
            f"{prefix}: acked/s with /metrics on (scraped each second) against off",
            on["rate"],
            "/s",
            off["rate"],
            ">= 0.97x",
            on["rate"] >= 0.97 * off["rate"],
            f"p99 {on['p99']:.1f} ms on, {off['p99']:.1f} ms off;"
            f" {on.get('scrapes', 0):.0f} scrapes",
        ),
        Row(
            "metrics",
            f"{prefix}: server CPU per acked command, /metrics on against off",
            1e6 * on["cpu_share"] / on["rate"],
            "us",
            1e6 * off["cpu_share"] / off["rate"],
        ),
    ]


class _Scraper:
    """GET /metrics once a second in a thread, until stopped; counts the good answers."""

    def __init__(self, url: str) -> None:
        import threading

        self._done = threading.Event()
        self.count = 0
        self._thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self._thread.start()

    def _run(self, url: str) -> None:
        with httpx.Client(base_url=url, trust_env=False, timeout=10) as http:
            while not self._done.wait(1.0):
                if http.get("/metrics").status_code == 200:
                    self.count += 1

    def stop(self) -> float:
        self._done.set()
        self._thread.join(15)
        return float(self.count)
