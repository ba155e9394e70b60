"""Start-up tells the truth about the disk (docs/protocol.md section 6).

The data directory is created (0700) whatever else is configured, the journal files are 0600,
and a journal that cannot be written stops start-up with one line naming the OS's reason. We
run as root, so chmod does not stop writes: the read-only cases are a real tmpfs remounted
read-only and a real immutable file (`chattr +i`), skipped only where mounting is impossible.
"""

from __future__ import annotations

import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reliability_kit import ServerProcess

SECRET = "disk-startup-test-secret-" + "k" * 32
QUIET = {"CHAT__ADMIN__SEED_DEMO_USERS": "false"}


class _NestedServer(ServerProcess):  # type: ignore[misc]
    """A server whose `--data-dir` is `data_dir/<nested>`, which the test leaves uncreated."""

    def __init__(self, data_dir: Path, nested: str, env: dict[str, str]) -> None:
        super().__init__(data_dir, env)
        self.nested = data_dir / nested

    def command(self) -> list[str]:
        cmd: list[str] = super().command()
        cmd[cmd.index("--data-dir") + 1] = str(self.nested)
        return cmd


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _refused(server: Any) -> str:
    """Start `server`, which must stop with exit code 1 and one error line; that line."""
    with pytest.raises(RuntimeError, match="did not report"):
        server.start()
    assert server.proc.returncode == 1, server.log_text()
    assert not server.tracebacks(), server.log_text()
    errors = [line for line in server.log_lines if line.startswith("chat-web: error: ")]
    assert len(errors) == 1, server.log_text()
    assert "invalid setting" not in errors[0], errors[0]
    return str(errors[0])


@pytest.mark.parametrize(
    "env",
    [{"JWT_SECRET": SECRET}, {"CHAT__AUTH__JWT_SECRET": SECRET}, {}],
    ids=["JWT_SECRET", "auth.jwt_secret", "generated secret"],
)
async def test_a_missing_data_directory_is_created_private_and_the_journal_too(
    tmp_path: Path, env: dict[str, str]
) -> None:
    server = _NestedServer(tmp_path / "srv", "new/data", {**QUIET, **env})
    server.start()
    try:
        assert _mode(server.nested) == 0o700
        async with server.harness() as chat:
            await chat.user_client("disk")  # a write: the journal and its WAL exist now
        for name in ("chat.db", "chat.db-wal", "chat.db-shm"):
            assert _mode(server.nested / name) == 0o600, name
    finally:
        assert server.stop() == 0, server.log_text()
    assert not server.tracebacks(), server.log_text()


def test_a_database_url_elsewhere_gets_its_directory_and_the_data_directory_too(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "journals" / "deep" / "chat.db"
    env = {**QUIET, "JWT_SECRET": SECRET, "CHAT__DATABASE__URL": f"sqlite+aiosqlite:///{journal}"}
    server = _NestedServer(tmp_path / "srv", "data", env)
    server.start()
    try:
        assert _mode(server.nested) == 0o700
        assert _mode(journal.parent) == 0o700
        assert _mode(journal) == 0o600
    finally:
        assert server.stop() == 0, server.log_text()


def test_a_data_directory_that_cannot_be_created_is_named_with_the_os_reason(
    tmp_path: Path,
) -> None:
    (tmp_path / "srv").mkdir()
    (tmp_path / "srv" / "file").write_text("not a directory")
    server = _NestedServer(tmp_path / "srv", "file/data", {"JWT_SECRET": SECRET})
    error = _refused(server)
    assert f"cannot create the data directory {server.nested}" in error, error
    assert "Not a directory" in error, error


@pytest.fixture
def mount_point(tmp_path: Path) -> Iterator[Path]:
    """A fresh tmpfs, unmounted afterwards (whatever the test left immutable)."""
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["chattr", "-R", "-i", str(where)], capture_output=True, check=False)
        subprocess.run(["umount", "-l", str(where)], check=False)


def _remount_read_only(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)


def _served_once(data_dir: Path) -> None:
    """A journal written by a real server that then stopped cleanly."""
    server = ServerProcess(data_dir, {**QUIET, "JWT_SECRET": SECRET}).start()
    assert server.stop() == 0, server.log_text()


def test_a_journal_on_a_read_only_mount_stops_start_up(mount_point: Path) -> None:
    data_dir = mount_point / "data"
    _served_once(data_dir)
    _remount_read_only(mount_point)
    error = _refused(ServerProcess(data_dir, {**QUIET, "JWT_SECRET": SECRET}))
    assert f"journal {data_dir / 'chat.db'} cannot be written" in error, error
    assert "Read-only file system" in error, error


def test_a_read_only_mount_without_a_journal_cannot_get_one(mount_point: Path) -> None:
    data_dir = mount_point / "data"
    data_dir.mkdir()
    _remount_read_only(mount_point)
    error = _refused(ServerProcess(data_dir, {**QUIET, "JWT_SECRET": SECRET}))
    assert f"cannot create the journal {data_dir / 'chat.db'}" in error, error
    assert "Read-only file system" in error, error


@pytest.mark.parametrize("target", ["chat.db", "."])
def test_an_immutable_journal_or_directory_stops_start_up(mount_point: Path, target: str) -> None:
    data_dir = mount_point / "data"
    _served_once(data_dir)
    immutable = subprocess.run(
        ["chattr", "+i", str(data_dir / target)], capture_output=True, text=True, check=False
    )
    if immutable.returncode != 0:
        pytest.skip(f"this file system has no immutable flag: {immutable.stderr.strip()}")
    error = _refused(ServerProcess(data_dir, {**QUIET, "JWT_SECRET": SECRET}))
    assert f"journal {data_dir / 'chat.db'} cannot be written" in error, error
    assert "Operation not permitted" in error, error
