"""The rate limiters on a fake clock: their arithmetic, and their bound under distinct keys."""

from __future__ import annotations

import time

from chat_web.limits import ConnectionCounter, TokenBucket, WindowCounter, drain_spent


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_a_burst_then_a_steady_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(60, 60.0, clock)
    assert all(bucket.take("alice") == 0.0 for _ in range(60))
    assert bucket.take("alice") == 1.0  # one token a second
    clock.now += 0.5
    assert bucket.take("alice") == 0.5
    clock.now += 0.5
    assert bucket.take("alice") == 0.0
    assert bucket.take("bob") == 0.0  # keys are independent


def test_window_counter_counts_hits_within_the_window() -> None:
    clock = FakeClock()
    counter = WindowCounter(3, 3600.0, clock)
    for _ in range(3):
        assert counter.retry_after("k") == 0
        counter.hit("k")
        clock.now += 10
    assert counter.retry_after("k") == 3600 - 30
    counter.undo("k")
    assert counter.retry_after("k") == 0
    counter.hit("k")
    clock.now += 3600 - 20 + 1  # the first hit leaves the window
    assert counter.retry_after("k") == 0
    counter.reset("k")
    assert len(counter) == 0


def test_a_flood_of_distinct_keys_is_bounded_and_keeps_an_active_key() -> None:
    clock = FakeClock()
    counter = WindowCounter(5, 3600.0, clock, max_keys=1000)
    bucket = TokenBucket(5, 60.0, clock, max_keys=1000)
    for _ in range(5):
        counter.hit("real")
        bucket.take("real")
    started = time.perf_counter()
    for i in range(200_000):
        counter.hit(f"flood-{i}")
        bucket.take(f"flood-{i}")
        if i % 100 == 0:
            # The real user keeps trying among the flood: it is never the one forgotten.
            assert counter.retry_after("real") > 0
            assert bucket.take("real") > 0
        clock.now += 0.000_001
    elapsed = time.perf_counter() - started
    assert len(counter) <= 1000 and len(bucket) <= 1000
    # O(1) per call: 400k calls take well under a second here; the old sweep (O(keys) per
    # call past 10,000 keys) took minutes.
    assert elapsed < 10.0, elapsed
    assert counter.retry_after("real") > 0 and bucket.take("real") > 0


def test_connection_counter_frees_a_slot_on_release() -> None:
    counter = ConnectionCounter(2)
    assert counter.try_acquire("a") and counter.try_acquire("a")
    assert not counter.try_acquire("a")
    assert counter.try_acquire("b")
    counter.release("a")
    assert counter.try_acquire("a")


def test_nodes_share_a_users_budget_through_spent_and_charge() -> None:
    clock = FakeClock()
    here, there = TokenBucket(10, 60.0, clock), TokenBucket(10, 60.0, clock)
    here.spent = there.spent = {}
    assert all(here.take("alice") == 0.0 for _ in range(7))
    assert here.take("bob") == 0.0
    told = drain_spent(here)
    assert told == {"alice": 7, "bob": 1}
    assert drain_spent(here) == {}  # counted once
    for key, count in told.items():
        there.charge(key, count)
    # alice has 3 tokens left on the other node, and none once those are taken.
    assert all(there.take("alice") == 0.0 for _ in range(3))
    assert there.take("alice") > 0
    # A charge never leaves a bucket below empty: the refill comes back as usual.
    there.charge("alice", 50)
    clock.now += 6.0
    assert there.take("alice") == 0.0
    # Window counters too (rooms per hour, registrations).
    rooms_here, rooms_there = WindowCounter(3, 3600.0, clock), WindowCounter(3, 3600.0, clock)
    rooms_here.spent = {}
    for _ in range(3):
        rooms_here.hit("carol")
    for key, count in drain_spent(rooms_here).items():
        rooms_there.charge(key, count)
    assert rooms_there.retry_after("carol") > 0


def test_a_limiter_without_nodes_counts_no_spending() -> None:
    bucket = TokenBucket(10, 60.0, FakeClock())
    bucket.take("alice")
    assert bucket.spent is None
