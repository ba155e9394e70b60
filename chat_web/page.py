"""The browser client: `/` serves the page, `/static/` its files (plain ES modules, no build).

Every response of the page carries a Content-Security-Policy without inline script or style,
so text that slips into the DOM as HTML still cannot run. The page reaches the server only at
the address it was loaded from (`'self'`: the HTTP routes and the `/ws` socket).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from litestar import Router, get
from litestar.datastructures import ResponseHeader
from litestar.response import File
from litestar.static_files import create_static_files_router

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"

CONTENT_SECURITY_POLICY: Final = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        # 'self' covers ws:/wss: of the same host (CSP level 3).
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

_HEADERS: Final = [
    ResponseHeader(name="Content-Security-Policy", value=CONTENT_SECURITY_POLICY),
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


def page_router() -> Router:
    """`/` and `/static/*`, with the page's security headers."""
    static = create_static_files_router(path="/static", directories=[STATIC_DIR])
    return Router(path="/", route_handlers=[index, static], response_headers=_HEADERS)
