"""The reliability tests of tests/reliability/, larger: a soak run.

    .venv/bin/python bench/soak.py [--kills 200] [--fuzz-examples 20000] [--storm 2000]
                                   [--churn-messages 500] [--login-flood 200]
                                   [--hostile-seconds 60] [--seed N] [-k EXPRESSION]

Runs pytest on tests/reliability/ with the sizes given (the tests read them from
`RELIABILITY_*` environment variables; CI runs the same tests with their small defaults) and
prints the figures the tests report: kills survived, acknowledged messages checked, lost and
duplicated messages, frames fuzzed, connections served, latencies.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = {
    "kills": 200,
    "crash_users": 8,
    "fuzz_examples": 20_000,
    "schemathesis_examples": 1_000,
    "storm": 2_000,
    "login_flood": 200,
    "churn_observers": 6,
    "churn_chatters": 6,
    "churn_messages": 500,
    "hostile_seconds": 60,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in SIZES.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=default)
    parser.add_argument("--seed", type=int, default=None, help="replay a run (RELIABILITY_SEED)")
    parser.add_argument("-k", dest="keyword", default=None, help="pytest -k: which tests")
    args = parser.parse_args()
    env = dict(os.environ)
    for name in SIZES:
        env[f"RELIABILITY_{name.upper()}"] = str(getattr(args, name))
    if args.seed is not None:
        env["RELIABILITY_SEED"] = str(args.seed)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-s",
        "-p",
        "no:cacheprovider",
        # The soak sizes take longer than the suite's per-test timeout.
        "-o",
        "timeout=0",
        str(ROOT / "tests" / "reliability"),
    ]
    if args.keyword:
        command += ["-k", args.keyword]
    print("sizes:", ", ".join(f"{n}={getattr(args, n)}" for n in SIZES), flush=True)
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
