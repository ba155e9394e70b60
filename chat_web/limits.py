"""Rate limiters of the server, all in memory, all bounded, all on the monotonic clock.

- `TokenBucket`: requests or messages per minute per user (a burst of the full minute, then a
  steady rate).
- `WindowCounter`: events per key in a sliding window (failed logins, registrations, rooms).
- `ConnectionCounter`: concurrent sockets per client address.

Nodes on one journal share the per-user limiters: with `spent` set (a dict), a limiter counts
what it grants per key, the node tells the others (`drain_spent`), and they `charge` it to
the same key, so a user spreading over nodes gets about one budget, not one a node.

The keyed limiters hold at most `max_keys` keys, least recently used first out, and every
call is O(1) (amortised over a key's own hits): a flood of distinct keys (logins with made-up
names, from many addresses) can neither grow their memory nor slow the calls of real users.
Forgetting a key forgives it; the keys an attacker can mint are each bought with a request
that the other limits and bcrypt's cost already slow down.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Final

# Keys a limiter remembers at most (tens of bytes to a few hundred each).
MAX_KEYS: Final = 10_000


class TokenBucket:
    """Per-key buckets of `capacity` tokens refilled at `capacity / period` tokens a second."""

    def __init__(
        self,
        capacity: int,
        period: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.capacity = float(capacity)
        self.rate = capacity / period
        self.max_keys = max_keys
        self._clock = clock
        # key -> (tokens, last refill), least recently used first.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self.refused = 0  # takes refused so far (/metrics)
        self.spent: dict[str, int] | None = None  # granted since the last drain (nodes)

    def take(self, key: str) -> float:
        """Take one token; 0.0 when allowed, else the seconds until a token is available."""
        now = self._clock()
        tokens = self._refilled(key, now)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            self.refused += 1
            return (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens - 1.0, now)
        if self.spent is not None:
            _count(self.spent, key, self.max_keys)
        return 0.0

    def charge(self, key: str, count: int) -> None:
        """Take `count` tokens another node granted `key` (down to an empty bucket)."""
        now = self._clock()
        self._buckets[key] = (max(0.0, self._refilled(key, now) - count), now)

    def _refilled(self, key: str, now: float) -> float:
        """The tokens `key` has at `now`; the key becomes the most recently used (a new key
        first makes room: the least recently used goes)."""
        buckets = self._buckets
        entry = buckets.get(key)
        if entry is None:
            if len(buckets) >= self.max_keys:
                buckets.popitem(last=False)
            return self.capacity
        buckets.move_to_end(key)
        return min(self.capacity, entry[0] + (now - entry[1]) * self.rate)

    def __len__(self) -> int:
        return len(self._buckets)


class WindowCounter:
    """At most `limit` hits per key in any `window` seconds (a sliding log of hit times)."""

    def __init__(
        self,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        # key -> its hit times (at most `limit`), least recently hit first.
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self.refused = 0  # checks answered with a wait so far (/metrics)
        self.spent: dict[str, int] | None = None  # hits since the last drain (nodes)

    def retry_after(self, key: str) -> int:
        """0 if `key` may act now, else whole seconds until its oldest hit leaves the window."""
        hits = self._hits.get(key)
        if hits is None:
            return 0
        now = self._clock()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return 0
        if len(hits) < self.limit:
            return 0
        # A key that is refused is in use: the last to be forgotten.
        self._hits.move_to_end(key)
        self.refused += 1
        return max(1, math.ceil(hits[0] + self.window - now))

    def hit(self, key: str) -> None:
        self._record(key, 1)
        if self.spent is not None:
            _count(self.spent, key, self.max_keys)

    def charge(self, key: str, count: int) -> None:
        """Count `count` hits another node made for `key`."""
        self._record(key, min(count, self.limit))

    def _record(self, key: str, count: int) -> None:
        now = self._clock()
        all_hits = self._hits
        hits = all_hits.get(key)
        if hits is None:
            if len(all_hits) >= self.max_keys:
                all_hits.popitem(last=False)
            hits = all_hits[key] = deque(maxlen=self.limit)
        else:
            all_hits.move_to_end(key)
        hits.extend([now] * count)

    def undo(self, key: str) -> None:
        """Take back one hit of `key`: a hit made in advance (before a slow check, so that
        concurrent attempts count against the limit) for an attempt that did not count."""
        hits = self._hits.get(key)
        if hits:
            hits.pop()
            if not hits:
                del self._hits[key]

    def reset(self, key: str) -> None:
        self._hits.pop(key, None)

    def __len__(self) -> int:
        return len(self._hits)


class ConnectionCounter:
    """Concurrent connections per client address."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}
        self.refused = 0  # connections refused so far (/metrics)

    def try_acquire(self, address: str) -> bool:
        count = self._open.get(address, 0)
        if count >= self.limit:
            self.refused += 1
            return False
        self._open[address] = count + 1
        return True

    def release(self, address: str) -> None:
        count = self._open.get(address, 0) - 1
        if count > 0:
            self._open[address] = count
        else:
            self._open.pop(address, None)


def _count(spent: dict[str, int], key: str, max_keys: int) -> None:
    # Bounded as the limiter is: past max_keys keys in one drain, new ones go untold.
    if key in spent:
        spent[key] += 1
    elif len(spent) < max_keys:
        spent[key] = 1


def drain_spent(limiter: TokenBucket | WindowCounter) -> dict[str, int]:
    """What `limiter` granted since the last drain (for the other nodes); starts counting."""
    spent, limiter.spent = limiter.spent or {}, {}
    return spent
