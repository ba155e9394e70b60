"""`chat-web` and `chat-cli` as operators use them: versions, help, a bad `.env`, and the
documents' command lines, which must offer exactly the flags `--help` does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = [sys.executable, "-m", "chat_web"]
CLI = [sys.executable, "-m", "chat_cli"]


def run(command: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT")}
    env["COLUMNS"] = "200"
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("command", "name"), [(WEB, "chat-web"), (CLI, "chat-cli")])
def test_version_prints_the_package_version(command: list[str], name: str) -> None:
    done = run([*command, "--version"])
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{name} {version('chat-backend')}\n"


def flags_of_help(*command: str) -> set[str]:
    done = run([*WEB, *command, "--help"])
    assert done.returncode == 0, done.stderr
    return set(re.findall(r"--[a-z][a-z-]+", done.stdout)) - {"--help"}


def test_serve_help_shows_each_flags_default_and_environment_variable() -> None:
    done = run([*WEB, "serve", "--help"])
    for shown in (
        "(default: 127.0.0.1; env: HOST, CHAT__SERVER__HOST)",
        "(default: 3000; env: PORT, CHAT__SERVER__PORT)",
        "(default: ./chat_data; env: CHAT_DATA_DIR, CHAT__CHAT__DATA_DIR)",
        "(default: info; env: LOG_LEVEL, CHAT__LOGGING__LEVEL)",
        "(default: ./config.toml if present; env: CHAT_CONFIG_FILE)",
        "(default: ./.env if present)",
    ):
        assert shown in done.stdout


def documented_flags(document: str, command: str) -> set[str]:
    """The flags on the document's lines for `chat-web <command>` (and their continuations)."""
    text = (ROOT / document).read_text(encoding="utf-8")
    match = re.search(rf"^chat-web {command}\b(.*(?:\n {{10,}}.*)*)", text, re.MULTILINE)
    assert match is not None, f"{document} has no `chat-web {command}` line"
    lines = [line.split("#")[0] for line in match[1].splitlines()]
    return set(re.findall(r"--[a-z][a-z-]+", " ".join(lines)))


@pytest.mark.parametrize("document", ["README.md", "docs/protocol.md", "docs/deploy.md"])
@pytest.mark.parametrize("command", ["serve", "backup"])
def test_documented_command_lines_match_help(document: str, command: str) -> None:
    assert documented_flags(document, command) == flags_of_help(command)


def test_a_bad_env_file_line_stops_serve_naming_the_line(tmp_path: Path) -> None:
    env_file = tmp_path / "prod.env"
    env_file.write_text(f"JWT_SECRET={'x' * 40}\nthis line is wrong\n")
    done = run([*WEB, "serve", "--env-file", str(env_file), "--data-dir", str(tmp_path)], tmp_path)
    assert done.returncode == 2
    assert done.stderr == f"chat-web: error: bad line 2 in {env_file}: expected KEY=VALUE\n"
    assert not (tmp_path / "chat.db").exists()


def test_env_file_in_the_working_directory_configures_serve(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PORT=not-a-port\n")
    done = run([*WEB, "serve", "--data-dir", str(tmp_path / "data")], tmp_path)
    assert done.returncode == 2
    assert "server.port" in done.stderr and "(from PORT)" in done.stderr
