"""A hostile user's load, as a process: `python hostile_load.py WS_URL TOKEN ROOM SECONDS`.

`CONNECTIONS` sockets of one user, none of which reads what the server sends, each doing one
thing at full speed for SECONDS, reconnecting whenever the server closes it:
- `ones`: frames of `[1,1,1,...]` as large as the frame limit allows (32k invalid members);
- `history`: batches of `get_history` pages of 200 (long messages: the largest answers);
- `ping`: single pings;
- `churn`: connect and close at once (presence changes, handshakes).
Prints one JSON object: what was sent and how the server closed the sockets. HOSTILE_KINDS
(comma-separated) runs only some of the kinds, to tell which one costs what.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections import Counter
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

CONNECTIONS = 20
MAX_FRAME = 65536
KINDS = tuple(os.environ.get("HOSTILE_KINDS", "ones,history,ping,churn").split(","))


def _frames(kind: str, room: str) -> str:
    if kind == "ones":
        count = (MAX_FRAME - 2) // 2
        return "[" + ",".join(["1"] * count) + "]"
    if kind == "history":
        page = {"room_id": room, "limit": 200}
        calls = [
            {"jsonrpc": "2.0", "id": i, "method": "get_history", "params": page} for i in range(50)
        ]
        return json.dumps(calls)
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"})


async def _open(url: str, stats: Counter[str]) -> ClientConnection | None:
    try:
        # max_queue=1: the client library stops reading once one message is buffered, so
        # the server's writes back up as with a client that reads nothing.
        return await connect(
            url, max_queue=1, ping_interval=None, compression=None, open_timeout=5, proxy=None
        )
    except InvalidStatus as refused:
        stats[f"refused_{refused.response.status_code}"] += 1
    except (OSError, TimeoutError):
        stats["connect_failed"] += 1
    return None


async def _worker(kind: str, url: str, room: str, deadline: float, stats: Counter[str]) -> None:
    frame = _frames(kind, room)
    while time.monotonic() < deadline:
        ws = await _open(url, stats)
        if ws is None:
            await asyncio.sleep(0.05)  # refused: back off a little, then try again
            continue
        stats["connects"] += 1
        try:
            if kind == "churn":
                await ws.close()
                continue
            while time.monotonic() < deadline:
                try:
                    await asyncio.wait_for(ws.send(frame), max(0.01, deadline - time.monotonic()))
                except TimeoutError:
                    break  # the server stopped reading us (TCP pushes back): time is up
                stats[f"{kind}_frames"] += 1
        except ConnectionClosed as closed:
            stats[f"closed_{closed.rcvd.code if closed.rcvd else 1006}"] += 1
        finally:
            with contextlib.suppress(Exception):
                ws.transport.abort()


async def main(url: str, token: str, room: str, seconds: float) -> dict[str, Any]:
    stats: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    target = f"{url}?token={token}"
    await asyncio.gather(
        *(_worker(KINDS[i % len(KINDS)], target, room, deadline, stats) for i in range(CONNECTIONS))
    )
    return dict(stats)


if __name__ == "__main__":
    ws_url, user_token, room_id, duration = sys.argv[1:5]
    print(json.dumps(asyncio.run(main(ws_url, user_token, room_id, float(duration)))), flush=True)
