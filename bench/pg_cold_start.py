"""Cold start on a PostgreSQL journal, as a ratio to the same journal in SQLite.

    .venv/bin/python bench/pg_cold_start.py [--events 1000000] [--repeats 3]
                                            [--admin-url postgresql://postgres@127.0.0.1/postgres]

The journal is `bench/journal.py`'s generated one (cached under bench/data/), copied row for
row into a PostgreSQL database `chat_bench_<events>` (kept between runs, made again when its
head differs). Each run is a fresh subprocess doing what `chat-web serve` does before it
listens: import, `open_journal(url, migrate=True)`, `checked_replay` (the fold, and the
continuity check: SQLite's quick_check too). Baseline: the same on the SQLite file, same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from journal_data import BENCH_DIR, ensure_journal, url_of

from chat_core.journal.migrate import upgrade

_COLUMNS = ("seq", "stream", "tag", "version", "payload", "actor", "command_id", "recorded_at")

_COLD = r"""
import asyncio, json, sys, time
t0 = time.perf_counter()
from chat_core.journal.check import checked_replay
from chat_core.journal.open import open_journal
t1 = time.perf_counter()
async def main():
    journal = await open_journal(sys.argv[1], migrate=True)
    t2 = time.perf_counter()
    state, report = await checked_replay(journal, history_window=50)
    t3 = time.perf_counter()
    await journal.close()
    return t2, t3, report.events
t2, t3, n = asyncio.run(main())
print(json.dumps({"import": t1 - t0, "open": t2 - t1, "replay": t3 - t2, "events": n}))
"""


async def _copy(admin_url: str, database: str, source: Path, n_events: int) -> str:
    """The PostgreSQL URL of a database holding `source`'s rows (copied once, then reused)."""
    url = admin_url.rsplit("/", 1)[0] + f"/{database}"
    admin = await asyncpg.connect(admin_url)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if exists:
            conn = await asyncpg.connect(url)
            try:
                found = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM events")
            except asyncpg.PostgresError:
                found = -1
            finally:
                await conn.close()
            if found == n_events:
                return url
            await admin.execute(f"DROP DATABASE {database} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {database}")
    finally:
        await admin.close()
    sa_url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
    await asyncio.to_thread(upgrade, sa_url)
    started = time.perf_counter()
    conn = await asyncpg.connect(url)
    lite = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        cursor = lite.execute(f"SELECT {', '.join(_COLUMNS)} FROM events ORDER BY seq")
        while rows := cursor.fetchmany(50_000):
            await conn.copy_records_to_table("events", records=rows, columns=_COLUMNS)
        await conn.execute("VACUUM ANALYZE events")
    finally:
        lite.close()
        await conn.close()
    print(f"  .. copied into {database} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return url


def cold_start(url: str) -> dict[str, float]:
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _COLD, url],
        check=True,
        capture_output=True,
        text=True,
        cwd=BENCH_DIR.parent,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall"] = time.perf_counter() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    source = ensure_journal(args.events)
    pg = asyncio.run(_copy(args.admin_url, f"chat_bench_{args.events}", source, args.events))
    urls = {
        "postgresql": pg.replace("postgresql://", "postgresql+asyncpg://", 1),
        "sqlite": url_of(source),
    }
    cold_start(urls["postgresql"])  # warm the server's buffers and the page cache once
    runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in urls}
    for _ in range(args.repeats):
        # Alternated, so drift on a shared machine hits both alike.
        for kind, url in urls.items():
            runs[kind].append(cold_start(url))
    medians = {
        kind: {key: statistics.median(r[key] for r in results) for key in results[0]}
        for kind, results in runs.items()
    }
    print(f"cold start, {args.events:,} events, median of {args.repeats} (seconds)")
    print(f"{'journal':<11} {'import':>7} {'open':>7} {'replay':>7} {'wall':>7}")
    for kind, m in medians.items():
        print(f"{kind:<11} {m['import']:7.2f} {m['open']:7.2f} {m['replay']:7.2f} {m['wall']:7.2f}")
    ratio = medians["postgresql"]["wall"] / medians["sqlite"]["wall"]
    verdict = "yes" if medians["postgresql"]["wall"] < 3.0 else "NO"
    print(f"postgresql/sqlite wall: {ratio:.2f}x; PostgreSQL under 3 s: {verdict}")


if __name__ == "__main__":
    main()
