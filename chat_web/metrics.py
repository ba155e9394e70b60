"""`GET /metrics`: the server's counters in Prometheus' text format (docs/deploy.md).

Cheap by construction: the hot paths only bump plain integers (the hub's `delivered` and
`closes`, the limiters' `refused`, this module's command counts, once per batch), and the
Prometheus families are built from them when a scraper asks (`ChatCollector.collect`). The
histograms are observed once per journal batch. No label holds a username, a room or an
address: the families are the same size with 10 users or 10,000.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from chat_core.domain import commands as c
from chat_core.errors import ChatError
from chat_core.processor import Outcome

if TYPE_CHECKING:
    from chat_web.runtime import Runtime

# Litestar adds the charset of a text/* answer itself.
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST.replace("; charset=utf-8", "")
# Seconds of one journal append (a multi-row INSERT and its commit, fsync included at FULL).
LATENCY_BUCKETS: Final = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
# Commands in one appended batch (the processor takes up to 1,000).
BATCH_BUCKETS: Final = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)

_names: dict[type[c.Command], str] = {}


def method_of(command: c.Command) -> str:
    """`SendMessage` -> `send_message`: the command's name as the JSON-RPC methods spell it."""
    kind = type(command)
    name = _names.get(kind)
    if name is None:
        name = "".join(f"_{ch.lower()}" if ch.isupper() else ch for ch in kind.__name__)
        name = _names[kind] = name.lstrip("_")
    return name


class ProcessorMetrics:
    """The command processor's `Observer`: commands by method and outcome, append latency and
    batch size. Called once per batch on the processor's task."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.commands: dict[tuple[str, str], int] = {}
        self.append_seconds = Histogram(
            "chat_journal_append_seconds",
            "Time of one journal append (one batch, one transaction)",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "chat_journal_batch_commands",
            "Commands decided together and appended in one transaction",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.append_failures = 0
        # Appends refused because another node appended first (caught up, decided again).
        self.conflicts = 0
        self.conflicted_commands = 0

    def batch_settled(
        self,
        commands: Sequence[c.Command],
        results: Sequence[Outcome | ChatError],
        events: int,
        append_seconds: float | None,
    ) -> None:
        counts = self.commands
        for command, result in zip(commands, results, strict=True):
            if type(result) is Outcome:
                outcome = "duplicate" if result.duplicate else "ok"
            else:
                outcome = result.reason if isinstance(result, ChatError) else "error"
            key = (method_of(command), outcome)
            counts[key] = counts.get(key, 0) + 1
        if append_seconds is not None:
            self.append_seconds.observe(append_seconds)
            self.batch_size.observe(len(commands))

    def append_failed(self, commands: int, append_seconds: float) -> None:
        self.append_failures += 1
        self.append_seconds.observe(append_seconds)
        self.batch_size.observe(commands)

    def append_conflicted(self, commands: int) -> None:
        self.conflicts += 1
        self.conflicted_commands += commands


class ChatCollector(Collector):
    """The families read from the running server when a scraper asks."""

    def __init__(self, rt: Callable[[], Runtime], observer: ProcessorMetrics) -> None:
        self._rt = rt
        self._observer = observer
        self.replay_seconds = 0.0
        self.replay_events = 0

    def collect(self) -> Iterator[Metric]:
        rt = self._rt()
        hub = rt.hub
        yield _gauge("chat_connections_open", "Open WebSocket connections", hub.connection_count)
        commands = CounterMetricFamily(
            "chat_commands",
            "Commands decided by the processor, by method and outcome (ok, duplicate, or the"
            " refusal's reason)",
            labels=["method", "outcome"],
        )
        for (method, outcome), count in sorted(self._observer.commands.items()):
            commands.add_metric([method, outcome], count)
        yield commands
        yield CounterMetricFamily(
            "chat_journal_append_failures",
            "Journal appends that failed (nothing of the batch acknowledged)",
            value=self._observer.append_failures,
        )
        yield CounterMetricFamily(
            "chat_journal_conflicts",
            "Batches whose append met another node's rows: caught up and decided again",
            value=self._observer.conflicts,
        )
        yield CounterMetricFamily(
            "chat_journal_conflict_commands",
            "Commands of those batches (each decided again)",
            value=self._observer.conflicted_commands,
        )
        yield CounterMetricFamily(
            "chat_deliveries",
            "Notifications of committed events queued on connections",
            value=hub.delivered,
        )
        conns = hub.all_connections()
        frames = [conn.queued_frames for conn in conns]
        yield _gauge("chat_send_queue_frames", "Frames queued on all connections", sum(frames))
        yield _gauge(
            "chat_send_queue_frames_max",
            "Frames queued on the fullest connection",
            max(frames, default=0),
        )
        yield _gauge(
            "chat_send_queue_bytes",
            "Characters of frames queued on all connections",
            sum(conn.queued_bytes for conn in conns),
        )
        closes = CounterMetricFamily(
            "chat_connection_closes",
            "Connections ended, by close code (none: no close frame)",
            labels=["code"],
        )
        for code, count in sorted(hub.closes.items(), key=lambda item: item[0] or 0):
            closes.add_metric(["none" if code is None else str(code)], count)
        yield closes
        refusals = CounterMetricFamily(
            "chat_rate_limit_refusals",
            "Requests, logins, registrations or connections refused by a rate limit",
            labels=["limit"],
        )
        for name, limiter in _limiters(rt):
            refusals.add_metric([name], limiter.refused)
        yield refusals
        yield _gauge("chat_replay_seconds", "Seconds the start-up replay took", self.replay_seconds)
        yield _gauge(
            "chat_replay_events", "Events folded by the start-up replay", self.replay_events
        )
        yield _gauge(
            "chat_journal_seq", "The journal's head (last committed seq)", rt.processor.state.seq
        )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _limiters(rt: Runtime) -> Iterator[tuple[str, Any]]:
    named = (
        ("messages", rt.messages),
        ("requests", rt.requests),
        ("logins", rt.login_failures),
        ("registrations", rt.registrations),
        ("rooms", rt.room_creations),
        ("connections_per_ip", rt.connections),
        ("connects", rt.connects),
    )
    return ((name, limiter) for name, limiter in named if limiter is not None)


class Metrics:
    """The registry of one server: its processor observer and its collector."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.observer = ProcessorMetrics(self.registry)
        self._runtime: Runtime | None = None
        self.collector = ChatCollector(self.runtime, self.observer)
        self.registry.register(self.collector)
        # CPU seconds, resident memory and open files of this process (Linux only).
        ProcessCollector(registry=self.registry)

    def runtime(self) -> Runtime:
        assert self._runtime is not None, "metrics scraped before the server was built"
        return self._runtime

    def attach(self, rt: Runtime, replay_seconds: float, replay_events: int) -> None:
        self._runtime = rt
        self.collector.replay_seconds = replay_seconds
        self.collector.replay_events = replay_events

    def render(self) -> bytes:
        return generate_latest(self.registry)
