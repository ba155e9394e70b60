"""What the proposed append-path changes to chat_core would buy, monkeypatched on one Journal.

    .venv/bin/python bench/append_variants.py [--submitters 100] [--seconds 4] [--repeats 2]

Runs the real CommandProcessor exactly as bench/journal.py does (FULL, WAL), once as is and
once per proposal, interleaved, best of --repeats, and prints each rate against the raw
sqlite3 executemany baseline of bench/journal.py measured in the same run.  chat_core is not
modified: the proposals are written here and patched onto the instance.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import journal as bench  # bench/journal.py

from chat_core import codec
from chat_core import events as e
from chat_core.commands import MessageRef
from chat_core.errors import JournalConflict
from chat_core.journal import Journal, _row
from chat_core.paths import sqlite_file
from chat_core.tables import INSERT_SQL


async def patch_one_hop_append(journal: Journal) -> None:
    """P6: append = ONE hop to a dedicated writer thread owning a plain sqlite3 connection.

    Today an append is about six awaits through SQLAlchemy's greenlet adapter and aiosqlite
    (pool checkout, BEGIN IMMEDIATE, SELECT head, executemany, COMMIT, reset-on-return), each
    a round trip to aiosqlite's thread and back through the loop's self-pipe.
    """
    path = sqlite_file(journal.url)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-writer")
    loop = asyncio.get_running_loop()

    def connect() -> sqlite3.Connection:
        con = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(f"PRAGMA synchronous={_sync[0]}")
        con.execute("PRAGMA busy_timeout=5000")
        return con

    con = await loop.run_in_executor(executor, connect)

    def write(expected_head: int, rows: list[tuple[Any, ...]]) -> None:
        con.execute("BEGIN IMMEDIATE")
        try:
            (head,) = con.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
            if head != expected_head:
                raise JournalConflict(f"head moved to {head}, expected {expected_head}")
            con.executemany(INSERT_SQL, rows)
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    async def append(expected_head: int, records: Sequence[e.Recorded]) -> None:
        if not records:
            return
        rows = [_row(record) for record in records]
        await loop.run_in_executor(executor, write, expected_head, rows)

    journal.append = append  # type: ignore[method-assign]


_FIND_SQL = (
    "SELECT seq, payload, actor, command_id, recorded_at FROM events"
    " WHERE (actor, command_id) IN"
    " (SELECT value ->> 0, value ->> 1 FROM json_each(?))"
    # Lets the planner use the partial unique index (command_id IS NOT NULL); without it,
    # SQLite cannot prove the row-value IN implies it, and scans the table.
    " AND command_id IS NOT NULL AND tag = 'message_sent'"
)


async def patch_find_messages_sql(journal: Journal) -> None:
    """P8: find_messages as one prepared driver-level query (json_each of the keys).

    Today each batch builds and compiles a SQLAlchemy OR of up to 400 AND clauses (a new
    statement shape for every batch size, so the compiled cache rarely helps).
    """

    async def find_messages(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], MessageRef]:
        wanted = list(set(keys))
        if not wanted:
            return {}
        found: dict[tuple[str, str], MessageRef] = {}
        async with journal._reader.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            cursor = await driver.execute(_FIND_SQL, (json.dumps(wanted),))
            rows = await cursor.fetchall()
            await cursor.close()
        for seq, payload, actor, command_id, at in rows:
            message = codec.decode_event(seq, "message_sent", 1, payload)
            assert isinstance(message, e.MessageSent)
            found[(actor, command_id)] = MessageRef(
                message_id=message.message_id,
                room_id=message.room_id,
                seq=seq,
                timestamp=codec.from_micros(at),
            )
        return found

    journal.find_messages = find_messages  # type: ignore[method-assign]


async def patch_both(journal: Journal) -> None:
    await patch_one_hop_append(journal)
    await patch_find_messages_sql(journal)


_sync = ["FULL"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--submitters", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    args = parser.parse_args()
    _sync[0] = args.synchronous
    workdir = bench.DATA_DIR / "tmp"
    workdir.mkdir(parents=True, exist_ok=True)
    variants = [
        ("current", None, (True, False)),
        ("P6 one-hop append (writer thread, sqlite3)", patch_one_hop_append, (True, False)),
        ("P8 find_messages via json_each SQL", patch_find_messages_sql, (True,)),
        ("P6 + P8", patch_both, (True,)),
    ]
    best: dict[tuple[str, bool], float] = {}
    raw: dict[bool, float] = {}
    batch: dict[tuple[str, bool], float] = {}
    for _ in range(args.repeats):
        for name, patch, id_modes in variants:
            for with_ids in id_modes:
                tmp = Path(tempfile.mkdtemp(prefix="variant-", dir=workdir))
                try:
                    r = asyncio.run(
                        bench._processor_run(
                            tmp / "p.sqlite3",
                            args.synchronous,
                            args.submitters,
                            args.seconds,
                            with_ids,
                            patch,
                        )
                    )
                    if name == "current":
                        b = max(1, round(r.avg_batch))
                        base = bench._raw_run(
                            tmp / "raw.sqlite3", args.synchronous, b, args.seconds, with_ids
                        )
                        raw[with_ids] = max(raw.get(with_ids, 0.0), base.rate)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
                key = (name, with_ids)
                if r.rate > best.get(key, 0.0):
                    best[key] = r.rate
                    batch[key] = r.avg_batch
    print(
        f"{datetime.now():%H:%M}  synchronous={args.synchronous}  submitters={args.submitters}"
        f"  {args.seconds:g} s runs, best of {args.repeats}"
    )
    print(
        f"{'variant':46s} {'client_msg_id':>13s} {'cmd/s':>9s} {'vs current':>10s}"
        f" {'vs raw':>7s} {'batch':>6s}"
    )
    for with_ids in (False, True):
        print(f"{'raw sqlite3 executemany':46s} {with_ids!s:>13s} {raw[with_ids]:9,.0f}")
    for name, _, id_modes in variants:
        for with_ids in id_modes:
            rate = best[(name, with_ids)]
            print(
                f"{name:46s} {with_ids!s:>13s} {rate:9,.0f}"
                f" {rate / best[('current', with_ids)]:9.2f}x {rate / raw[with_ids]:6.2f}x"
                f" {batch[(name, with_ids)]:6.1f}"
            )


if __name__ == "__main__":
    main()
