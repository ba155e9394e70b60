"""`GET /asyncapi.json`: the machine-readable contract of `/ws`, generated from the catalogue."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import msgspec
from litestar import Request, Response, get

from chat_core.protocol.asyncapi import asyncapi_document
from chat_web.runtime import Runtime


@lru_cache(maxsize=4)
def _encoded(host: str) -> bytes:
    # Built once per configured address: the document only changes with the code.
    return msgspec.json.encode(asyncapi_document(host))


@get("/asyncapi.json", include_in_schema=False, sync_to_thread=False)
def asyncapi(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The AsyncAPI 3.0 document of the WebSocket protocol (docs/protocol.md)."""
    runtime: Runtime = request.app.state.runtime
    server = runtime.settings.server
    # The configured address, not the Host header: a client cannot choose what is served.
    return Response(_encoded(f"{server.host}:{server.port}"), media_type="application/json")
