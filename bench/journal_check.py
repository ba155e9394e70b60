"""What checking the journal costs at start-up: cold open + replay, with and without the check.

    .venv/bin/python bench/journal_check.py [--events 1000000] [--repeats 3]

Each run is a fresh subprocess (imports, Journal.open(migrate=True), then either `replay` or
`chat_core.journal.check.checked_replay`, which runs `PRAGMA quick_check` and the table's count
on a second connection while replay folds), on the cached journal of bench/journal.py, best of
`--repeats`, interleaved. Also the checks alone: quick_check, integrity_check (what
`chat-cli replay --verify` runs) and the count. The bar: a 1M-event cold start under 3 s.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import journal as journal_bench
import journal_data

_COLD = r"""
import asyncio, json, sys, time
t0 = time.perf_counter()
from chat_core.journal.sqlite import Journal
from chat_core.journal.check import checked_replay
from chat_core.journal.replay import replay
async def main():
    journal = await Journal.open(sys.argv[1], migrate=True)
    t1 = time.perf_counter()
    if sys.argv[2] == "checked":
        await checked_replay(journal, history_window=50)
    else:
        await replay(journal, history_window=50)
    t2 = time.perf_counter()
    await journal.close()
    return t1, t2
t1, t2 = asyncio.run(main())
print(json.dumps({"open": t1 - t0, "replay": t2 - t1, "total": t2 - t0}))
"""


def cold(path: Path, mode: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _COLD, journal_data.url_of(path), mode],
        check=True,
        capture_output=True,
        text=True,
        cwd=journal_data.BENCH_DIR.parent,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def alone(path: Path, sql: str) -> float:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        started = time.perf_counter()
        connection.execute(sql).fetchall()
        return time.perf_counter() - started
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    path = journal_data.ensure_journal(args.events)
    journal_bench.raw_scan(path, decode=False)  # warm the page cache
    runs: dict[str, list[dict[str, float]]] = {"plain": [], "checked": []}
    for _ in range(args.repeats):
        for mode, results in runs.items():
            results.append(cold(path, mode))
    plain = min(runs["plain"], key=lambda r: r["total"])
    checked = min(runs["checked"], key=lambda r: r["total"])
    print(f"bench/journal_check.py  sqlite {sqlite3.sqlite_version}  events {args.events:,}")
    print(f"  quick_check alone      {alone(path, 'PRAGMA quick_check'):.2f} s")
    print(f"  integrity_check alone  {alone(path, 'PRAGMA integrity_check'):.2f} s")
    count_sql = "SELECT count(*), min(seq), max(seq) FROM events"
    print(f"  count/min/max alone    {alone(path, count_sql):.2f} s")
    print(f"  cold open+replay       {plain['total']:.2f} s (replay {plain['replay']:.2f} s)")
    print(
        f"  ... with the check     {checked['total']:.2f} s (replay {checked['replay']:.2f} s),"
        f" x{checked['total'] / plain['total']:.2f}"
    )


if __name__ == "__main__":
    main()
