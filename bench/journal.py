"""Journal benchmarks: group-commit append and start-up replay, as ratios to raw sqlite3.

    .venv/bin/python bench/journal.py [--events 1000000] [--submitters 100]
                                      [--synchronous FULL|NORMAL|both] [--quick]

Every number is paired with a baseline measured in the same run on the same machine (it is
shared and noisy: read the ratios, not the absolute rates):

1. append: the real CommandProcessor (decide, evolve, group commit through Journal.append)
   with N concurrent submitters awaiting `submit(SendMessage)`, against plain `sqlite3`
   `executemany` batches of the same rows, same schema (same migrations), same PRAGMAs,
   batch size = the processor's average observed batch.  Run with and without
   `client_msg_id` (with it, every batch also pays the idempotent-retry look-up).
2. replay: `chat_core.journal.replay.replay` of a generated journal against a raw scan (sqlite3 read
   of every row + msgspec decode of each payload into the Event union); plus cold start:
   Journal.open(migrate=True) + replay in a fresh subprocess.

The generated journal is cached under bench/data/ (gitignored), keyed by size, generator
version and migration head.  Temporary journals for the append runs are on the same disk as
the work tree (fsync is real there), and removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from journal_data import BENCH_DIR, DATA_DIR, ensure_journal, url_of

from chat_core.domain import codec
from chat_core.domain import commands as c
from chat_core.domain import events as e
from chat_core.domain.state import initial_state
from chat_core.journal.migrate import upgrade
from chat_core.journal.replay import replay
from chat_core.journal.sqlite import Journal
from chat_core.journal.tables import INSERT_SQL
from chat_core.processor import CommandProcessor

TEXT = "hello from the benchmark, a message of a typical length for a chat line"
READ_SQL = (
    "SELECT seq, tag, version, payload, actor, command_id, recorded_at FROM events ORDER BY seq"
)


@dataclass
class Row:
    """One line of the result table."""

    measure: str
    sync: str
    value: float
    unit: str
    baseline: float | None = None
    target: str = ""
    ok: bool | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline


# --------------------------------------------------------------------------------------
# 1. Group-commit append
# --------------------------------------------------------------------------------------


@dataclass
class AppendResult:
    rate: float  # committed commands per second
    batches: int
    rows: int
    seconds: float
    mean_append_ms: float

    @property
    def avg_batch(self) -> float:
        return self.rows / self.batches if self.batches else 0.0


async def _processor_run(
    path: Path,
    sync: str,
    submitters: int,
    seconds: float,
    with_ids: bool,
    patch: Callable[[Journal], Awaitable[None]] | None = None,
) -> AppendResult:
    journal = await Journal.open(url_of(path), synchronous=sync, migrate=True)  # type: ignore[arg-type]
    if patch is not None:  # a proposed change, monkeypatched onto this instance
        await patch(journal)
    processor = CommandProcessor(journal, initial_state())
    processor.start()
    try:
        now = datetime.now(UTC)
        # One account per submitter (up to 1000), all members of one room: every send is valid.
        users = [f"user{i:04d}" for i in range(min(submitters, 1000))]
        await asyncio.gather(
            *(
                processor.submit(
                    c.EnsureAccount(
                        actor="system", at=now, username=u, role="user", password_hash="x" * 60
                    )
                )
                for u in users
            )
        )
        await asyncio.gather(
            *(processor.submit(c.JoinRoom(actor=u, at=now, room_name="bench")) for u in users)
        )

        # Count what reaches the journal: wrap this instance's append (chat_core untouched).
        counts = {"batches": 0, "rows": 0, "append_s": 0.0}
        original = journal.append

        async def counting_append(expected_head: int, records: Any) -> None:
            started = time.perf_counter()
            await original(expected_head, records)
            counts["append_s"] += time.perf_counter() - started
            counts["batches"] += 1
            counts["rows"] += len(records)

        journal.append = counting_append  # type: ignore[method-assign]

        done = 0
        stop = False

        async def submitter(i: int) -> None:
            nonlocal done
            user = users[i % len(users)]
            n = 0
            while not stop:
                n += 1
                await processor.submit(
                    c.SendMessage(
                        actor=user,
                        at=datetime.now(UTC),
                        room_id="bench",
                        text=TEXT,
                        client_msg_id=f"s{i}-{n}" if with_ids else None,
                    )
                )
                done += 1

        tasks = [asyncio.create_task(submitter(i)) for i in range(submitters)]
        await asyncio.sleep(min(0.5, seconds / 4))  # warm-up: the pipeline fills
        done0, batches0, rows0, append0 = (
            done,
            counts["batches"],
            counts["rows"],
            counts["append_s"],
        )
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        elapsed = time.perf_counter() - started
        done1, batches1, rows1, append1 = (
            done,
            counts["batches"],
            counts["rows"],
            counts["append_s"],
        )
        stop = True
        await asyncio.gather(*tasks)
    finally:
        await processor.stop()
        await journal.close()
    batches = int(batches1 - batches0)
    return AppendResult(
        rate=(done1 - done0) / elapsed,
        batches=batches,
        rows=int(rows1 - rows0),
        seconds=elapsed,
        mean_append_ms=1000 * (append1 - append0) / batches if batches else 0.0,
    )


def _raw_run(path: Path, sync: str, batch: int, seconds: float, with_ids: bool) -> AppendResult:
    """Plain sqlite3: BEGIN IMMEDIATE; executemany(batch rows); COMMIT, as fast as it goes.

    The rows are built with the real codec inside the loop (the processor must encode too),
    so the baseline is "the same bytes into the same table, minus everything else".
    """
    upgrade(url_of(path))  # the same migrations: same table, indexes, triggers
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(f"PRAGMA synchronous={sync}")
        seq = 0
        batches = 0
        users = [f"user{i:04d}" for i in range(100)]
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            micros = codec.to_micros(datetime.now(UTC))
            rows = []
            for _ in range(batch):
                seq += 1
                user = users[seq % 100]
                event = e.MessageSent(
                    message_id=seq,
                    room_id="bench",
                    username=user,
                    text=TEXT,
                    client_msg_id=f"r{seq}" if with_ids else None,
                )
                rows.append(
                    (
                        seq,
                        "bench",
                        "message_sent",
                        1,
                        codec.encode_event(event).decode(),
                        user,
                        event.client_msg_id,
                        micros,
                    )
                )
            con.execute("BEGIN IMMEDIATE")
            con.executemany(INSERT_SQL, rows)
            con.execute("COMMIT")
            batches += 1
        elapsed = time.perf_counter() - started
    finally:
        con.close()
    return AppendResult(
        rate=seq / elapsed,
        batches=batches,
        rows=seq,
        seconds=elapsed,
        mean_append_ms=1000 * elapsed / batches if batches else 0.0,
    )


def _run_loop(coro: Any) -> Any:
    """Run a coroutine on uvloop where it is installed (as `chat-web serve` does), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def bench_append(
    syncs: list[str], submitters: int, seconds: float, workdir: Path, repeats: int
) -> list[Row]:
    out: list[Row] = []
    for sync in syncs:
        for with_ids in (True, False):
            label = "client_msg_id" if with_ids else "no client_msg_id"
            proc: AppendResult | None = None
            raw: AppendResult | None = None
            for _ in range(repeats):  # interleaved processor/raw pairs, best of each
                tmp = Path(tempfile.mkdtemp(prefix="append-", dir=workdir))
                try:
                    # The processor runs on the event loop the server runs it on (uvloop).
                    p = _run_loop(
                        _processor_run(tmp / "proc.sqlite3", sync, submitters, seconds, with_ids)
                    )
                    batch = max(1, round(p.avg_batch))
                    r = _raw_run(tmp / "raw.sqlite3", sync, batch, seconds, with_ids)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
                proc = p if proc is None or p.rate > proc.rate else proc
                raw = r if raw is None or r.rate > raw.rate else raw
            assert proc is not None and raw is not None
            target_met = proc.rate >= 0.5 * raw.rate
            is_target = sync == "FULL"
            out.append(
                Row(
                    measure=f"append, {submitters} submitters, {label}",
                    sync=sync,
                    value=proc.rate,
                    unit="cmd/s",
                    baseline=raw.rate,
                    target=">= 0.5x" if is_target else "",
                    ok=target_met if is_target else None,
                    note=(
                        f"avg batch {proc.avg_batch:.1f}, {proc.batches} commits,"
                        f" append {proc.mean_append_ms:.2f} ms/batch"
                        f" (raw {raw.mean_append_ms:.2f} ms/batch)"
                    ),
                )
            )
            print(f"  .. {out[-1].measure} [{sync}] done", file=sys.stderr, flush=True)
    return out


# --------------------------------------------------------------------------------------
# 2. Replay
# --------------------------------------------------------------------------------------


def raw_scan(path: Path, decode: bool = True) -> tuple[int, float]:
    """sqlite3 read of every row (pages of 10k) + msgspec decode of each payload."""
    decoder = msgspec.json.Decoder(e.Event)
    dec = decoder.decode
    started = time.perf_counter()
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    n = 0
    try:
        cur = con.execute(READ_SQL)
        while rows := cur.fetchmany(10_000):
            if decode:
                for row in rows:
                    dec(row[3])
            n += len(rows)
    finally:
        con.close()
    return n, time.perf_counter() - started


async def _replay_once(path: Path) -> tuple[int, float]:
    journal = await Journal.open(url_of(path))
    try:
        _state, report = await replay(journal)
    finally:
        await journal.close()
    return report.events, report.seconds


_COLD = r"""
import asyncio, json, sys, time
t0 = time.perf_counter()
from chat_core.journal.sqlite import Journal
from chat_core.journal.replay import replay
t1 = time.perf_counter()
async def main():
    journal = await Journal.open(sys.argv[1], migrate=True)
    t2 = time.perf_counter()
    state, report = await replay(journal)
    t3 = time.perf_counter()
    await journal.close()
    return t2, t3, report.events
t2, t3, n = asyncio.run(main())
print(json.dumps({"import": t1 - t0, "open": t2 - t1, "replay": t3 - t2, "events": n}))
"""


def cold_start(path: Path) -> dict[str, float]:
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _COLD, url_of(path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=BENCH_DIR.parent,
    )
    wall = time.perf_counter() - started
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    return result


def bench_replay(n_events: int, repeats: int) -> list[Row]:
    path = ensure_journal(n_events)
    raw_scan(path)  # warm the page cache: every measurement below reads a cached file
    raws, reads, replays = [], [], []
    for _ in range(repeats):  # interleaved, best of: the machine is noisy
        n, s = raw_scan(path)
        raws.append(n / s)
        n, s = raw_scan(path, decode=False)
        reads.append(n / s)
        n, s = asyncio.run(_replay_once(path))
        replays.append(n / s)
    assert n == n_events, (n, n_events)
    colds = [cold_start(path) for _ in range(repeats)]
    cold = min(colds, key=lambda r: r["open"] + r["replay"])
    cold_total = cold["open"] + cold["replay"]
    label = f"{n_events:,} events"
    return [
        Row(
            measure=f"replay {label} (events/s)",
            sync="-",
            value=max(replays),
            unit="ev/s",
            baseline=max(raws),
            target=">= 0.5x",
            ok=max(replays) >= 0.5 * max(raws),
            note=f"baseline: sqlite3 read + msgspec decode; read alone {max(reads):,.0f} ev/s",
        ),
        Row(
            measure=f"cold start {label}: open(migrate) + replay",
            sync="-",
            value=cold_total,
            unit="s",
            target="< 3 s",
            ok=cold_total < 3.0,
            note=(
                f"open {cold['open']:.2f} s + replay {cold['replay']:.2f} s;"
                f" imports {cold['import']:.2f} s; process wall {cold['wall']:.2f} s"
            ),
        ),
    ]


# --------------------------------------------------------------------------------------


def fmt(v: float, unit: str) -> str:
    if unit == "s":
        return f"{v:.2f} s"
    return f"{v:,.0f} {unit}"


def print_table(rows: list[Row], header: str) -> None:
    cols = ["measure", "sync", "value", "raw baseline", "ratio", "target", "ok", "notes"]
    table = []
    for r in rows:
        table.append(
            [
                r.measure,
                r.sync,
                fmt(r.value, r.unit),
                fmt(r.baseline, r.unit) if r.baseline is not None else "",
                f"{r.ratio:.2f}x" if r.ratio is not None else "",
                r.target,
                {True: "yes", False: "NO", None: ""}[r.ok],
                r.note,
            ]
        )
    widths = [max(len(cols[i]), *(len(t[i]) for t in table)) for i in range(len(cols))]
    print(header)
    print(" | ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for t in table:
        print(" | ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--submitters", type=int, default=100)
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=5.0, help="each append run")
    parser.add_argument(
        "--repeats", type=int, default=2, help="append pairs and replay runs (best of)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny sizes")
    parser.add_argument("--only", choices=["append", "replay"], default=None)
    args = parser.parse_args()
    if args.quick:
        args.events = min(args.events, 20_000)
        args.seconds = 2.0
        args.repeats = 1
    syncs = ["FULL", "NORMAL"] if args.synchronous == "both" else [args.synchronous]

    rows: list[Row] = []
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    workdir = DATA_DIR / "tmp"
    workdir.mkdir(exist_ok=True)
    if args.only in (None, "append"):
        rows += bench_append(syncs, args.submitters, args.seconds, workdir, args.repeats)
    if args.only in (None, "replay"):
        rows += bench_replay(args.events, args.repeats)
    header = (
        f"bench/journal.py  python {sys.version.split()[0]}  sqlite {sqlite3.sqlite_version}"
        f"  cpus {os.cpu_count()}  events {args.events:,}  submitters {args.submitters}"
        f"  append runs {args.seconds:g} s  best of {args.repeats}"
    )
    print_table(rows, header)


if __name__ == "__main__":
    main()
