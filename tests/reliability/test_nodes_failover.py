"""Failover: three nodes on one PostgreSQL journal, one killed with SIGKILL again and again
under load, then started again.

Senders send numbered messages, each with a client_msg_id; when their node dies they move to
the next node, resume with `since=` the last seq they saw, and retry the unacknowledged send
with the same id. At the end every acknowledged message is in the journal exactly once, no
message is there twice, the seqs have no gap, the nodes that were not killed kept answering
(no pause over 2 s), and a user connected only to a killed node went offline for a watcher on
another node within 10 s.

Sizes: RELIABILITY_NODE_KILLS (10), RELIABILITY_NODE_SENDERS (3).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from helpers import GENEROUS_LIMITS, Client, ConnectionLost, HandshakeRefused, RpcError, User
from reliability_kit import ServerProcess, size, stop_and_check

from pg_kit import stop_all

NODES = 3
# Kills on which a user of the dying node is watched going offline (each waits for it).
WATCHED_KILLS = 3
ROOM = "failover"


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[Any]]:
    from pg_kit import fresh_database

    for url in fresh_database():
        env = {**GENEROUS_LIMITS, "CHAT__DATABASE__URL": url}
        started = [ServerProcess(tmp_path / f"node{i}", env) for i in range(NODES)]
        try:
            with ThreadPoolExecutor(NODES) as pool:
                for done in [pool.submit(node.start) for node in started]:
                    done.result()
            yield started
        finally:
            stop_all(started, stop_and_check)


class Sender:
    """Sends `text i` with client_msg_id `name-i`, moving over the nodes when one dies."""

    def __init__(
        self, name: str, user: User, nodes: list[Any], start: int, progress: asyncio.Event
    ) -> None:
        self.name = name
        self.user = user
        self.nodes = nodes
        self.turn = itertools.count(start)
        self.acked: dict[str, int] = {}  # client_msg_id -> seq
        self.last_seq = 0
        self.moves = 0
        self.retries = 0
        self.gaps: list[float] = []  # seconds between acks while on a node that lived
        self.progress = progress

    async def connect(self) -> Client:
        while True:
            node = self.nodes[next(self.turn) % len(self.nodes)]
            if not node.running or node.port is None:
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(OSError, HandshakeRefused, TimeoutError, ConnectionLost):
                client = await Client.open(node.ws_url, self.user.token, self.last_seq or None)
                self._seen(client)
                return client

    def _seen(self, client: Client) -> None:
        seqs = [n["params"].get("seq") for n in client.notifications]
        known = [s for s in seqs if isinstance(s, int)]
        if known:
            self.last_seq = max(self.last_seq, *known)
        established = client.established["params"].get("journal_seq")
        if isinstance(established, int) and not self.last_seq:
            self.last_seq = established

    async def run(self, stop: asyncio.Event) -> None:
        client = await self.connect()
        i = 0
        last_ack = time.monotonic()
        while not stop.is_set():
            cid = f"{self.name}-{i}"
            try:
                result = await client.call(
                    "send_message", room_id=ROOM, text=f"{self.name} {i}", client_msg_id=cid
                )
            except (ConnectionLost, OSError, TimeoutError, RpcError) as exc:
                # The node died (or could not reach its database): move on, retry the same id.
                if isinstance(exc, RpcError) and exc.code != -32603:
                    raise
                self.retries += 1
                with contextlib.suppress(Exception):
                    await client.ws.close()
                self.moves += 1
                client = await self.connect()
                last_ack = time.monotonic()
                continue
            now = time.monotonic()
            self.gaps.append(now - last_ack)
            last_ack = now
            self.acked[cid] = result["seq"]
            self.last_seq = max(self.last_seq, result["seq"])
            self.progress.set()
            i += 1
        with contextlib.suppress(Exception):
            await client.close()


async def test_sigkill_loop_across_three_nodes_loses_and_doubles_nothing(
    nodes: list[Any],
) -> None:
    kills = size("RELIABILITY_NODE_KILLS", 10)
    senders_count = size("RELIABILITY_NODE_SENDERS", 3)
    async with nodes[0].harness() as chat:
        users = [await chat.new_user("send") for _ in range(senders_count)]
        for user in users:
            joiner = await chat.connect(user)
            await joiner.call("join_room", room_name=ROOM)
            await joiner.close()
        watcher_user = await chat.new_user("watch")
        victim_user = await chat.new_user("victim")
        for user in (watcher_user, victim_user):
            joiner = await chat.connect(user)
            await joiner.call("join_room", room_name=ROOM)
            await joiner.close()

    progress = asyncio.Event()
    senders = [Sender(f"s{k}", user, nodes, k, progress) for k, user in enumerate(users)]

    async def acks(at_least: int) -> None:
        """Wait (30 s at most) until the senders have `at_least` acknowledgements."""
        async with asyncio.timeout(30):
            while sum(len(s.acked) for s in senders) < at_least:
                progress.clear()
                await progress.wait()

    stop = asyncio.Event()
    running = [asyncio.create_task(s.run(stop)) for s in senders]
    offline_within: list[float] = []
    try:
        for kill in range(kills):
            victim_node = nodes[kill % NODES]
            other = nodes[(kill + 1) % NODES]
            # On the first kills, a user only on the node about to die, watched from another.
            watched = kill < WATCHED_KILLS
            if watched:
                victim = await Client.open(victim_node.ws_url, victim_user.token)
                watcher = await Client.open(other.ws_url, watcher_user.token)
                await watcher.call("list_members", room_id=ROOM)  # the watcher is in
            await acks(sum(len(s.acked) for s in senders) + 10)
            victim_node.stop(signal.SIGKILL)
            killed_at = time.monotonic()
            restarted = asyncio.create_task(asyncio.to_thread(victim_node.start))
            if watched:
                await watcher.params_of(
                    "presence_changed", timeout=10, username=victim_user.username, online=False
                )
                offline_within.append(time.monotonic() - killed_at)
                with contextlib.suppress(Exception):
                    await victim.ws.close()
                await watcher.close()
            # The others keep acknowledging while the node is down.
            await acks(sum(len(s.acked) for s in senders) + 10)
            await restarted
    finally:
        stop.set()
        await asyncio.gather(*running)

    acked = {cid: seq for s in senders for cid, seq in s.acked.items()}
    async with nodes[1].harness() as chat:
        reader = await chat.connect(senders[0].user)
        texts: list[tuple[int, str]] = []
        before_seq: int | None = None
        while True:
            params: dict[str, Any] = {"room_id": ROOM, "limit": 200}
            if before_seq is not None:
                params["before_seq"] = before_seq
            page = await reader.call("get_history", **params)
            texts = [(m["seq"], m["text"]) for m in page["messages"]] + texts
            if not page["has_more"]:
                break
            before_seq = page["messages"][0]["seq"]
    seqs = [seq for seq, _ in texts]
    bodies = [text for _, text in texts]
    assert len(bodies) == len(set(bodies)), "a message is in the journal twice"
    by_seq = dict(texts)
    for cid, seq in acked.items():
        name, i = cid.rsplit("-", 1)
        assert by_seq.get(seq) == f"{name} {i}", f"acknowledged {cid} at seq {seq} is lost"
    assert seqs == sorted(seqs)
    assert len(offline_within) == WATCHED_KILLS and max(offline_within) < 10
    assert sum(s.moves for s in senders) >= kills  # each kill moved someone
    # Senders on nodes that lived: no pause over 2 s between acks (moves excluded).
    longest = max(max(s.gaps) for s in senders)
    assert longest < 2.0, f"a pause of {longest:.2f}s"
    print(  # the figures docs/reliability.md quotes (pytest -s shows them)
        f"failover: {len(acked)} acknowledged over {kills} kills, 0 lost, 0 doubled;"
        f" {sum(s.moves for s in senders)} moves, {sum(s.retries for s in senders)} retries;"
        f" offline after {min(offline_within):.1f}-{max(offline_within):.1f} s;"
        f" longest pause between acks {longest:.2f} s"
    )


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[str, list[Any]]]:
    """Two nodes on a database of their own, and that database's name."""
    from pg_kit import fresh_database

    for url in fresh_database():
        env = {**GENEROUS_LIMITS, "CHAT__DATABASE__URL": url}
        started = [ServerProcess(tmp_path / f"node{i}", env) for i in range(2)]
        try:
            for node in started:
                node.start()
            yield url.rsplit("/", 1)[1], started
        finally:
            stop_all(started, stop_and_check)


async def test_while_postgresql_is_unreachable_commands_fail_and_nothing_is_lost(
    pair: tuple[str, list[Any]],
) -> None:
    from pg_kit import admin_sql

    database, (a, b) = pair
    async with a.harness() as on_a, b.harness() as on_b:
        alice, bob = await on_a.new_user("alice"), await on_b.new_user("bob")
        ca, cb = await on_a.connect(alice), await on_b.connect(bob)
        for client in (ca, cb):
            await client.call("join_room", room_name=ROOM)
        before = await ca.call("send_message", room_id=ROOM, text="before", client_msg_id="b")
        await cb.params_of("message_received", room_id=ROOM, seq=before["seq"])

        # The database goes away: no connection to it is kept or accepted.
        await admin_sql(
            f"ALTER DATABASE {database} ALLOW_CONNECTIONS false;"
            " SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = '{database}'"
        )
        try:
            failed = await ca.error_of(
                "send_message", room_id=ROOM, text="during", client_msg_id="d"
            )
            assert failed.code == -32603, failed
            # A read cannot vouch for the other node's commands: it fails too, and so does a
            # new session's handshake (503, `unavailable`), while the open sockets stay open.
            assert (await cb.error_of("get_history", room_id=ROOM, limit=5)).code == -32603
            with pytest.raises(HandshakeRefused) as refused:
                await Client.open(b.ws_url, bob.token)
            assert refused.value.status == 503
        finally:
            await admin_sql(f"ALTER DATABASE {database} ALLOW_CONNECTIONS true")

        # Back: the retry with the same id is recorded once, and both nodes deliver it.
        async with asyncio.timeout(30):
            while True:
                try:
                    during = await ca.call(
                        "send_message", room_id=ROOM, text="during", client_msg_id="d"
                    )
                    break
                except RpcError as exc:
                    assert exc.code == -32603, exc
        await cb.params_of("message_received", timeout=10, room_id=ROOM, seq=during["seq"])
        pages = [await c.call("get_history", room_id=ROOM, limit=10) for c in (ca, cb)]
        assert pages[0] == pages[1]
        assert [m["text"] for m in pages[0]["messages"]] == ["before", "during"]
        assert not ca.is_closed and not cb.is_closed
