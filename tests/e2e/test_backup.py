"""`chat-web backup DEST` of a journal under write load; the copy verified and served."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from helpers import unique
from server_kit import ServerProcess, stop_and_check

WEB = [sys.executable, "-m", "chat_web"]
CLI = [sys.executable, "-m", "chat_cli"]


async def run(*command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, list(command), cwd=cwd, capture_output=True, text=True, timeout=120
    )


async def test_backup_of_a_journal_under_write_load_verifies_and_serves(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = start_server()
    acked: list[int] = []
    async with server.harness() as chat:
        _, writer = await chat.user_client("bk")
        room = unique("bkroom")
        await writer.call("join_room", room_name=room)
        stop = asyncio.Event()
        warm = asyncio.Event()

        async def write() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                result = await writer.call("send_message", room_id=room, text=f"w{n}")
                acked.append(result["seq"])
                if n == 50:
                    warm.set()

        task = asyncio.create_task(write())
        try:
            async with asyncio.timeout(30):
                await warm.wait()  # the load is on before the copy starts
            before = acked[-1]
            dest = tmp_path / "copy.db"
            done = await run(
                *WEB, "backup", str(dest), "--data-dir", str(server.data_dir), cwd=tmp_path
            )
            after = acked[-1]
            # Writes went on during the copy: the server was not held up by it.
            assert after > before
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await task
    assert done.returncode == 0, done.stderr
    assert "verified" in done.stdout, done.stdout
    head = int(done.stdout.split("up to seq ")[1].split(",")[0])
    # A snapshot of one commit: everything acked before the copy began, nothing half-written
    # (the last command in the copy may have been committed and not yet acked at the end).
    assert before <= head <= after + 1
    assert head in acked
    assert dest.stat().st_mode & 0o777 == 0o600

    # Restore: the copy as chat.db of a data directory (docs/deploy.md, "Backups").
    restored = tmp_path / "restored"
    restored.mkdir(mode=0o700)
    shutil.copy2(dest, restored / "chat.db")
    shutil.copy2(server.data_dir / "jwt_secret", restored / "jwt_secret")
    verify = await run(*CLI, "replay", "--verify", "--data-dir", str(restored), cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"ok: {head} events verified" in verify.stdout

    second = ServerProcess(restored, {"CHAT__AUTH__BCRYPT_ROUNDS": "4"})
    second.start()
    try:
        async with second.harness() as chat:
            assert await chat.journal_seq() == head
            _, reader = await chat.user_client("bkr")
            await reader.call("join_room", room_name=room)
            page = await reader.call("get_history", room_id=room, limit=1)
            # The last message of the copy is the last one of the room, in the restored server.
            assert page["messages"][-1]["text"] == f"w{acked.index(head) + 1}"
    finally:
        stop_and_check(second)


async def test_backup_refuses_to_overwrite_and_names_a_missing_journal(tmp_path: Path) -> None:
    missing = await run(
        *WEB, "backup", str(tmp_path / "x.db"), "--data-dir", str(tmp_path / "none"), cwd=tmp_path
    )
    assert missing.returncode == 1
    assert (
        missing.stderr.startswith("chat-web: error: journal ")
        and "does not exist" in missing.stderr
    )
    existing = tmp_path / "exists.db"
    existing.write_text("keep me")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "chat.db").write_bytes(b"")
    refused = await run(
        *WEB, "backup", str(existing), "--data-dir", str(tmp_path / "data"), cwd=tmp_path
    )
    assert refused.returncode == 1, refused.stderr
    assert "exists" in refused.stderr
    assert existing.read_text() == "keep me"
