"""The browser client: `/` serves the page, `/static/` its files (plain ES modules, no build).

Every response of the page carries a Content-Security-Policy without inline script or style,
so text that slips into the DOM as HTML still cannot run. The page reaches the server at the
address it was loaded from (`'self'`: the HTTP routes and the `/ws` socket) and at the other
nodes of the chat (`server.peer_urls`), which it learns from `GET /peers` and moves to in
turn when its socket is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import msgspec
from litestar import Router, get
from litestar.datastructures import ResponseHeader
from litestar.response import File
from litestar.static_files import create_static_files_router

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"


def content_security_policy(peer_urls: Sequence[str] = ()) -> str:
    """The page's policy: its own origin, and the HTTP and WebSocket origins of the peers."""
    peers: list[str] = []
    for url in peer_urls:
        parts = urlsplit(url)
        socket = "wss" if parts.scheme == "https" else "ws"
        peers += [f"{parts.scheme}://{parts.netloc}", f"{socket}://{parts.netloc}"]
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            # 'self' covers ws:/wss: of the same host (CSP level 3).
            " ".join(["connect-src 'self'", *dict.fromkeys(peers)]),
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


class Peers(msgspec.Struct, frozen=True, kw_only=True):
    peer_urls: list[str]


def _headers(peer_urls: Sequence[str]) -> list[ResponseHeader]:
    return [
        ResponseHeader(name="Content-Security-Policy", value=content_security_policy(peer_urls)),
        ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
        ResponseHeader(name="Referrer-Policy", value="no-referrer"),
        # The page is small and changes with the server: revalidate rather than serve it stale.
        ResponseHeader(name="Cache-Control", value="no-cache"),
    ]


@get("/", include_in_schema=False, sync_to_thread=False)
def index() -> File:
    """The single page; its scripts and styles come from `/static/`."""
    return File(
        path=STATIC_DIR / "index.html",
        filename="index.html",
        media_type="text/html",
        content_disposition_type="inline",
    )


def page_router(peer_urls: Sequence[str] = ()) -> Router:
    """`/`, `/static/*` and `/peers` (the other nodes' base URLs, `server.peer_urls`), with
    the page's security headers."""
    known = Peers(peer_urls=[url.rstrip("/") for url in peer_urls])

    @get("/peers", include_in_schema=False, sync_to_thread=False)
    def peers() -> Peers:
        return known

    static = create_static_files_router(path="/static", directories=[STATIC_DIR])
    return Router(
        path="/", route_handlers=[index, static, peers], response_headers=_headers(peer_urls)
    )
