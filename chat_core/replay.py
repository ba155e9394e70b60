"""Rebuild the live state by folding the whole journal, a page at a time."""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec

from chat_core.evolve import evolve
from chat_core.journal import Journal
from chat_core.state import ChatState, initial_state


class ReplayReport(msgspec.Struct, frozen=True, kw_only=True):
    events: int
    seconds: float
    head: int


async def replay(
    journal: Journal,
    *,
    history_window: int = 50,
    until: int | None = None,
    page_size: int = 10_000,
    progress: Callable[[int], None] | None = None,
) -> tuple[ChatState, ReplayReport]:
    """Fold the journal (up to `until`) into a fresh state.

    Streams pages so memory stays flat however long the journal is. A row that cannot be
    decoded raises `CorruptJournal` with its seq: nothing is skipped silently.
    """
    started = time.perf_counter()
    state = initial_state(history_window)
    count = 0
    async for page in journal.read(0, until, page_size):
        for recorded in page:
            state = evolve(state, recorded)
        count += len(page)
        if progress is not None:
            progress(count)
    return state, ReplayReport(events=count, seconds=time.perf_counter() - started, head=state.seq)
