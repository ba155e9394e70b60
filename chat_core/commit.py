"""What the command processor hands out, and the interfaces of those it hands it to.

`Outcome` answers a caller; `Delivery` is a committed event with the states around it, for the
publisher (the web layer's hub), which reads the committed state between commits through the
`Committed` cell; an `Observer` (metrics) hears of each settled batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from chat_core.domain import commands as c
from chat_core.domain import events as e
from chat_core.domain.state import ChatState
from chat_core.errors import ChatError


class Outcome(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What a command did: its recorded events and the state right after it.

    `duplicate`: a retry of a command id already recorded; it was not decided again, nothing
    was appended, and `events` are what the first one recorded (the events carrying its id).
    """

    events: tuple[e.Recorded, ...]
    state: ChatState
    duplicate: bool = False


class Delivery(msgspec.Struct, frozen=True, gc=False):
    """A recorded event and the states just before and after it (what its notification says
    depends on both: `chat_core.protocol.notify`)."""

    recorded: e.Recorded
    before: ChatState
    after: ChatState


class Committed:
    """The committed state, shared by reference: the processor writes it, the hub reads it.

    Made before both, so the hub need not know the processor (nor the processor the hub
    beyond its `Publisher` interface).
    """

    __slots__ = ("state",)

    def __init__(self, state: ChatState) -> None:
        self.state = state


class Publisher(Protocol):
    """Receives every committed batch, in commit order (the web layer's hub)."""

    def publish(self, deliveries: Sequence[Delivery], state: ChatState) -> None: ...


class NullPublisher:
    def publish(self, deliveries: Sequence[Delivery], state: ChatState) -> None:
        return None


class Observer(Protocol):
    """Hears of every settled batch (metrics); called on the processor task, must not block."""

    def batch_settled(
        self,
        commands: Sequence[c.Command],
        results: Sequence[Outcome | ChatError],
        events: int,
        append_seconds: float | None,
    ) -> None:
        """`results[i]` is what `commands[i]` got; `append_seconds` is None when nothing was
        appended (every command rejected or a no-op)."""
        ...

    def append_failed(self, commands: int, append_seconds: float) -> None: ...

    def append_conflicted(self, commands: int) -> None:
        """A batch of `commands` met another writer's rows (nodes on one journal): it is
        caught up and decided again (or failed, past the retry bound)."""
        ...
