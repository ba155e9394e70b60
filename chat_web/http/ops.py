"""`GET /metrics` (when `server.metrics` is on): Prometheus' text format, see chat_web.metrics."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from chat_web.metrics import CONTENT_TYPE
from chat_web.runtime import Runtime


@get("/metrics", include_in_schema=False, sync_to_thread=False)
def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    rt: Runtime = request.app.state.runtime
    assert rt.metrics is not None, "the route exists only when server.metrics is on"
    return Response(rt.metrics.render(), media_type=CONTENT_TYPE)
