"""No username enumeration by timing, whatever cost the stored hashes were made with.

A journal is made at one bcrypt cost and served at another. A failed login of a known user and
a login of an unknown name must take about as long; a successful login stores the password
rehashed at the configured cost (one `password_changed` event, once).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from helpers import unique

ROUNDS = 9  # logins timed per kind, alternating (the medians are compared)


async def _login_seconds(chat: Any, username: str) -> float:
    started = time.perf_counter()
    response = await chat.login_response(username, "not-the-password")
    elapsed = time.perf_counter() - started
    assert response.status_code == 401, response.text
    return elapsed


async def _known_and_unknown(chat: Any, known: str) -> tuple[float, float]:
    """Median seconds of a failed login of `known` and of unknown names. Alternated, so that
    the load of a shared machine weighs on both alike."""
    # One of each first: the first check at a cost pays for making its stand-in hash.
    await chat.login_response(known, "warm-up-password")
    await chat.login_response(unique("nobody"), "warm-up-password")
    known_times, unknown_times = [], []
    for _ in range(ROUNDS):
        known_times.append(await _login_seconds(chat, known))
        unknown_times.append(await _login_seconds(chat, unique("nobody")))
    return statistics.median(known_times), statistics.median(unknown_times)


async def test_failed_logins_take_as_long_for_known_and_unknown_names(
    launch: Any, tmp_path: Any
) -> None:
    data = tmp_path / "timing"
    unlimited = {"CHAT__RATE_LIMIT__ENABLED": "false"}
    for made_at, served_at in (("4", "10"), ("10", "4")):
        directory = data / made_at
        first = launch({**unlimited, "CHAT__AUTH__BCRYPT_ROUNDS": made_at}, data_dir=directory)
        async with first.harness() as chat:
            user = await chat.new_user("timed")
        first.stop()
        server = launch({**unlimited, "CHAT__AUTH__BCRYPT_ROUNDS": served_at}, data_dir=directory)
        async with server.harness() as chat:
            known, unknown = await _known_and_unknown(chat, user.username)
            ratio = known / unknown
            print(
                f"\nmade at {made_at}, served at {served_at}: known {known * 1e3:.1f} ms,"
                f" unknown {unknown * 1e3:.1f} ms, ratio {ratio:.2f}"
            )
            assert 0.67 < ratio < 1.5, (known, unknown)
            # A successful login stores the hash at the served cost, once.
            before = await chat.journal_seq()
            await chat.login(user.username, user.password)
            assert await chat.journal_seq() == before + 1
            await chat.login(user.username, user.password)
            assert await chat.journal_seq() == before + 1
            known, unknown = await _known_and_unknown(chat, user.username)
            assert 0.67 < known / unknown < 1.5, (known, unknown)
        server.stop()
