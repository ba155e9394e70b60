"""Following other writers of the journal (nodes sharing one PostgreSQL journal).

`catch_up` folds what the journal holds after the committed state and publishes it exactly as
the processor publishes its own commits; `Waiters` are the reads waiting for the committed
state to reach a seq (`CommandProcessor.sync`).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing

from chat_core.commit import Committed, Delivery, Publisher
from chat_core.domain.evolve import evolve
from chat_core.errors import ChatError, CorruptJournal
from chat_core.journal.port import JournalPort

log = logging.getLogger(__name__)

# Events folded and published at a time: a node far behind neither holds its whole gap in
# memory nor keeps the event loop for long.
PAGE = 1_000


async def catch_up(journal: JournalPort, committed: Committed, publisher: Publisher) -> int:
    """Fold and publish every event after `committed.state`, a page at a time, moving the
    cell forward after each page; how many events there were."""
    caught = 0
    async with aclosing(journal.read(after=committed.state.seq, page_size=PAGE)) as pages:
        async for page in pages:
            state = committed.state
            deliveries: list[Delivery] = []
            for recorded in page:
                if recorded.seq != state.seq + 1:
                    raise CorruptJournal(recorded.seq, f"it follows seq {state.seq}")
                after = evolve(state, recorded)
                deliveries.append(Delivery(recorded, state, after))
                state = after
            committed.state = state
            caught += len(deliveries)
            if deliveries:
                try:
                    publisher.publish(deliveries, state)
                except Exception:  # one bad delivery must not stop following
                    log.exception("publishing caught-up events failed")
    return caught


class Waiters:
    """Futures waiting for the committed state to reach a seq."""

    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []

    def add(self, seq: int) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((seq, future))
        return future

    def release(self, reached: int) -> None:
        """Resolve every waiter for a seq up to `reached`."""
        if not self._waiting:
            return
        waiting = []
        for seq, future in self._waiting:
            if seq > reached:
                waiting.append((seq, future))
            elif not future.done():
                future.set_result(None)
        self._waiting = waiting

    def fail(self, error: ChatError) -> None:
        waiting, self._waiting = self._waiting, []
        for _, future in waiting:
            if not future.done():
                future.set_exception(error)
