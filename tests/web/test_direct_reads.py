"""Direct reads (chat_web.ws.inbox): what uvicorn receives waits in a bounded inbox, text as
its str; the socket stops being read while the inbox is full and is read again once drained.
The server is a real uvicorn with `DirectWebSocketProtocol` on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
import uvicorn
import websockets

from chat_web.ws import inbox as inbox_module
from chat_web.ws.direct import DirectWebSocketProtocol, direct_inbox
from chat_web.ws.inbox import Inbox


async def test_the_inbox_keeps_text_as_str_and_gives_asgi_events_to_get() -> None:
    emptied: list[int] = []
    inbox = Inbox(lambda: emptied.append(1))
    inbox.put_nowait("one")
    inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
    assert await inbox.next() == "one"
    assert not emptied
    assert await inbox.get() == {"type": "websocket.disconnect", "code": 1000}
    assert emptied == [1]  # told once, when the last item was taken
    inbox.put_nowait("two")
    assert await inbox.get() == {"type": "websocket.receive", "text": "two"}
    assert inbox.empty()


async def test_the_inbox_is_full_at_its_bound_in_messages_and_in_characters() -> None:
    inbox = Inbox(lambda: None)
    for i in range(inbox_module.MESSAGES - 1):
        inbox.put_nowait(str(i))
    assert not inbox.full
    inbox.put_nowait("last")
    assert inbox.full
    while not inbox.empty():
        await inbox.next()
    inbox.put_nowait("x" * inbox_module.CHARS)
    assert inbox.full
    await inbox.next()
    assert not inbox.full


async def test_a_reader_waiting_on_an_empty_inbox_wakes_for_the_next_message() -> None:
    inbox = Inbox(lambda: None)
    waiting = asyncio.ensure_future(inbox.next())
    await asyncio.sleep(0)  # let it start waiting (not a synchronisation: it is checked below)
    assert not waiting.done()
    inbox.put_nowait("hello")
    async with asyncio.timeout(5):
        assert await waiting == "hello"


class _App:
    """An ASGI app that accepts, then reads nothing until `release` is set."""

    def __init__(self) -> None:
        self.protocol: asyncio.Future[DirectWebSocketProtocol] | None = None
        self.release = asyncio.Event()
        self.texts: list[str] = []
        self.done = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        inbox = direct_inbox(scope)
        assert inbox is not None
        assert self.protocol is not None
        self.protocol.set_result(scope["extensions"]["chat.direct"])
        await self.release.wait()
        while True:
            item = await inbox.next()
            if not isinstance(item, str):
                break
            self.texts.append(item)
            if item == "end":
                break
        self.done.set()
        await send({"type": "websocket.close", "code": 1000})


class _Watched(DirectWebSocketProtocol):
    """The protocol under test, telling the test when it stops reading the socket."""

    paused: asyncio.Event | None = None

    def send_receive_event_to_app(self) -> None:
        super().send_receive_event_to_app()
        if self.read_paused and self.paused is not None:
            self.paused.set()


@contextlib.asynccontextmanager
async def _server(app: _App) -> AsyncIterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))  # listening before uvicorn takes it
    config = uvicorn.Config(
        app,
        ws=_Watched,
        lifespan="off",
        log_level="warning",
        ws_max_size=1 << 20,
        ws_per_message_deflate=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        yield listener.getsockname()[1]
    finally:
        server.should_exit = True
        async with asyncio.timeout(10):
            await task
        listener.close()


@pytest.mark.timeout(60)
async def test_a_full_inbox_stops_reading_the_socket_and_nothing_is_lost() -> None:
    app = _App()
    app.protocol = asyncio.get_running_loop().create_future()
    _Watched.paused = paused = asyncio.Event()
    big = "x" * 16_384
    count = 2_000  # 33 MB: far more than the kernel's socket buffers hold
    async with (
        _server(app) as port,
        websockets.connect(f"ws://127.0.0.1:{port}/", max_size=None, compression=None) as client,
    ):
        async with asyncio.timeout(10):
            protocol = await app.protocol
        sending = asyncio.ensure_future(
            _send_all(client, (f"{i:04d}{big}" for i in range(count)), "end")
        )
        async with asyncio.timeout(10):
            await paused.wait()
        held = len(protocol.inbox._items)
        # Paused at the bound (here the characters'), plus what one read brought in past it:
        # not the whole flood.
        bound = min(inbox_module.MESSAGES, inbox_module.CHARS // len(big))
        assert bound <= held <= bound + 32, held
        assert not sending.done()  # TCP pushes back on the client meanwhile
        app.release.set()
        async with asyncio.timeout(30):
            await app.done.wait()
            await sending
    assert app.texts[-1] == "end"
    assert [t[:4] for t in app.texts[:-1]] == [f"{i:04d}" for i in range(count)]


async def _send_all(client: Any, texts: Iterable[str], last: str) -> None:
    for text in texts:
        await client.send(text)
    await client.send(last)
