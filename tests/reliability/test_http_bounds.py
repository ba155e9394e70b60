"""HTTP is bounded: body sizes, nesting, slow senders, and whose forwarded address is believed."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from helpers import PASSWORD, HandshakeRefused, open_socket, unique

SLOW_SOCKETS = 1000


async def test_auth_bodies_are_capped_and_bad_ones_are_400(launch: Any) -> None:
    server = launch()
    async with server.harness() as chat:
        big = {"username": unique("big"), "password": "x" * 5000}
        for path in ("/auth/login", "/auth/register"):
            response = await chat.http.post(path, json=big)
            assert response.status_code == 413, response.text
            assert response.json()["reason"] == "body_too_large"
        nested = '{"username": ' + "[" * 1500 + "]" * 1500 + ', "password": "x"}'
        for path in ("/auth/login", "/auth/register"):
            response = await chat.http.post(
                path, content=nested, headers={"content-type": "application/json"}
            )
            assert response.status_code == 400, response.text
            assert response.json()["reason"] == "invalid_body"


async def test_a_login_outside_the_naming_rules_builds_no_limiter_key(launch: Any) -> None:
    server = launch({"CHAT__RATE_LIMIT__LOGIN_ATTEMPTS_PER_HOUR": "2"})
    async with server.harness() as chat:
        for _ in range(5):
            response = await chat.login_response("no such name!", "whatever-password")
            assert response.status_code == 401, response.text
            assert response.json()["reason"] == "invalid_credentials"
        # Had those counted, a real name would be no different: two failures, then 429.
        user = await chat.new_user("lim")
        statuses = [
            (await chat.login_response(user.username, "wrong-password")).status_code
            for _ in range(3)
        ]
        assert statuses == [401, 401, 429]


async def test_forwarded_addresses_are_believed_only_from_trusted_proxies(launch: Any) -> None:
    limits = {"CHAT__RATE_LIMIT__REGISTRATIONS_PER_HOUR": "1"}
    for trusted, expected in (("[]", 429), ('["127.0.0.1"]', 201)):
        server = launch({**limits, "CHAT__SERVER__TRUSTED_PROXIES": trusted})
        async with server.harness() as chat:
            assert (await chat.register(unique("fwd"))).status_code == 201
            forwarded = await chat.http.post(
                "/auth/register",
                json={"username": unique("fwd"), "password": PASSWORD},
                headers={"X-Forwarded-For": "203.0.113.7"},
            )
            assert forwarded.status_code == expected, (trusted, forwarded.text)
        server.stop()


async def test_the_connection_limit_counts_the_real_peer(launch: Any) -> None:
    server = launch({"CHAT__RATE_LIMIT__CONNECTIONS_PER_IP": "1"})
    async with server.harness() as chat:
        user = await chat.new_user("peer")
        first = await chat.connect(user)
        try:
            await open_socket(
                server.ws_url,
                user.token,
                via="query",
                additional_headers={"X-Forwarded-For": "203.0.113.8"},
            )
        except HandshakeRefused as refused:
            assert refused.status == 429
        else:
            raise AssertionError("a forged X-Forwarded-For got past connections_per_ip")
        assert not first.is_closed


async def _trickle(port: int, stop: asyncio.Event) -> float:
    """Send a request one header line at a time until the server closes; seconds it took."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    try:
        line = 0
        while not stop.is_set():
            try:
                # Waiting for the server's close; a header line every 0.3 s meanwhile.
                data = await asyncio.wait_for(reader.read(1), 0.3)
            except TimeoutError:
                line += 1
                writer.write(f"X-Slow-{line}: 1\r\n".encode())
                continue
            except ConnectionResetError:
                # Closed with header lines still unread on the server's side: the kernel
                # answers that close with a reset rather than a FIN. Cut all the same.
                return time.monotonic() - started
            assert data == b"", data  # no answer: the connection is closed
            return time.monotonic() - started
        return float("inf")
    finally:
        writer.close()


async def test_slow_header_senders_are_cut_off_and_keep_no_one_out(launch: Any) -> None:
    server = launch({"CHAT__SERVER__HEADER_TIMEOUT_SECONDS": "2"})
    stop = asyncio.Event()
    slow = [asyncio.create_task(_trickle(server.port, stop)) for _ in range(SLOW_SOCKETS)]
    try:
        async with httpx.AsyncClient(base_url=server.url, trust_env=False) as http:
            started = time.monotonic()
            health = await http.get("/health", timeout=5)
            assert health.status_code == 200
            normal = time.monotonic() - started
        async with asyncio.timeout(15):
            cut_after = await asyncio.gather(*slow)
    finally:
        stop.set()
        for task in slow:
            task.cancel()
    # A deadline, not an idle timer: trickling a line every 0.3 s did not extend it.
    assert max(cut_after) < 2 + 5, max(cut_after)
    assert min(cut_after) >= 2 - 0.5, min(cut_after)
    print(
        f"\n{SLOW_SOCKETS} slow sockets: a normal request took {normal * 1e3:.0f} ms;"
        f" slow ones cut after {min(cut_after):.1f}-{max(cut_after):.1f} s"
    )
    assert normal < 2.0, normal
