"""The AsyncAPI 3.0 document of `/ws`, generated from the catalogue (never written by hand).

From the server's side: it receives each method's request and replies with its result or an
error, and sends each notification. Params, results and notifications are msgspec's JSON
Schemas of the catalogue's structs; the JSON-RPC envelopes around them are built here.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from chat_core.protocol.catalogue import METHODS, NOTIFICATIONS, Method, errors_of
from chat_core.protocol.codes import ErrorKind

_SCHEMAS: Final = "#/components/schemas/"
_CHANNEL: Final = {"$ref": "#/channels/ws"}
_ID: Final = {"type": ["string", "integer", "null"]}
_JSONRPC: Final = {"const": "2.0"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _SCHEMAS + name}


def _message_ref(key: str) -> dict[str, str]:
    return {"$ref": f"#/channels/ws/messages/{key}"}


def _obj(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def _error_schema(kinds: tuple[ErrorKind, ...]) -> dict[str, Any]:
    """An error response whose `code` and `data.reason` are one of `kinds`."""
    errors = [
        _obj(
            ["code", "message", "data"],
            {
                "code": {"const": kind.code},
                "message": {"type": "string"},
                "data": _obj(["reason"], {"reason": {"enum": list(kind.reasons)}}),
            },
        )
        for kind in kinds
    ]
    return _obj(
        ["jsonrpc", "id", "error"], {"jsonrpc": _JSONRPC, "id": _ID, "error": {"anyOf": errors}}
    )


def _method_schemas(method: Method, refs: dict[type, dict[str, Any]]) -> dict[str, Any]:
    name = method.name
    request = _obj(
        ["jsonrpc", "method"],
        {"jsonrpc": _JSONRPC, "id": _ID, "method": {"const": name}, "params": refs[method.params]},
    )
    result = _obj(
        ["jsonrpc", "id", "result"], {"jsonrpc": _JSONRPC, "id": _ID, "result": refs[method.result]}
    )
    return {
        f"{name}.request": request,
        f"{name}.result": result,
        f"{name}.error": _error_schema(errors_of(method)),
    }


def asyncapi_document(server_host: str = "127.0.0.1:3000") -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the WebSocket endpoint, as a JSON-ready dict."""
    types = [t for m in METHODS.values() for t in (m.params, m.result)]
    types += [n.params for n in NOTIFICATIONS.values()]
    types = list(dict.fromkeys(types))
    found, schemas = msgspec.json.schema_components(types, ref_template=_SCHEMAS + "{name}")
    refs: dict[type, dict[str, Any]] = dict(zip(types, found, strict=True))

    payloads: dict[str, Any] = {}
    for method in METHODS.values():
        payloads.update(_method_schemas(method, refs))
    for notice in NOTIFICATIONS.values():
        payloads[notice.name] = _obj(
            ["jsonrpc", "method", "params"],
            {"jsonrpc": _JSONRPC, "method": {"const": notice.name}, "params": refs[notice.params]},
        )
    for key, payload in payloads.items():
        schemas[f"frame.{key}"] = payload

    messages = {
        key: {"name": key, "contentType": "application/json", "payload": _ref(f"frame.{key}")}
        for key in payloads
    }
    operations: dict[str, Any] = {}
    for method in METHODS.values():
        name = method.name
        operations[name] = {
            "action": "receive",
            "channel": _CHANNEL,
            "summary": method.summary,
            "messages": [_message_ref(f"{name}.request")],
            "reply": {
                "channel": _CHANNEL,
                "messages": [_message_ref(f"{name}.result"), _message_ref(f"{name}.error")],
            },
        }
    for notice in NOTIFICATIONS.values():
        operations[notice.name] = {
            "action": "send",
            "channel": _CHANNEL,
            "summary": notice.summary,
            "messages": [_message_ref(notice.name)],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "chat-web WebSocket protocol",
            "version": "1",
            "description": "JSON-RPC 2.0 over /ws (docs/protocol.md). With batch=1 a frame may"
            " hold an array of these messages.",
        },
        "defaultContentType": "application/json",
        "servers": {"local": {"host": server_host, "protocol": "ws", "pathname": "/"}},
        "channels": {
            "ws": {
                "address": "/ws",
                "messages": {key: {"$ref": f"#/components/messages/{key}"} for key in messages},
            }
        },
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }
