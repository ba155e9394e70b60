"""schemathesis against the server's OpenAPI schema (`/schema/openapi.json`): every HTTP route,
with schema-valid and schema-invalid bodies, under every check (no 5xx, responses match the
documented schemas and status codes, schema-valid data is accepted, invalid data refused).

schemathesis is a dev dependency; its CLI runs against a real server subprocess.
Sizes: RELIABILITY_SCHEMATHESIS_EXAMPLES (default 100) examples per operation.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from reliability_kit import seed, size


def test_http_routes_conform_to_their_openapi_schema(launch: Any, tmp_path: Path) -> None:
    cli = Path(sys.executable).with_name("schemathesis")
    if not cli.exists():
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
    server = launch()
    command = [
        str(cli),
        "run",
        f"{server.url}/schema/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(size("schemathesis_examples", 100)),
        "--no-color",
        "--generation-database",
        "none",
    ]
    if seed() is not None:
        command += ["--seed", str(seed())]
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # Every route of the schema: register, login, password, logout, health.
    assert "Tested: 5" in output, output
    assert not server.tracebacks(), server.log_text()
