"""The benchmark harness still runs: bench/run.py's fan-out scenario at its --quick size.

Nothing of bench/ is measured here; this only keeps the load generator, the baseline server
and the table working (docs/architecture.md section 7: benchmarks stay out of the test suite).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_fanout_scenario_runs_at_a_tiny_size() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--only", "fanout"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith("fan-out")]
    assert len(rows) == 2, out.stdout
    assert "deliveries/s" in rows[0] and "CPU per delivery" in rows[1], out.stdout
    assert "Traceback" not in out.stderr, out.stderr
