"""Child process of test_crash.py: append batches through the real CommandProcessor until
killed, printing one JSON line per committed batch (after its commit): the client ids, seqs
and message ids of its messages. Usage: python crash_writer.py <journal-url> <run>."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime

from chat_core.domain import commands as c
from chat_core.journal.replay import replay
from chat_core.journal.sqlite import Journal
from chat_core.processor import CommandProcessor

BATCH = 5


async def main(url: str, run: str) -> None:
    journal = await Journal.open(url, migrate=True)
    state, _ = await replay(journal)
    processor = CommandProcessor(journal, state)
    processor.start()
    now = datetime.now(UTC)
    await processor.submit(
        c.EnsureAccount(actor="system", at=now, username="writer", role="user", password_hash="h")
    )
    await processor.submit(c.JoinRoom(actor="writer", at=now, room_name="crash"))
    n = 0
    while True:
        ids = [f"{run}-{n + k}" for k in range(BATCH)]
        n += BATCH
        at = datetime.now(UTC)
        outcomes = await asyncio.gather(
            *(
                processor.submit(
                    c.SendMessage(
                        actor="writer", at=at, room_id="crash", text=cid, client_msg_id=cid
                    )
                )
                for cid in ids
            )
        )
        line = {
            "ids": ids,
            "seqs": [o.events[0].seq for o in outcomes],
            "message_ids": [o.events[0].event.message_id for o in outcomes],
        }
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
