"""Crash consistency: the real server under load is killed with SIGKILL, again and again.

Several clients send messages with a `client_msg_id`, join and leave rooms, and a moderator
kicks, bans and unbans, while the server is killed at a random moment (after a random number
of acknowledged commands). After each restart on the same data directory:

- every acknowledged message is in its room's history exactly once, with its first message_id;
- no message is in the history twice, acknowledged or not;
- every acknowledged join, leave, kick, ban and unban is in the state (an operation that was in
  flight at the kill may have happened or not, nothing else);
- re-sending an acknowledged `client_msg_id` is answered `duplicate: true` with the first
  message_id, and a client retrying its unanswered sends gets each of them stored exactly once;
- `chat-cli replay --verify` passes on the data directory.

Sizes: RELIABILITY_KILLS (default 20) kills, RELIABILITY_CRASH_USERS (4) chatting users.
"""

from __future__ import annotations

import asyncio
import random
import signal
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers import Client, ConnectionLost, RpcError
from reliability_kit import replay_verify, seed, size

ROOMS = ("crash_a", "crash_b", "crash_c")
# Generous: the machine may be shared with benchmarks; a hang is still caught.
CALL_TIMEOUT = 30.0


@dataclass
class Fact:
    """An expected fact of the state: its last acknowledged value, and the value an operation
    in flight at the kill would have given it (either may be true after the restart)."""

    acked: Any
    pending: list[Any] = field(default_factory=list)

    def allowed(self) -> list[Any]:
        return [self.acked, *self.pending]

    def settle(self, actual: Any) -> None:
        assert actual in self.allowed(), (actual, self.allowed())
        self.acked = actual
        self.pending = []


@dataclass
class Ledger:
    # (username, client_msg_id) -> (room_id, message_id)
    acked: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)
    # (username, client_msg_id) -> (room_id, text): sent, no answer before the kill
    unanswered: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    membership: dict[tuple[str, str], Fact] = field(default_factory=dict)
    banned: dict[str, Fact] = field(default_factory=dict)
    acks_this_round: int = 0
    target: int = 0
    reached: asyncio.Event = field(default_factory=asyncio.Event)

    def ack(self) -> None:
        self.acks_this_round += 1
        if self.acks_this_round >= self.target:
            self.reached.set()


async def _call(client: Client, method: str, **params: Any) -> dict[str, Any]:
    response = await client.request(method, params, timeout=CALL_TIMEOUT)
    if "error" in response:
        raise RpcError(response["error"], response.get("id"))
    result = response["result"]
    assert isinstance(result, dict), response
    return result


async def _chatter(client: Client, username: str, ledger: Ledger, rng: random.Random) -> None:
    """Send, join and leave until the server dies."""
    while True:
        mine = [r for r in ROOMS if ledger.membership[(username, r)].acked]
        roll = rng.random()
        if mine and roll < 0.8:
            room = rng.choice(mine)
            cmid = uuid.uuid4().hex
            text = f"{username} {cmid[:8]}"
            ledger.unanswered[(username, cmid)] = (room, text)
            try:
                result = await _call(
                    client, "send_message", room_id=room, text=text, client_msg_id=cmid
                )
            except ConnectionLost:
                return
            del ledger.unanswered[(username, cmid)]
            assert result["duplicate"] is False, result
            ledger.acked[(username, cmid)] = (room, result["message_id"])
        else:
            room = rng.choice(ROOMS)
            fact = ledger.membership[(username, room)]
            joining = not fact.acked
            fact.pending = [joining]
            try:
                if joining:
                    await _call(client, "join_room", room_name=room)
                else:
                    await _call(client, "leave_room", room_id=room)
            except ConnectionLost:
                return
            fact.acked, fact.pending = joining, []
        ledger.ack()


async def _moderation(
    victim: Client, moderator: Client, victim_name: str, outlaw: str, ledger: Ledger
) -> None:
    """The victim joins a room and is kicked from it; the outlaw is banned and unbanned."""
    step = 0
    while True:
        room = ROOMS[step % len(ROOMS)]
        step += 1
        try:
            fact = ledger.membership[(victim_name, room)]
            fact.pending = [True]
            await _call(victim, "join_room", room_name=room)
            fact.acked, fact.pending = True, [False]
            ledger.ack()
            await _call(moderator, "kick_user", target_username=victim_name, room_id=room)
            fact.acked, fact.pending = False, []
            ledger.ack()
            ban = ledger.banned[outlaw]
            ban.pending = [not ban.acked]
            if ban.acked:
                result = await _call(moderator, "unban_user", target_username=outlaw)
                assert result == {"unbanned": True}, result
            else:
                result = await _call(
                    moderator, "ban_user", target_username=outlaw, reason="crash test"
                )
                assert result["banned"] is True, result
            ban.acked, ban.pending = not ban.acked, []
            ledger.ack()
        except ConnectionLost:
            return


async def _history(client: Client, room: str) -> list[dict[str, Any]]:
    """The room's whole history, every page."""
    messages: list[dict[str, Any]] = []
    before: int | None = None
    while True:
        params: dict[str, Any] = {"room_id": room, "limit": 200}
        if before is not None:
            params["before_seq"] = before
        page = await _call(client, "get_history", **params)
        messages[:0] = page["messages"]
        if not page["has_more"] or not page["messages"]:
            return messages
        before = page["messages"][0]["seq"]


async def test_acknowledged_commands_survive_repeated_sigkill(launch: Any, tmp_path: Path) -> None:
    server = launch(data_dir=tmp_path / "crash_data")
    try:
        await _crash_run(server, tmp_path / "crash_data")
    except BaseException:
        # The server's side of the story (every run of it), for the failure report.
        print("\nserver log (last 200 lines):\n" + "\n".join(server.log_lines[-200:]))
        raise


async def _crash_run(server: Any, data_dir: Path) -> None:
    kills = size("kills", 20)
    n_users = size("crash_users", 4)
    rng = random.Random(seed())
    ledger = Ledger()
    names = [f"crash{i}" for i in range(n_users)]
    victim_name, outlaw, mod_name = "crashvictim", "crashoutlaw", "crashmod"
    passwords: dict[str, str] = {}
    async with server.harness() as chat:
        for name in [*names, victim_name, outlaw, mod_name]:
            response = await chat.register(name)
            assert response.status_code == 201, response.text
            passwords[name] = "correct-horse-1"
        tokens = {name: await chat.login(name, passwords[name]) for name in passwords}
        admin = await chat.admin_client()
        await _call(admin, "set_role", target_username=mod_name, role="moderator")
        for room in ROOMS:
            await _call(admin, "join_room", room_name=room)
    for name in [*names, victim_name]:
        for room in ROOMS:
            ledger.membership[(name, room)] = Fact(False)
    ledger.banned[outlaw] = Fact(False)

    checked_messages = 0
    duplicates_found = 0
    lost_found = 0
    verify: asyncio.Task[tuple[int, str]] | None = None
    for round_no in range(kills + 1):
        async with server.harness() as chat:
            admin = await chat.admin_client()
            # --- after a restart: check everything acknowledged so far ---
            counts: dict[tuple[str, str], list[int]] = {}
            for room in ROOMS:
                for message in await _history(admin, room):
                    cmid = message.get("client_msg_id")
                    if cmid is not None:
                        key = (message["username"], cmid)
                        counts.setdefault(key, []).append(message["message_id"])
            duplicates_found += sum(len(ids) - 1 for ids in counts.values() if len(ids) > 1)
            for key, (_room, message_id) in ledger.acked.items():
                ids = counts.get(key)
                if not ids:
                    lost_found += 1
                else:
                    assert message_id in ids, (key, message_id, ids)
            checked_messages = len(ledger.acked)
            clients = {name: await chat.connect(tokens[name]) for name in [*names, victim_name]}
            for name, client in clients.items():
                rooms = set((await _call(client, "whoami"))["rooms"])
                for room in ROOMS:
                    ledger.membership[(name, room)].settle(room in rooms)
            login = await chat.login_response(outlaw, passwords[outlaw])
            assert login.status_code in (200, 403), login.text
            ledger.banned[outlaw].settle(login.status_code == 403)
            # A client retrying its unanswered sends: each is stored exactly once.
            for (name, cmid), (room, text) in list(ledger.unanswered.items()):
                result = await _call(
                    clients[name], "send_message", room_id=room, text=text, client_msg_id=cmid
                )
                ledger.acked[(name, cmid)] = (room, result["message_id"])
                del ledger.unanswered[(name, cmid)]
            # Re-sent acknowledged client_msg_ids are duplicates with the first result.
            for name, cmid in rng.sample(sorted(ledger.acked), min(5, len(ledger.acked))):
                room, message_id = ledger.acked[(name, cmid)]
                result = await _call(
                    clients[name], "send_message", room_id=room, text="again", client_msg_id=cmid
                )
                assert result["duplicate"] is True, result
                assert result["message_id"] == message_id, result
            if verify is not None:
                code, output = await verify
                assert code == 0, f"chat-cli replay --verify failed:\n{output}"
            if round_no == kills:
                break
            # --- load, then SIGKILL at a random moment ---
            moderator = await chat.connect(tokens[mod_name])
            ledger.acks_this_round = 0
            ledger.target = rng.randint(5, 40)
            ledger.reached = asyncio.Event()
            workers = [
                asyncio.create_task(_chatter(clients[name], name, ledger, rng)) for name in names
            ]
            workers.append(
                asyncio.create_task(
                    _moderation(clients[victim_name], moderator, victim_name, outlaw, ledger)
                )
            )
            reached = asyncio.create_task(ledger.reached.wait())
            done, _ = await asyncio.wait(
                [reached, *workers], timeout=60, return_when=asyncio.FIRST_COMPLETED
            )
            assert reached in done, [w.exception() for w in workers if w.done()]
            await asyncio.to_thread(server.stop, signal.SIGKILL)
            await asyncio.wait_for(asyncio.gather(*workers), 30)
        verify = asyncio.create_task(replay_verify(data_dir))
        await asyncio.to_thread(server.start)

    print(
        f"\ncrash consistency: kills survived={kills} acked messages checked={checked_messages}"
        f" lost={lost_found} duplicated={duplicates_found}"
    )
    assert lost_found == 0
    assert duplicates_found == 0
    assert checked_messages > 0
