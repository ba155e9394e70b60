"""Overload: a reconnect storm, a client that stops reading, a client sending as fast as it can,
and a flood of logins. Meanwhile a well-behaved client pings, and its latency must stay within
a generous bound; the limits in the settings, and nothing else, decide who is refused.

Sizes: RELIABILITY_STORM (connections opened at once, default 2000),
RELIABILITY_LOGIN_FLOOD (logins at once, default 60).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from pathlib import Path
from typing import Any

from helpers import Client, HandshakeRefused, Harness, open_socket, rpc_frame, unique
from reliability_kit import size, wait_for_log
from websockets.exceptions import ConnectionClosed

# Generous: these run on 2 shared cores, with the load generator in the same process.
PING_BOUND_S = 2.0

# How many requests a flooding client has unanswered at once: well under the server's send
# queue (`server.send_queue_limit`, 1024 by default), so a test process starved of CPU, reading
# its answers late, is not rightly closed with 4008 for it. The server still sees a continuous
# stream: a new frame goes out as soon as any answer comes back.
FLOOD_WINDOW = 256


async def _flood(client: Client, frames: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Send every (request id, frame) as fast as answers allow, at most FLOOD_WINDOW
    unanswered; every response, in the order of `frames`."""
    window = asyncio.Semaphore(FLOOD_WINDOW)

    async def one(request_id: str, frame: str) -> dict[str, Any]:
        async with window:
            return await client.request_raw(frame, request_id)

    return await asyncio.gather(*(one(request_id, frame) for request_id, frame in frames))


class Pinger:
    """A well-behaved client that pings in a loop and records each round trip."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.latencies: list[float] = []
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            result = await self.client.call("ping")
            assert result["pong"] is True
            # Paced by the server's answers: one ping in flight at a time.
            self.latencies.append(time.monotonic() - started)

    async def stop(self) -> float:
        """Stop; the worst latency seen (the loop must not have failed)."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        # One more, measured after the load, so there is always at least one.
        started = time.monotonic()
        assert (await self.client.call("ping"))["pong"] is True
        self.latencies.append(time.monotonic() - started)
        return max(self.latencies)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_reconnect_storm_is_served_within_the_connection_limit(launch: Any) -> None:
    storm = size("storm", 2000)
    limit = storm + 1  # the storm, plus the pinger
    server = launch({"CHAT__RATE_LIMIT__CONNECTIONS_PER_IP": str(limit)})
    async with server.harness() as chat:
        users = [await chat.new_user("storm") for _ in range(20)]
        pinger = Pinger(await chat.connect(users[0]))
        rss_before = _rss_kib(server.proc.pid)
        started = time.monotonic()
        opened = await asyncio.wait_for(
            asyncio.gather(
                *(
                    Client.open(chat.ws_url, users[i % len(users)].token, timeout=60)
                    for i in range(storm)
                ),
                return_exceptions=True,
            ),
            90,
        )
        elapsed = time.monotonic() - started
        failures = [o for o in opened if not isinstance(o, Client)]
        clients = [o for o in opened if isinstance(o, Client)]
        assert not failures, failures[:5]
        # Every one is served: a ping on each answers.
        answers = await asyncio.wait_for(asyncio.gather(*(c.call("ping") for c in clients)), 60)
        assert all(a["pong"] for a in answers)
        # The limit decides: one more from this address is refused with 429.
        try:
            extra = await Client.open(chat.ws_url, users[1].token)
        except HandshakeRefused as refused:
            assert (refused.status, refused.close_code) in ((429, None), (None, 4429)), refused
        else:
            await extra.close()
            raise AssertionError("a connection over connections_per_ip was served")
        worst = await pinger.stop()
        rss_after = _rss_kib(server.proc.pid)
        await asyncio.wait_for(asyncio.gather(*(c.close() for c in clients)), 60)
        # Closed sockets give their places back.
        again = await chat.connect(users[1])
        assert (await again.call("ping"))["pong"] is True
        print(
            f"\nreconnect storm: {storm} connections in {elapsed:.1f}s,"
            f" worst ping {worst * 1e3:.0f} ms, server RSS +{(rss_after - rss_before) // 1024} MiB"
        )
        assert worst < PING_BOUND_S * 3, worst  # the storm shares our 2 cores
        assert rss_after - rss_before < 512 * 1024, (rss_before, rss_after)


async def _slow_socket(chat: Harness, token: str) -> Any:
    """A WebSocket that never reads: a tiny kernel buffer and websockets' queue of 1."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    host, port = chat.base_url.removeprefix("http://").split(":")
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    return await open_socket(chat.ws_url, token, sock=sock, max_queue=1)


async def test_a_client_that_stops_reading_is_closed_and_nobody_waits(launch: Any) -> None:
    # Big messages, so the kernel's socket buffers fill after a few hundred of them.
    server = launch(
        {"CHAT__SERVER__SEND_QUEUE_LIMIT": "64", "CHAT__CHAT__MAX_MESSAGE_LENGTH": "60000"}
    )
    room = unique("slow")
    async with server.harness() as chat:
        slow_user = await chat.new_user("slow")
        talker, talk = await chat.user_client("talk")
        watcher, watch = await chat.user_client("watch")
        for client in (talk, watch):
            await client.call("join_room", room_name=room)
        slow_setup = await chat.connect(slow_user)
        await slow_setup.call("join_room", room_name=room)
        await slow_setup.close()
        # Offline first: a reconnect within the presence linger would be no change at all.
        await watch.params_of("presence_changed", username=slow_user.username, online=False)
        slow = await _slow_socket(chat, slow_user.token)
        await watch.params_of("presence_changed", username=slow_user.username, online=True)
        pinger = Pinger(watch)
        rss_before = _rss_kib(server.proc.pid)
        text = "z" * 60_000
        sent = 0
        # Talk until the server gives up on the slow reader.
        gave_up = asyncio.create_task(wait_for_log(server, "send queue overflow", timeout=60))
        while not gave_up.done():
            started = time.monotonic()
            await talk.call("send_message", room_id=room, text=text)
            assert time.monotonic() - started < PING_BOUND_S, "a sender waited for the slow one"
            sent += 1
            assert sent < 5_000, "the slow reader was never closed"
        assert slow_user.username in await gave_up
        worst = await pinger.stop()
        rss_after = _rss_kib(server.proc.pid)
        # The slow socket, read now, ends after what was already on its way: with 4008, or
        # with no close frame at all (1006) when the server's close could not get through the
        # full buffers before its close timeout.
        code = None
        reading = time.monotonic()
        try:
            async with asyncio.timeout(60):
                while True:
                    await slow.recv()
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else 1006
        assert code in (4008, 1006), code
        read_s = time.monotonic() - reading
        # Gone for the others too.
        await watch.params_of("presence_changed", username=slow_user.username, online=False)
        # Its user can come back and resume.
        back = await chat.connect(slow_user)
        assert (await back.call("ping"))["pong"] is True
        print(
            f"\nslow reader: closed after {sent} messages of 60k chars (code {code},"
            f" {read_s:.1f}s to read to the end),"
            f" worst ping of others {worst * 1e3:.0f} ms"
        )
        assert worst < PING_BOUND_S, worst
        assert rss_after - rss_before < 256 * 1024
        assert talker.username and watcher.username


async def test_a_flooding_client_is_rate_limited_and_others_stay_responsive(launch: Any) -> None:
    per_minute = 60
    server = launch({"CHAT__RATE_LIMIT__MESSAGES_PER_MINUTE": str(per_minute)})
    room = unique("flood")
    async with server.harness() as chat:
        _, flooder = await chat.user_client("flood")
        _, calm = await chat.user_client("calm")
        await flooder.call("join_room", room_name=room)
        await calm.call("join_room", room_name=room)
        pinger = Pinger(calm)
        frames = 3000
        started = time.monotonic()
        batch = [
            (f"f{i}", rpc_frame(f"f{i}", "send_message", {"room_id": room, "text": f"flood {i}"}))
            for i in range(frames)
        ]
        responses = await _flood(flooder, batch)
        elapsed = time.monotonic() - started
        ok = [r for r in responses if "result" in r]
        limited = [r for r in responses if "error" in r]
        assert all(r["error"]["code"] == -32029 for r in limited), limited[:3]
        assert all(r["error"]["data"]["retry_after_ms"] > 0 for r in limited)
        # The bucket holds a minute's worth, refilled at per_minute / 60 per second.
        assert per_minute // 2 <= len(ok) <= per_minute + elapsed * per_minute / 60 + 1, len(ok)
        # A ping flood (no rate limit) is answered in full, and others are not held up.
        pings = await _flood(
            flooder, [(f"p{i}", rpc_frame(f"p{i}", "ping")) for i in range(frames)]
        )
        assert len(pings) == frames and not flooder.is_closed
        assert all(p["result"]["pong"] for p in pings)
        worst = await pinger.stop()
        print(
            f"\nflooding client: {frames} sends in {elapsed:.1f}s, {len(ok)} accepted,"
            f" {len(limited)} rate limited; {frames} pings; worst ping of others"
            f" {worst * 1e3:.0f} ms"
        )
        assert worst < PING_BOUND_S, worst


async def test_a_login_flood_slows_logins_not_the_chat(launch: Any) -> None:
    attempts_per_hour = 20
    server = launch(
        {
            "CHAT__AUTH__BCRYPT_ROUNDS": "8",
            "CHAT__RATE_LIMIT__LOGIN_ATTEMPTS_PER_HOUR": str(attempts_per_hour),
        }
    )
    flood = size("login_flood", 60)
    async with server.harness() as chat:
        users = [await chat.new_user("login") for _ in range(10)]
        user = users[0]
        _, calm = await chat.user_client("calm")
        pinger = Pinger(calm)
        started = time.monotonic()
        # Fewer than the limit at once per name: attempts in flight count against it.
        good = await asyncio.gather(
            *(
                chat.login_response(users[i % len(users)].username, user.password)
                for i in range(flood)
            )
        )
        bad = await asyncio.gather(
            *(chat.login_response(user.username, "wrong-password") for _ in range(flood))
        )
        elapsed = time.monotonic() - started
        worst = await pinger.stop()
        assert all(r.status_code == 200 for r in good), {r.status_code for r in good}
        statuses = [r.status_code for r in bad]
        # The setting decides: that many failures are answered, the rest are refused early.
        assert statuses.count(401) == attempts_per_hour, statuses
        assert statuses.count(429) == flood - attempts_per_hour, statuses
        assert all(int(r.headers["Retry-After"]) > 0 for r in bad if r.status_code == 429)
        # The right password is still refused for this address and name while it is limited,
        # and another name is not affected.
        assert (await chat.login_response(user.username, user.password)).status_code == 429
        other = await chat.new_user("other")
        assert (await chat.login_response(other.username, other.password)).status_code == 200
        print(
            f"\nlogin flood: {flood} good + {flood} bad logins in {elapsed:.1f}s (bcrypt 8),"
            f" worst ping of the chat {worst * 1e3:.0f} ms"
        )
        assert worst < PING_BOUND_S, worst


async def test_concurrent_registrations_cannot_overrun_the_limit(launch: Any) -> None:
    """Registrations counted only after their hash let a concurrent burst all pass the limit
    (found here; fixed by counting before the hash)."""
    limit = 5
    server = launch({"CHAT__RATE_LIMIT__REGISTRATIONS_PER_HOUR": str(limit)})
    async with server.harness() as chat:
        # A taken name is refused before it counts.
        assert (await chat.register("alice")).status_code == 409
        responses = await asyncio.gather(*(chat.register(unique("burst")) for _ in range(30)))
        statuses = [r.status_code for r in responses]
        assert statuses.count(201) == limit, statuses
        assert statuses.count(429) == 30 - limit, statuses
