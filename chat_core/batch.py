"""A batch: commands decided together against one state, then appended in one transaction.

Pure but for the futures it carries: `decide` folds each command's events into the state the
earlier ones left (`decide`, then `evolve`), answers retries of a recorded command id with
what it recorded first, and keeps what the processor needs after the commit (the results,
the records to append, the deliveries to publish).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from chat_core.commit import Delivery, Outcome
from chat_core.domain import commands as c
from chat_core.domain import events as e
from chat_core.domain.decider import decide
from chat_core.domain.evolve import evolve
from chat_core.domain.state import ChatState
from chat_core.errors import ChatError

Job = tuple[c.Command, "asyncio.Future[Outcome]"]
# Idempotency: (actor, command id) -> what the command recorded first.
Key = tuple[str, str]
Prior = tuple[e.Recorded, ...]
# A command, and what an earlier one with its (actor, command id) recorded, if the journal has it.
Attached = tuple[c.Command, Prior | None]


class Batch:
    """Commands decided together and appended in one transaction (or none, if no events)."""

    __slots__ = (
        "before",
        "deliveries",
        "jobs",
        "records",
        "results",
        "seconds",
        "seen",
        "start",
        "state",
        "task",
    )

    def __init__(self, start: ChatState, before: dict[Key, Prior] | None) -> None:
        self.jobs: list[Job] = []  # as submitted: what is decided again after a failure
        self.start = start  # the state this batch was decided from
        self.state = start  # the state after it
        self.records: list[e.Recorded] = []
        self.deliveries: list[Delivery] = []
        # per job: its Outcome, or the ChatError that rejected it
        self.results: list[Outcome | ChatError] = []
        # Command ids recorded by this batch, and by the batch in flight when it was decided:
        # not yet in the journal, so the idempotency look-up cannot find them.
        self.seen: dict[Key, Prior] = {}
        self.before: dict[Key, Prior] = {} if before is None else before
        self.task: asyncio.Task[None] | None = None
        self.seconds: float | None = None  # how long its append took

    def decide(self, taken: list[Job], commands: Sequence[Attached]) -> None:
        """Decide `commands` (the jobs `taken`, each with its prior if a retry) after the
        batch's own, each against the state the earlier ones left; all or none join it."""
        # Work on locals; the batch takes them only if every command was decided.
        state = self.state
        seq = state.seq
        records: list[e.Recorded] = []
        deliveries: list[Delivery] = []
        results: list[Outcome | ChatError] = []
        seen = self.seen
        before = self.before
        new_seen: dict[Key, Prior] = {}
        for command, prior in commands:
            cid = command.command_id
            if cid is not None:
                key = (command.actor, cid)
                if prior is None:
                    prior = new_seen.get(key) or seen.get(key) or before.get(key)
                if prior is not None:
                    # A retry: the first decision stands; it is not decided again.
                    results.append(Outcome(events=prior, state=state, duplicate=True))
                    continue
            try:
                new_events = decide(command, state)
            except ChatError as rejected:
                results.append(rejected)
                continue
            if not new_events:
                results.append(Outcome(events=(), state=state))
                continue
            at = command.at
            actor = command.actor
            first = len(records)
            for event in new_events:
                seq += 1
                # Only a command's first event carries its id: the journal's unique index
                # is one row per (actor, command id).
                recorded = e.Recorded(
                    seq=seq,
                    at=at,
                    actor=actor,
                    event=event,
                    command_id=cid if len(records) == first else None,
                )
                after = evolve(state, recorded)
                deliveries.append(Delivery(recorded, state, after))
                state = after
                records.append(recorded)
            mine = (records[first],) if len(new_events) == 1 else tuple(records[first:])
            if cid is not None:
                new_seen[(actor, cid)] = (records[first],)
            results.append(Outcome(events=mine, state=state))
        self.jobs.extend(taken)
        self.results.extend(results)
        self.records.extend(records)
        self.deliveries.extend(deliveries)
        if new_seen:
            seen.update(new_seen)
        self.state = state
