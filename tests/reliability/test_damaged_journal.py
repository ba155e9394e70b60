"""A damaged journal is never served (docs/protocol.md section 6).

Each test damages a copy of a real journal (written through the `Journal` API, a few thousand
events, so the events table has interior and leaf pages) and starts the real `chat-web serve`
on it: start-up stops with one line naming the file, the damage and what to do, exit code 1,
no traceback, and the file is not written. `chat-cli replay --verify` then fails on it too.
Garbage after the last frame of the write-ahead log is a torn write, not damage: served.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))

import damage_kit as kit
from reliability_kit import ServerProcess, replay_verify


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """One real journal for the module (checkpointed), and its head."""
    path = tmp_path_factory.mktemp("pristine") / "chat.db"
    head = asyncio.run(kit.build_journal(path))
    assert kit.events_pages(path, "internal"), "the table should have interior pages"
    return path, head


def _middle(pages: list[int]) -> int:
    return pages[len(pages) // 2]


DAMAGE: dict[str, Callable[[Path], None]] = {
    "header page": lambda p: kit.overwrite(p, 1, offset=0),
    "schema on the first page": lambda p: kit.overwrite(p, 1, offset=100),
    "interior page in the middle": lambda p: kit.overwrite(
        p, _middle(kit.events_pages(p, "internal"))
    ),
    "leaf page in the middle": lambda p: kit.overwrite(p, _middle(kit.events_pages(p, "leaf"))),
    "truncated file": lambda p: os.truncate(p, p.stat().st_size // 2),
    "gap in seq": lambda p: kit.drop_row(p, 2000),
    "payload that does not decode": lambda p: kit.rewrite_payload(
        p, 2500, '{"type": "message_sent", "text": 42}'
    ),
}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("damage", list(DAMAGE))
async def test_a_damaged_journal_stops_start_up_with_one_line_and_is_not_written(
    pristine: tuple[Path, int], tmp_path: Path, damage: str
) -> None:
    data_dir = tmp_path / "data"
    journal = kit.copy_journal(pristine[0], data_dir)
    DAMAGE[damage](journal)
    before = _digest(journal)
    server = ServerProcess(data_dir, {"CHAT__ADMIN__SEED_DEMO_USERS": "false"})
    with pytest.raises(RuntimeError, match="did not report"):
        server.start()
    assert server.proc is not None and server.proc.returncode == 1, server.log_text()
    assert not server.tracebacks(), server.log_text()
    errors = [line for line in server.log_lines if line.startswith("chat-web: error: ")]
    assert len(errors) == 1, server.log_text()
    error = errors[0]
    assert str(journal) in error, error
    assert "damaged" in error and "restore it from a backup" in error, error
    assert _digest(journal) == before
    # The offline tool agrees: it exits non-zero, and writes nothing either.
    code, output = await replay_verify(data_dir)
    assert code == 1, output
    assert "Traceback" not in output
    assert _digest(journal) == before


async def test_the_line_names_the_page_and_the_cure(
    pristine: tuple[Path, int], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    journal = kit.copy_journal(pristine[0], data_dir)
    page = _middle(kit.events_pages(journal, "leaf"))
    kit.overwrite(journal, page)
    server = ServerProcess(data_dir)
    with pytest.raises(RuntimeError):
        server.start()
    (error,) = [line for line in server.log_lines if line.startswith("chat-web: error: ")]
    assert f"page {page}" in error, error
    assert f"chat-cli replay --verify --data-dir {data_dir}" in error, error


async def test_garbage_after_the_last_wal_frame_is_a_torn_write_and_is_served(
    pristine: tuple[Path, int], tmp_path: Path, launch: Any
) -> None:
    data_dir = tmp_path / "torn"
    journal, head = await kit.crashed_copy(pristine[0], data_dir)
    kit.tear_wal(journal)
    server = launch({"CHAT__ADMIN__SEED_DEMO_USERS": "false"}, data_dir=data_dir)
    banner = next(line for line in server.log_lines if "listening on" in line)
    assert f"replayed={head} events" in banner, banner
    async with server.harness() as chat:
        _, client = await chat.user_client("torn")
        page = await client.call("join_room", room_name="general")
        assert page["room_id"] == "general"
    code, output = await replay_verify(data_dir)
    assert code == 0, output


async def test_verify_lists_what_the_full_check_finds_and_what_is_still_readable(
    pristine: tuple[Path, int], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    journal = kit.copy_journal(pristine[0], data_dir)
    # An index page: every row is still readable through the table, but the file is damaged.
    index_pages = kit.pages_of(journal, "ix_events_stream_tag_seq", "leaf")
    kit.overwrite(journal, _middle(index_pages))
    code, output = await replay_verify(data_dir)
    assert code == 1, output
    lines = output.splitlines()
    assert lines[0].startswith("damaged: "), output
    assert lines[-1].startswith(f"failed: the file is damaged; {pristine[1]} events read"), output
