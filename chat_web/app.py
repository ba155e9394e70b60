"""The Litestar application: HTTP auth routes, `/ws`, CORS, OpenAPI at `/schema`, AsyncAPI at
`/asyncapi.json`."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig

from chat_web.http.account import change_password, logout
from chat_web.http.auth import chat_error_handler, health, login, register
from chat_web.http.contract import asyncapi
from chat_web.http.ops import metrics
from chat_web.page import page_router
from chat_web.runtime import Runtime
from chat_web.ws.endpoint import chat_socket


def create_app(runtime: Runtime) -> Litestar:
    """An app serving `runtime` (built and started by the caller; see `chat_web.server`)."""
    cors = runtime.settings.server.cors
    origins = ["*"] if cors.allow_any_origin else list(cors.allowed_origins)
    handlers: list[Any] = [
        register,
        login,
        change_password,
        logout,
        health,
        asyncapi,
        chat_socket,
        page_router(list(runtime.settings.server.peer_urls)),
    ]
    if runtime.metrics is not None:
        handlers.append(metrics)
    return Litestar(
        route_handlers=handlers,
        state=State({"runtime": runtime}),
        cors_config=CORSConfig(allow_origins=origins),
        exception_handlers={Exception: chat_error_handler},
        openapi_config=OpenAPIConfig(title="chat-web", version="1"),
        # Logging is ours (chat_web.logging_setup): Litestar must not reconfigure the root logger.
        logging_config=None,
        debug=False,
    )
