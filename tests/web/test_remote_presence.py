"""Who is online on the other nodes (chat_web.nodes.presence), on a clock passed in, and the
live channel's messages (chat_web.nodes.wire): no database, no socket."""

from __future__ import annotations

from chat_web.nodes import wire
from chat_web.nodes.presence import RemotePresence


def test_a_user_is_online_elsewhere_while_any_other_node_holds_them() -> None:
    remote = RemotePresence(timeout=5.0)
    assert remote.add("n1", "alice", "Alice", now=0.0) == [("alice", "Alice", True)]
    assert remote.add("n2", "alice", "Alice", now=0.0) == []  # already online elsewhere
    assert remote.online("alice")
    assert remote.remove("n1", "alice") == []
    assert remote.remove("n2", "alice") == [("alice", "Alice", False)]
    assert not remote.online("alice")
    assert remote.remove("n2", "alice") == []  # told twice: no change


def test_a_silent_node_expires_with_its_users_and_a_bye_drops_it_at_once() -> None:
    remote = RemotePresence(timeout=5.0)
    remote.add("n1", "alice", "Alice", now=0.0)
    remote.add("n2", "bob", "Bob", now=0.0)
    remote.heard("n2", now=4.0)
    assert remote.expire(now=5.5) == [("alice", "Alice", False)]
    assert remote.online("bob") and remote.nodes == 1
    assert remote.drop("n2") == [("bob", "Bob", False)]
    assert remote.nodes == 0


def test_a_sync_in_parts_replaces_what_was_known_of_a_node() -> None:
    remote = RemotePresence(timeout=5.0)
    remote.add("n1", "alice", "Alice", now=0.0)
    remote.add("n1", "carol", "Carol", now=0.0)
    assert remote.sync("n1", [("bob", "Bob")], last=False, now=1.0) == []
    changes = remote.sync("n1", [("carol", "Carol")], last=True, now=1.0)
    assert sorted(changes) == [("alice", "Alice", False), ("bob", "Bob", True)]
    assert remote.online("carol") and remote.online("bob") and not remote.online("alice")


def test_an_unknown_node_is_reported_so_that_its_list_is_asked_for() -> None:
    remote = RemotePresence(timeout=5.0)
    assert remote.heard("n9", now=0.0) is True
    assert remote.heard("n9", now=1.0) is False


def test_long_lists_are_cut_into_parts_under_postgresqls_payload_limit() -> None:
    users = [(f"user{i:05d}", f"User {i:05d}") for i in range(2_000)]
    parts = wire.sync_parts("n1", users)
    assert len(parts) > 1
    assert all(len(part) < 8_000 for part in parts)
    decoded = [wire.decode(part) for part in parts]
    assert all(isinstance(m, wire.Sync) for m in decoded)
    assert [m.last for m in decoded if isinstance(m, wire.Sync)] == [False] * (len(parts) - 1) + [
        True
    ]
    back = [tuple(pair) for m in decoded if isinstance(m, wire.Sync) for pair in m.users]
    assert back == users
    spent = wire.spent_parts("n1", "messages", {f"user{i}": i for i in range(3_000)})
    assert all(len(part) < 8_000 for part in spent)
    total = {k: n for m in map(wire.decode, spent) if isinstance(m, wire.Spent) for k, n in m.keys}
    assert total == {f"user{i}": i for i in range(3_000)}
