"""Rate limiters of the server, all in memory, all bounded, all on the monotonic clock.

- `TokenBucket`: messages per minute per user (a burst of the full minute, then a steady rate).
- `WindowCounter`: events per key in a sliding window (failed logins, registrations).
- `ConnectionCounter`: concurrent sockets per client address.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

# Past this many keys a limiter sweeps out the keys that no longer limit anything, so memory
# stays proportional to the clients active within one window.
_SWEEP_AT = 10_000


class TokenBucket:
    """Per-key buckets of `capacity` tokens refilled at `capacity / period` tokens a second."""

    def __init__(
        self, capacity: int, period: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = float(capacity)
        self.rate = capacity / period
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)

    def take(self, key: str) -> float:
        """Take one token; 0.0 when allowed, else the seconds until a token is available."""
        now = self._clock()
        tokens, last = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate
        if len(self._buckets) > _SWEEP_AT:
            self._sweep(now)
        self._buckets[key] = (tokens - 1.0, now)
        return 0.0

    def _sweep(self, now: float) -> None:
        # A bucket that has refilled completely is the same as no bucket.
        full = [
            key
            for key, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * self.rate >= self.capacity
        ]
        for key in full:
            del self._buckets[key]


class WindowCounter:
    """At most `limit` hits per key in any `window` seconds (a sliding log of hit times)."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

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
        return max(1, math.ceil(hits[0] + self.window - now))

    def hit(self, key: str) -> None:
        now = self._clock()
        if len(self._hits) > _SWEEP_AT:
            stale = [k for k, hits in self._hits.items() if hits[-1] <= now - self.window]
            for k in stale:
                del self._hits[k]
        hits = self._hits.setdefault(key, deque(maxlen=self.limit))
        hits.append(now)

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


class ConnectionCounter:
    """Concurrent connections per client address."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def try_acquire(self, address: str) -> bool:
        count = self._open.get(address, 0)
        if count >= self.limit:
            return False
        self._open[address] = count + 1
        return True

    def release(self, address: str) -> None:
        count = self._open.get(address, 0) - 1
        if count > 0:
            self._open[address] = count
        else:
            self._open.pop(address, None)
