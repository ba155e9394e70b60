"""Run only the processor side of the append benchmark, for a profiler to attach to.

    .venv/bin/py-spy record -r 500 -f raw -o /tmp/append.txt -- \
        .venv/bin/python bench/profile_append.py [--seconds 5] [--ids] [--sync FULL]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import journal as bench  # bench/journal.py
import journal_data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--submitters", type=int, default=100)
    parser.add_argument("--sync", default="FULL")
    parser.add_argument("--ids", action="store_true")
    args = parser.parse_args()
    workdir = journal_data.DATA_DIR / "tmp"
    workdir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="profile-", dir=workdir))
    try:
        result = asyncio.run(
            bench._processor_run(
                tmp / "proc.sqlite3", args.sync, args.submitters, args.seconds, args.ids
            )
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"{result.rate:,.0f} cmd/s, avg batch {result.avg_batch:.1f},"
        f" append {result.mean_append_ms:.2f} ms/batch"
    )


if __name__ == "__main__":
    main()
