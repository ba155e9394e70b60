"""What can be checked of the Dockerfile without a Docker daemon (docs/deploy.md, "Container")."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

from chat_core.settings.sources import load_settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")


def instructions(name: str) -> list[str]:
    """The arguments of every `name` instruction, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [m[1].strip() for m in re.finditer(rf"^{name}\s+(.*)$", joined, re.MULTILINE)]


def test_every_file_the_image_copies_from_the_tree_exists() -> None:
    copies = [c for c in instructions("COPY") if not c.startswith("--from")]
    assert copies
    for copy in copies:
        *sources, _dest = shlex.split(copy)
        for source in sources:
            assert (ROOT / source).exists(), source


def test_the_images_environment_is_valid_settings() -> None:
    env: dict[str, str] = {}
    for line in instructions("ENV"):
        for pair in shlex.split(line):
            key, _, value = pair.partition("=")
            env[key] = value
    settings = load_settings(env={k: v for k, v in env.items() if k not in ("PATH",)})
    assert settings.server.host == "0.0.0.0"
    assert settings.chat.data_dir == "/data"
    assert settings.admin.seed_demo_users is False
    assert settings.logging.format == "json"


def test_the_image_runs_an_installed_script_as_pid_1() -> None:
    (cmd,) = instructions("CMD")
    program = cmd.strip('[]"').split('"')[0]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert program in scripts
    assert cmd.startswith("["), "exec form, so chat-web receives SIGTERM itself"
    assert instructions("USER") == ["chat"]


def test_the_build_context_leaves_out_the_venv_and_data() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", "chat_data"} <= set(ignored)
