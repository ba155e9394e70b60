"""Kill -9 a writer at random moments: every batch it reported committed survives, once,
and the journal still decodes from start to end."""

from __future__ import annotations

import asyncio
import json
import random
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from chat_core.domain import events as e
from chat_core.journal.replay import replay
from chat_core.journal.sqlite import Journal

WRITER = Path(__file__).with_name("crash_writer.py")
ROOT = Path(__file__).resolve().parents[2]


def _read_lines(proc: subprocess.Popen[str], count: int, timeout: float) -> list[str]:
    """Wait (with a deadline, never a sleep) for `count` lines of the child's stdout."""
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while len(lines) < count:
            left = deadline - time.monotonic()
            assert left > 0, f"the writer reported only {len(lines)} batches in {timeout}s"
            if selector.select(left):
                line = proc.stdout.readline()
                assert line, f"the writer exited early with {proc.poll()}"
                lines.append(line)
    return lines


async def _check(url: str, reported: list[dict]) -> None:
    journal = await Journal.open(url)
    try:
        state, report = await replay(journal)
        rows = [row async for page in journal.read_rows() for row in page]
        records = [r async for page in journal.read() for r in page]
    finally:
        await journal.close()
    assert [row.seq for row in rows] == list(range(1, len(rows) + 1))
    assert report.events == len(rows) == state.seq
    by_id: dict[str, list[e.Recorded]] = {}
    for recorded in records:
        if recorded.command_id is not None:
            by_id.setdefault(recorded.command_id, []).append(recorded)
    for batch in reported:
        for cid, seq, message_id in zip(
            batch["ids"], batch["seqs"], batch["message_ids"], strict=True
        ):
            (found,) = by_id[cid]
            assert found.seq == seq
            assert isinstance(found.event, e.MessageSent)
            assert (found.event.message_id, found.event.text) == (message_id, cid)
    message_ids = [r.event.message_id for r in records if isinstance(r.event, e.MessageSent)]
    assert message_ids == sorted(set(message_ids))


def test_batches_reported_committed_survive_sigkill_exactly_once(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'journal.db'}"
    rng = random.Random()
    reported: list[dict] = []
    for run in range(5):
        proc = subprocess.Popen(
            [sys.executable, str(WRITER), url, f"run{run}"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            lines = _read_lines(proc, rng.randint(1, 8), timeout=30)
        finally:
            proc.send_signal(signal.SIGKILL)
            rest, _ = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        # Lines printed before the kill but not yet read were committed too.
        complete = [
            line for line in (lines + rest.splitlines(keepends=True)) if line.endswith("\n")
        ]
        reported += [json.loads(line) for line in complete]
    assert len(reported) >= 5
    asyncio.run(_check(url, reported))
