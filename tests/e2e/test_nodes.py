"""Three `chat-web serve` nodes on one PostgreSQL database behave as one server.

The nodes start at once on an empty database (migrations under a lock, one generated token
secret); then clients on different nodes see each other's messages in one seq order, a twin
connection per node sees the same stream, a read on any node reflects what was acknowledged
on another, presence and typing cross nodes, and resume and idempotent retries work on any
node. One set of nodes serves the module; tests keep apart with fresh users and rooms.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import GENEROUS_LIMITS, Client, Harness, User, unique
from server_kit import ServerProcess

from pg_kit import stop_all

NODES = 3


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    from pg_kit import fresh_database

    for url in fresh_database():
        env = {**GENEROUS_LIMITS, "CHAT__DATABASE__URL": url}
        started = [ServerProcess(tmp_path_factory.mktemp(f"node{i}"), env) for i in range(NODES)]
        try:
            # At once, on an empty database: one migrates, the others wait for its lock.
            start_at_once(started)
            yield started
        finally:
            stop_all(started, _stop_and_check_node)


def _stop_and_check_node(node: ServerProcess) -> None:
    """As `server_kit.stop_and_check`, and a node that already stopped is checked too."""
    if node.running:
        code = node.stop()
        assert code == 0, f"exit code {code} after SIGTERM; output:\n{node.log_text()}"
    assert not node.tracebacks(), "a node logged a traceback:\n" + node.log_text()


def start_at_once(servers: list[ServerProcess]) -> None:
    with ThreadPoolExecutor(len(servers)) as pool:
        for started in [pool.submit(server.start) for server in servers]:
            started.result()


@contextlib.asynccontextmanager
async def harnesses(nodes: list[ServerProcess]) -> AsyncIterator[list[Harness]]:
    opened = [node.harness() for node in nodes]
    try:
        yield opened
    finally:
        for harness in opened:
            await harness.aclose()


async def test_nodes_started_at_once_share_one_journal_and_one_token_secret(
    nodes: list[ServerProcess],
) -> None:
    async with harnesses(nodes) as (a, b, c):
        heads = {await h.journal_seq() for h in (a, b, c)}
        assert len(heads) == 1, heads
        # The default rooms exist once, whichever node created them.
        rooms = [await (await h.admin_client()).call("list_rooms") for h in (a, b, c)]
        assert rooms[0] == rooms[1] == rooms[2]
        names = [room["room_id"] for room in rooms[0]["rooms"]]
        assert len(names) == len(set(names))
        # A token from one node opens a session on every node.
        user = await a.new_user("tok")
        for h in (b, c):
            who = await (await h.connect(user)).call("whoami")
            assert who["username"] == user.username


async def test_a_read_on_any_node_reflects_what_another_acknowledged(
    nodes: list[ServerProcess],
) -> None:
    async with harnesses(nodes) as (a, b, c):
        # Registered on a, logged in on b at once.
        name = unique("rr")
        assert (await a.register(name)).status_code == 201
        user = User(name, "correct-horse-1", await b.login(name, "correct-horse-1"))
        room = unique("Rr")
        ca = await a.connect(user)
        await ca.call("join_room", room_name=room)
        sent = await ca.call("send_message", room_id=room.lower(), text="acked on a")
        cb, cc = await b.connect(user), await c.connect(user)
        history = await cb.call("get_history", room_id=room.lower(), limit=10)
        assert [m["seq"] for m in history["messages"]] == [sent["seq"]]
        members = await cc.call("list_members", room_id=room.lower())
        assert [m["username"] for m in members["members"]] == [user.username]
        # And a command on c is decided against it: the user is a member there too.
        again = await cc.call("send_message", room_id=room.lower(), text="acked on c")
        assert again["seq"] > sent["seq"]


async def test_clients_on_different_nodes_see_one_order(nodes: list[ServerProcess]) -> None:
    async with harnesses(nodes) as hs:
        room = unique("Order")
        users = [await h.new_user("ord") for h in hs]
        senders = [await h.connect(u) for h, u in zip(hs, users, strict=True)]
        for client in senders:
            await client.call("join_room", room_name=room)
        # A twin of one watcher on every node: the streams must be identical.
        watcher = await hs[0].new_user("watch")
        twins = [await h.connect(watcher) for h in hs]
        await twins[0].call("join_room", room_name=room)
        rid = room.lower()

        async def burst(client: Client, tag: str) -> list[int]:
            return [
                (await client.call("send_message", room_id=rid, text=f"{tag}{i}"))["seq"]
                for i in range(20)
            ]

        acked = await asyncio.gather(*(burst(s, f"n{i}-") for i, s in enumerate(senders)))
        every = sorted(seq for seqs in acked for seq in seqs)
        assert len(every) == len(set(every)) == 60
        streams = []
        for twin in twins:
            got: list[tuple[int, str]] = []
            while len(got) < 60:
                params = await twin.params_of("message_received", room_id=rid)
                got.append((params["seq"], params["text"]))
            streams.append(got)
        assert streams[0] == streams[1] == streams[2]
        assert [seq for seq, _ in streams[0]] == every


async def test_presence_and_typing_cross_nodes(nodes: list[ServerProcess]) -> None:
    async with harnesses(nodes) as (a, b, _):
        room = unique("Pres")
        alice, bob = await a.new_user("alice"), await b.new_user("bob")
        ca = await a.connect(alice)
        await ca.call("join_room", room_name=room)
        cb = await b.connect(bob)
        await cb.call("join_room", room_name=room)
        rid = room.lower()
        members = await cb.call("list_members", room_id=rid)
        online = {m["username"]: m["online"] for m in members["members"]}
        assert online == {alice.username: True, bob.username: True}
        await ca.call("start_typing", room_id=rid)
        typing = await cb.params_of("user_started_typing", room_id=rid)
        assert typing["username"] == alice.username
        await ca.call("stop_typing", room_id=rid)
        await cb.params_of("user_stopped_typing", room_id=rid, username=alice.username)
        # alice leaves a (her only node): bob on b sees her go offline, then online again
        # when she comes back on the third node.
        await ca.close()
        await cb.params_of("presence_changed", timeout=10, username=alice.username, online=False)
        async with nodes[2].harness() as c:
            await c.connect(alice)
            await cb.params_of("presence_changed", timeout=10, username=alice.username, online=True)
            members = await cb.call("list_members", room_id=rid)
            assert {m["username"]: m["online"] for m in members["members"]}[alice.username]


async def test_resume_and_retries_work_on_any_node(nodes: list[ServerProcess]) -> None:
    async with harnesses(nodes) as (a, b, c):
        room = unique("Resume")
        user = await a.new_user("res")
        ca = await a.connect(user)
        joined = await ca.call("join_room", room_name=room)
        rid = room.lower()
        first = await ca.call("send_message", room_id=rid, text="one", client_msg_id="r-1")
        seen = first["seq"]
        other = await b.new_user("other")
        cb = await b.connect(other)
        await cb.call("join_room", room_name=room)
        missed = [
            (await cb.call("send_message", room_id=rid, text=f"m{i}"))["seq"] for i in range(3)
        ]
        await ca.close()
        # The same user resumes on c from the last seq it saw, and retries on c: a duplicate.
        cc = await c.connect(user, since=seen)
        got = []
        while len(got) < 3:
            got.append((await cc.params_of("message_received", room_id=rid))["seq"])
        assert got == missed
        retry = await cc.call("send_message", room_id=rid, text="one", client_msg_id="r-1")
        assert retry == {**first, "duplicate": True}
        assert joined["room_id"] == rid


async def test_unjournaled_messages_are_refused_on_a_shared_journal(tmp_path: Path) -> None:
    from pg_kit import fresh_database

    for url in fresh_database():
        env = {"CHAT__DATABASE__URL": url, "CHAT__CHAT__PERSIST_MESSAGES": "false"}
        server = ServerProcess(tmp_path / "live", env)
        with pytest.raises(RuntimeError):
            server.start()
        assert server.proc is not None and server.proc.returncode == 2, server.log_text()
        assert "chat.persist_messages = false needs a SQLite journal" in server.log_text()


async def test_a_users_message_budget_holds_across_nodes(tmp_path: Path) -> None:
    from pg_kit import fresh_database

    for url in fresh_database():
        env = {**GENEROUS_LIMITS, "CHAT__DATABASE__URL": url}
        env["CHAT__RATE_LIMIT__MESSAGES_PER_MINUTE"] = "10"
        pair = [ServerProcess(tmp_path / f"limit{i}", env) for i in range(2)]
        start_at_once(pair)
        try:
            async with harnesses(pair) as (a, b):
                room = unique("Budget")
                user, watcher = await a.new_user("spender"), await b.new_user("watch")
                on_a, on_b, watching = (
                    await a.connect(user),
                    await b.connect(user),
                    await b.connect(watcher),
                )
                for client in (on_a, watching):
                    await client.call("join_room", room_name=room)
                rid = room.lower()
                for i in range(10):
                    await on_a.call("send_message", room_id=rid, text=f"a{i}")
                # Node a tells its grants before anything it relays later: once b's watcher
                # sees the typing that followed the sends, b knows the budget is spent.
                await on_a.call("start_typing", room_id=rid)
                await watching.params_of("user_started_typing", username=user.username)
                refused = await on_b.error_of("send_message", room_id=rid, text="b0")
                assert refused.code == -32029, refused
        finally:
            stop_all(pair, _stop_and_check_node)
