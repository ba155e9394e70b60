"""What bench/scenarios_nodes.py drives: a PostgreSQL database of the run's own, a cluster of
`chat-web serve` nodes on it (or one SQLite node), and the per-process figures of a window:
each node's CPU and its /metrics counters, the load generator's and PostgreSQL's CPU."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families
from servers import CLK_TCK, Server, prepare_accounts

ADMIN_URL = os.environ.get(
    "CHAT_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
# The /metrics counters a window reads on each node (summed over their labels).
COUNTERS = (
    "chat_commands_total",
    "chat_deliveries_total",
    "chat_journal_batch_commands_count",
    "chat_journal_batch_commands_sum",
    "chat_journal_conflicts_total",
    "chat_journal_conflict_commands_total",
)


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of any process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy() -> float:
    """CPU seconds every core of the machine has been busy so far (/proc/stat, all users)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


# --- the database ----------------------------------------------------------------------------


class Database:
    """A PostgreSQL database made for one run and dropped after it."""

    def __init__(self, name: str) -> None:
        self.name = name
        base = ADMIN_URL.rsplit("/", 1)[0]
        self.url = f"{base}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)

    def __enter__(self) -> Database:
        asyncio.run(_admin(f"CREATE DATABASE {self.name}"))
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run(_admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)"))

    def backends(self) -> list[int]:
        """The pids of the PostgreSQL backends serving this database now."""
        return asyncio.run(_backends(self.name))


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _backends(name: str) -> list[int]:
    conn = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", name)
    finally:
        await conn.close()
    return [int(row["pid"]) for row in rows]


# --- the cluster -----------------------------------------------------------------------------


def node_env(url: str | None) -> dict[str, str]:
    env = {"CHAT__SERVER__METRICS": "true"}
    if url is not None:
        env["CHAT__DATABASE__URL"] = url
    return env


def prepare(where: Path, url: str | None, memberships: dict[str, list[str]]) -> dict[str, str]:
    """Register every user (and join its rooms) through a set-up node; {username: token}."""
    server = Server.chat(where / "setup", node_env(url)).start()
    try:
        return asyncio.run(prepare_accounts(server, memberships))
    finally:
        server.stop()


class Cluster:
    """`n` nodes on one journal (`url`: PostgreSQL; None: SQLite in the first node's data
    directory, which then must be the set-up node's); started one after the other."""

    def __init__(self, where: Path, url: str | None, n: int) -> None:
        if url is None:
            assert n == 1, "SQLite serves one node"
            dirs = [where / "setup"]
        else:
            dirs = [where / f"node{i}" for i in range(n)]
        self.nodes = [Server.chat(d, node_env(url)) for d in dirs]

    def __enter__(self) -> Cluster:
        try:
            for node in self.nodes:
                node.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def tracebacks(self) -> int:
        return sum(len(node.tracebacks()) for node in self.nodes)


def scrape(server: Server) -> dict[str, float]:
    """The COUNTERS of one node now."""
    text = httpx.get(f"{server.url}/metrics", trust_env=False, timeout=10).text
    found = dict.fromkeys(COUNTERS, 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in found:
                found[sample.name] += sample.value
    return found


# --- a measured window -----------------------------------------------------------------------


@dataclass
class Snapshot:
    at: float
    nodes: list[tuple[float, dict[str, float]]]  # per node: CPU seconds, counters
    loadgen: dict[int, float]  # worker pid -> CPU seconds
    postgres: dict[int, float]  # backend pid -> CPU seconds
    machine: float  # busy CPU seconds of the whole machine


def snapshot(nodes: list[Server], workers: Iterable[int], db: Database | None) -> Snapshot:
    at = time.monotonic()
    cpus = [node.cpu_seconds() for node in nodes]
    counters = [scrape(node) for node in nodes]
    pg = {pid: cpu_of(pid) for pid in db.backends()} if db is not None else {}
    gen = {pid: cpu_of(pid) for pid in workers}
    return Snapshot(at, list(zip(cpus, counters, strict=True)), gen, pg, machine_busy())


@dataclass
class Window:
    """What happened between two snapshots."""

    seconds: float
    node_cpu: list[float]  # CPU seconds of each node
    node_counts: list[dict[str, float]]  # counter deltas of each node
    loadgen_cpu: float
    postgres_cpu: float
    machine_cpu: float  # the whole machine's busy CPU seconds, this run's and others'
    total: dict[str, float] = field(default_factory=dict)  # counters summed over the nodes

    def __post_init__(self) -> None:
        self.total = {k: sum(c[k] for c in self.node_counts) for k in COUNTERS}

    @property
    def others(self) -> float:
        """Cores busy with other work than this run's (nodes, generator, database)."""
        ours = sum(self.node_cpu) + self.loadgen_cpu + self.postgres_cpu
        return max(0.0, self.machine_cpu - ours) / self.seconds


def window(a: Snapshot, b: Snapshot) -> Window:
    pairs = list(zip(a.nodes, b.nodes, strict=True))
    node_cpu = [cb - ca for (ca, _), (cb, _) in pairs]
    counts = [{k: kb[k] - ka[k] for k in COUNTERS} for (_, ka), (_, kb) in pairs]
    # A backend born inside the window counts all its CPU; one gone before its end, none.
    pg = sum(cpu - a.postgres.get(pid, 0.0) for pid, cpu in b.postgres.items())
    gen = sum(cpu - a.loadgen.get(pid, 0.0) for pid, cpu in b.loadgen.items())
    return Window(b.at - a.at, node_cpu, counts, gen, pg, b.machine - a.machine)
