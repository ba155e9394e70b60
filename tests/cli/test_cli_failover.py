"""`chat-cli` given several server URLs (`--server A,B` or CHAT_SERVER_URL): the nodes of one
chat, tried in turn. A URL that is down is passed over by login, send and chat; a chat whose
server goes away resumes on the next URL with its last seq, and sends what was typed meanwhile
once; a token saved for one URL of the set serves the others (the nodes share one secret).

In the first tests the second "node" is the same journal served on another port after the
first stops; the last runs two real nodes on one PostgreSQL journal and SIGKILLs the chat's.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

from pty_kit import Server, chat_in_room, cli, client_env, login, server, spawn_chat, wait_exit

__all__ = ["server"]  # a fixture: imported to be found, not called


def closed_port() -> int:
    """An ephemeral port with nothing listening on it (a node that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def saved_servers(home: Path) -> set[tuple[str, str]]:
    """(server, username) of every token saved in a user's config directory."""
    content = json.loads((home / "chat-cli" / "credentials.json").read_text())
    return {(c["server"], c["username"]) for c in content["credentials"].values()}


def test_login_send_and_chat_pass_over_a_server_that_is_down(
    server: Server, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    both = f"{dead},{server.url}"
    env = dict(client_env(server, tmp_path / "alice"), CHAT_SERVER_URL=both)
    done = cli(env, "login", "--username", "alice", "--password-stdin", stdin="alice123\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"logged in to {both} as alice")
    # Saved under each URL of the set: either alone finds it.
    assert saved_servers(tmp_path / "alice") == {(dead, "alice"), (server.url, "alice")}
    done = cli(env, "send", "--room", "relay", "via the second url")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("sent to relay (seq ")
    alone = dict(env, CHAT_SERVER_URL=server.url)
    assert cli(alone, "send", "--room", "relay", "the live url alone").returncode == 0

    # Bob logs in to the live URL only; the set (in --server) uses that token on every URL.
    bob_env = client_env(server, tmp_path / "bob")
    login(bob_env, "bob", "bob123")
    done = cli(bob_env, "send", "--server", both, "--room", "relay", "bob through the set")
    assert done.returncode == 0, done.stderr

    alice = spawn_chat(env)
    alice.expect(f"connected to {re.escape(server.url)} as alice")
    alice.sendline("/join relay")
    alice.expect("<bob> bob through the set")
    alice.sendline("/quit")
    assert wait_exit(alice) == 0

    # Every URL down: one line naming each.
    nowhere = dict(env, CHAT_SERVER_URL=f"{dead},http://127.0.0.1:{closed_port()}")
    done = cli(nowhere, "send", "--room", "relay", "lost")
    assert done.returncode == 1
    assert done.stderr.count("cannot reach") == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_chat_that_loses_its_server_goes_on_at_the_next_url(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    first = Server(data)
    spare = f"http://127.0.0.1:{closed_port()}"  # where the next node will serve
    both = f"{first.url},{spare}"
    # Both logged in to the first URL alone: their tokens serve the set's other URL too.
    alice_env = client_env(first, tmp_path / "alice")
    bob_env = client_env(first, tmp_path / "bob")
    login(alice_env, "alice", "alice123")
    login(bob_env, "bob", "bob123")
    alice, transcript = chat_in_room(dict(alice_env, CHAT_SERVER_URL=both), "lobby")
    assert cli(bob_env, "send", "--room", "lobby", "before the move").returncode == 0
    alice.expect("<bob> before the move")

    first.stop()
    alice.expect("connection lost; reconnecting")
    alice.sendline("typed between nodes")
    alice.expect(re.escape("queued until reconnected (1 message waiting)"))
    second = Server(data, port=int(spare.rsplit(":", 1)[1]))
    try:
        alice.expect(f"reconnected to {re.escape(spare)}; sending 1 queued message", timeout=60)
        alice.expect("<alice> typed between nodes")
        bob_moved = dict(bob_env, CHAT_SERVER_URL=both)  # the first URL is down now
        assert cli(bob_moved, "send", "--room", "lobby", "after the move").returncode == 0
        alice.expect("<bob> after the move")
        # Another client on the new node: each message once, in order.
        bob, bob_screen = chat_in_room(bob_moved, "lobby")
        bob.expect("<bob> after the move")
        bob.sendline("/quit")
        assert wait_exit(bob) == 0
        alice.sendline("/quit")
        assert wait_exit(alice) == 0
        texts = ("<bob> before the move", "<alice> typed between nodes", "<bob> after the move")
        for screen in (transcript.getvalue(), bob_screen.getvalue()):
            assert [screen.count(text) for text in texts] == [1, 1, 1], screen
            assert [screen.index(text) for text in texts] == sorted(
                screen.index(text) for text in texts
            )
    finally:
        second.stop()


def test_a_chat_goes_on_at_another_node_when_its_node_is_killed(tmp_path: Path) -> None:
    """Two real nodes on one PostgreSQL journal, both serving; the chat's node is SIGKILLed."""
    from pg_kit import fresh_database

    for url in fresh_database():
        settings = {"CHAT__DATABASE__URL": url}
        for i in range(2):
            (tmp_path / f"node{i}").mkdir()
        nodes = [Server(tmp_path / f"node{i}", settings=settings) for i in range(2)]
        try:
            both = ",".join(node.url for node in nodes)
            alice_env = dict(client_env(nodes[0], tmp_path / "alice"), CHAT_SERVER_URL=both)
            bob_env = client_env(nodes[1], tmp_path / "bob")
            login(alice_env, "alice", "alice123")
            login(bob_env, "bob", "bob123")
            alice, transcript = chat_in_room(alice_env, "nodes")
            assert f"connected to {nodes[0].url} as alice" in transcript.getvalue()
            assert cli(bob_env, "send", "--room", "nodes", "from the other node").returncode == 0
            alice.expect("<bob> from the other node")

            nodes[0].process.kill()  # SIGKILL: no goodbye to anyone
            alice.expect("connection lost; reconnecting")
            alice.expect(f"reconnected to {re.escape(nodes[1].url)}", timeout=30)
            alice.sendline("after the kill")
            alice.expect("<alice> after the kill")
            bob, bob_screen = chat_in_room(bob_env, "nodes")
            bob.expect("<alice> after the kill")
            for client in (bob, alice):
                client.sendline("/quit")
                assert wait_exit(client) == 0
            for screen in (transcript.getvalue(), bob_screen.getvalue()):
                texts = ("<bob> from the other node", "<alice> after the kill")
                assert [screen.count(text) for text in texts] == [1, 1], screen
        finally:
            for node in nodes:
                node.stop()
