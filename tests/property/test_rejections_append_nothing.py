"""A rejected command appends nothing: through the real processor on a real SQLite file."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat_core.errors import ChatError
from chat_kit import COMMANDS, LiveCore, timed


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commands=st.lists(COMMANDS, min_size=5, max_size=30))
def test_a_rejected_command_leaves_the_journal_and_the_state_unchanged(commands):
    with tempfile.TemporaryDirectory() as tmp:
        core = LiveCore(f"sqlite+aiosqlite:///{Path(tmp) / 'j.db'}")
        try:
            rejections = 0
            for command in timed(commands):
                head, state, rows = core.head(), core.processor.state, len(core.rows())
                try:
                    outcome = core.submit(command)
                except ChatError:
                    rejections += 1
                    assert core.head() == head
                    assert len(core.rows()) == rows
                    assert core.processor.state is state
                    continue
                assert core.head() == head + len(outcome.events)
                assert core.processor.state.seq == core.head()
            assert core.replayed() == core.processor.state
        finally:
            core.close()
