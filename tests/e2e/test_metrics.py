"""`GET /metrics`: scraped during a run of known traffic, its counters checked against it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from helpers import PASSWORD, durable, unique
from prometheus_client.parser import text_string_to_metric_families
from server_kit import ServerProcess

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(server: ServerProcess) -> tuple[str, Samples]:
    response = httpx.get(f"{server.url}/metrics", trust_env=False, timeout=10)
    assert response.status_code == 200, response.text
    content_type = response.headers["content-type"]
    assert content_type.startswith("text/plain; version="), content_type
    assert content_type.count("charset") == 1, content_type
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def wait_for_sample(server: ServerProcess, check: Callable[[Samples], bool]) -> Samples:
    """Scrape until `check` holds (a close is counted after the socket is gone)."""
    async with asyncio.timeout(10.0):
        while True:
            _, samples = await asyncio.to_thread(scrape, server)
            if check(samples):
                return samples
            await asyncio.sleep(0.05)


async def test_metrics_count_the_traffic_of_a_run(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server({"CHAT__RATE_LIMIT__LOGIN_ATTEMPTS_PER_HOUR": "2"})
    _, before = scrape(server)
    assert value(before, "chat_connections_open") == 0
    assert value(before, "chat_replay_seconds") >= 0
    async with server.harness() as chat:
        alice, a = await chat.user_client("ma")
        bob, b = await chat.user_client("mb")
        room = unique("mroom")
        await a.call("join_room", room_name=room)
        await b.call("join_room", room_name=room)
        for i in range(5):
            await a.call("send_message", room_id=room, text=f"m{i}", client_msg_id=f"k{i}")
        await a.call("send_message", room_id=room, text="again", client_msg_id="k0")  # duplicate
        refused = await b.error_of("send_message", room_id=unique("nowhere"), text="x")
        for _ in range(3):  # the third is refused by the limit of 2
            response = await chat.login_response(alice.username, "wrong-password")
        assert response.status_code == 429, response.text
        await b.params_of("message_received", text="m4")
        await a.params_of("message_received", text="m4")

        text, samples = scrape(server)
        assert value(samples, "chat_connections_open") == 2
        commands = "chat_commands_total"
        assert value(samples, commands, method="send_message", outcome="ok") == 5
        assert value(samples, commands, method="send_message", outcome="duplicate") == 1
        assert value(samples, commands, method="join_room", outcome="ok") == 2
        reason = refused.error["data"]["reason"]
        assert value(samples, commands, method="send_message", outcome=reason) == 1
        assert value(samples, commands, method="register_account", outcome="ok") == 2
        # What the two clients received is what the hub says it delivered.
        received = len(durable(a.notifications)) + len(durable(b.notifications))
        # room_created to both (a list_rooms audience), a's join to a, b's join to both, and
        # 5 messages to both.
        assert received == 2 + 1 + 2 + 5 * 2
        assert value(samples, "chat_deliveries_total") == received
        assert value(samples, "chat_rate_limit_refusals_total", limit="logins") == 1
        # Every appended command was in one batch or another: 2 registrations, 2 joins (one
        # creating the room), 5 messages; the duplicate and the refusal append nothing.
        assert value(samples, "chat_journal_batch_commands_sum") >= 9
        assert value(samples, "chat_journal_append_seconds_count") >= 1
        assert value(samples, "chat_journal_append_seconds_bucket", le="+Inf") >= 1
        assert value(samples, "chat_journal_seq") == await chat.journal_seq()
        # One node alone never meets another writer's rows.
        assert value(samples, "chat_journal_conflicts_total") == 0
        assert ("chat_journal_conflict_commands_total", ()) in samples
        assert value(samples, "chat_send_queue_frames") >= 0
        # No per-user data: names, rooms and addresses never appear.
        for private in (alice.username, bob.username, room, "127.0.0.1", "m4"):
            assert private not in text

        await b.close()
        await wait_for_sample(
            server, lambda s: value(s, "chat_connection_closes_total", code="1000") == 1
        )
        _, after = scrape(server)
        assert value(after, "chat_connections_open") == 1

    seq = await asyncio.to_thread(lambda: httpx.get(f"{server.url}/health").json()["journal_seq"])
    server.restart()
    _, restarted = scrape(server)
    assert value(restarted, "chat_replay_events") == seq
    assert value(restarted, "chat_replay_seconds") > 0
    assert value(restarted, "chat_deliveries_total") == 0


async def test_metrics_can_be_turned_off(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server({"CHAT__SERVER__METRICS": "false"})
    async with server.harness() as chat:
        response: Any = await chat.http.get("/metrics")
        assert response.status_code == 404
        assert (await chat.register(unique("off"), PASSWORD)).status_code == 201
