"""Disk trouble, for real: the data directory on a small tmpfs that is then filled up.

While the disk is full every command that would append fails with an internal error (-32603),
nothing is acknowledged that was not written (each acknowledged message is in the history
exactly once, each refused one is absent), reads and the connection keep working, and once
space is freed the server carries on by itself. A SIGKILL and restart afterwards finds every
acknowledged message, and `chat-cli replay --verify` passes.

Mounting needs root (CAP_SYS_ADMIN). A data directory that turns read-only while serving is not
tested for real: we run as root, so chmod does not stop writes, and a file system cannot be
remounted read-only while the server holds the journal open for writing (a read-only bind mount
does not affect the descriptors already open either); the full disk is the real fault we can
inject. A journal read-only or immutable at start-up is tested in test_disk_startup.py.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import RpcError
from reliability_kit import replay_verify

CHUNK = 64 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "small_disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(directory: Path) -> Path:
    """Fill the file system of `directory` until it refuses another byte; the filler file."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        # Big writes, then single bytes into the last block, so not even a page is left.
        for chunk in (b"\0" * CHUNK, b"\0"):
            try:
                while True:
                    os.write(fd, chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
        os.fsync(fd)
    finally:
        os.close(fd)
    return filler


async def _send(client: Any, room: str, cmid: str) -> dict[str, Any] | RpcError:
    try:
        return await client.call("send_message", room_id=room, text=f"m {cmid}", client_msg_id=cmid)
    except RpcError as error:
        return error


async def _history(client: Any, room: str) -> list[dict[str, Any]]:
    page = await client.call("get_history", room_id=room, limit=200)
    assert not page["has_more"]
    return list(page["messages"])


async def test_a_full_disk_fails_commands_and_the_server_recovers(
    launch: Any, small_disk: Path
) -> None:
    data_dir = small_disk / "data"
    server = launch(data_dir=data_dir)
    room = "diskroom"
    acked: dict[str, int] = {}
    refused: list[str] = []
    async with server.harness() as chat:
        user, client = await chat.user_client("disk")
        await client.call("join_room", room_name=room)
        for _ in range(5):
            cmid = uuid.uuid4().hex
            result = await _send(client, room, cmid)
            assert isinstance(result, dict), result
            acked[cmid] = result["message_id"]

        filler = await asyncio.to_thread(_fill, small_disk)
        outcomes = []
        for _ in range(40):
            cmid = uuid.uuid4().hex
            result = await _send(client, room, cmid)
            outcomes.append(result)
            if isinstance(result, RpcError):
                assert (result.code, result.reason) == (-32603, "internal_error"), result
                refused.append(cmid)
            else:
                acked[cmid] = result["message_id"]
        assert refused, f"nothing failed on a full disk: {outcomes}"
        # Other commands that append fail the same way; reads and the connection still work.
        error = await client.error_of("join_room", room_name="fullroom")
        assert error.code == -32603, error
        assert (await client.call("ping"))["pong"] is True
        messages = await _history(client, room)
        stored = [m["client_msg_id"] for m in messages]
        assert all(stored.count(cmid) == 1 for cmid in acked), stored
        assert not set(refused) & set(stored), "a refused message was written"

        # Space again: the server carries on by itself, and a retry of a refused send is new.
        filler.unlink()
        for cmid in refused[:3]:
            result = await _send(client, room, cmid)
            assert isinstance(result, dict), result
            assert result["duplicate"] is False, result
            acked[cmid] = result["message_id"]
        for _ in range(5):
            cmid = uuid.uuid4().hex
            result = await _send(client, room, cmid)
            assert isinstance(result, dict), result
            acked[cmid] = result["message_id"]
        assert (await client.call("join_room", room_name="fullroom"))["room_id"] == "fullroom"

    # Nothing acknowledged is lost across a crash either.
    await asyncio.to_thread(server.stop, signal.SIGKILL)
    await asyncio.to_thread(server.start)
    async with server.harness() as chat:
        client = await chat.connect(await chat.login(user.username, user.password))
        messages = await _history(client, room)
        by_cmid = {m["client_msg_id"]: m["message_id"] for m in messages}
        assert len(by_cmid) == len(messages), "a message is stored twice"
        for cmid, message_id in acked.items():
            assert by_cmid.get(cmid) == message_id, (cmid, message_id, by_cmid.get(cmid))
        assert not set(refused[3:]) & set(by_cmid)
    code, output = await replay_verify(data_dir)
    assert code == 0, output
    print(
        f"\ndisk full: acked={len(acked)} refused with -32603={len(refused)}"
        " lost=0 written-but-refused=0"
    )
