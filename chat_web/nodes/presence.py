"""Who is online on the other nodes, as they said, and which nodes are alive.

Plain bookkeeping with the clock passed in: every method returns the users whose
"online somewhere else" changed, and the caller (the hub) decides what its own connections
are told. A node not heard from for `timeout` seconds is dead: its users are dropped.
"""

from __future__ import annotations


class _Node:
    __slots__ = ("heard", "incoming", "users")

    def __init__(self, heard: float) -> None:
        self.heard = heard
        self.users: dict[str, str] = {}  # key -> name
        self.incoming: dict[str, str] | None = None  # a Sync being received


Change = tuple[str, str, bool]  # (key, name, online elsewhere now)


class RemotePresence:
    """Users online on other nodes: key -> how many other nodes hold a connection of theirs."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._nodes: dict[str, _Node] = {}
        self._holders: dict[str, int] = {}

    def online(self, key: str) -> bool:
        return key in self._holders

    @property
    def nodes(self) -> int:
        return len(self._nodes)

    def heard(self, node: str, now: float) -> bool:
        """`node` spoke; True if it was unknown (ask it for its users)."""
        known = self._nodes.get(node)
        if known is None:
            self._nodes[node] = _Node(now)
            return True
        known.heard = now
        return False

    def add(self, node: str, key: str, name: str, now: float) -> list[Change]:
        self.heard(node, now)
        users = self._nodes[node].users
        if key in users:
            return []
        users[key] = name
        return self._gained(key, name)

    def remove(self, node: str, key: str) -> list[Change]:
        known = self._nodes.get(node)
        if known is None:
            return []
        name = known.users.pop(key, None)
        return [] if name is None else self._lost(key, name)

    def sync(self, node: str, users: list[tuple[str, str]], last: bool, now: float) -> list[Change]:
        """A part of `node`'s full list; the last part replaces what was known of it."""
        self.heard(node, now)
        known = self._nodes[node]
        if known.incoming is None:
            known.incoming = {}
        known.incoming.update(users)
        if not last:
            return []
        fresh, known.incoming = known.incoming, None
        changes: list[Change] = []
        for key in [key for key in known.users if key not in fresh]:
            changes += self._lost(key, known.users.pop(key))
        for key, name in fresh.items():
            if key not in known.users:
                known.users[key] = name
                changes += self._gained(key, name)
        return changes

    def drop(self, node: str) -> list[Change]:
        """`node` left or died: every user it held."""
        known = self._nodes.pop(node, None)
        if known is None:
            return []
        changes: list[Change] = []
        for key, name in known.users.items():
            changes += self._lost(key, name)
        return changes

    def expire(self, now: float) -> list[Change]:
        """Drop the nodes silent for longer than `timeout`."""
        dead = [node for node, known in self._nodes.items() if now - known.heard > self.timeout]
        changes: list[Change] = []
        for node in dead:
            changes += self.drop(node)
        return changes

    def _gained(self, key: str, name: str) -> list[Change]:
        count = self._holders.get(key, 0)
        self._holders[key] = count + 1
        return [(key, name, True)] if count == 0 else []

    def _lost(self, key: str, name: str) -> list[Change]:
        count = self._holders.get(key, 0) - 1
        if count > 0:
            self._holders[key] = count
            return []
        self._holders.pop(key, None)
        return [(key, name, False)]
