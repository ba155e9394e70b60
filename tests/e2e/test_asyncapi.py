"""`GET /asyncapi.json`: the contract generated from the catalogue describes the real frames."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
from helpers import Harness, unique
from server_kit import ServerProcess

from chat_core.protocol.catalogue import METHODS, NOTIFICATIONS


def _document(server: ServerProcess) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/asyncapi.json", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document: dict[str, Any] = response.json()
    return document


def _check(document: dict[str, Any], message: str, frame: dict[str, Any]) -> None:
    """`frame` validates against the payload schema of the document's message `message`."""
    payload = document["components"]["messages"][message]["payload"]
    schema = {"components": document["components"], **payload}
    jsonschema.Draft202012Validator(schema).validate(frame)


def _invalid(document: dict[str, Any], message: str, frame: dict[str, Any]) -> bool:
    try:
        _check(document, message, frame)
    except jsonschema.ValidationError:
        return True
    return False


def test_the_document_is_asyncapi_3_with_one_operation_per_method_and_notification(
    server: ServerProcess,
) -> None:
    document = _document(server)
    assert document["asyncapi"] == "3.0.0"
    assert document["channels"]["ws"]["address"] == "/ws"
    operations = document["operations"]
    assert set(operations) == set(METHODS) | set(NOTIFICATIONS)
    for name in METHODS:
        assert operations[name]["action"] == "receive"
        replies = [ref["$ref"] for ref in operations[name]["reply"]["messages"]]
        assert replies == [f"#/channels/ws/messages/{name}.{kind}" for kind in ("result", "error")]
    for name in NOTIFICATIONS:
        assert operations[name]["action"] == "send"
    for schema in document["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)
    # Every message a channel names exists.
    for ref in document["channels"]["ws"]["messages"].values():
        assert (
            ref["$ref"].removeprefix("#/components/messages/") in document["components"]["messages"]
        )


def test_the_document_is_not_in_the_openapi_schema(server: ServerProcess) -> None:
    openapi = httpx.get(f"{server.url}/schema/openapi.json", timeout=5).json()
    assert "/asyncapi.json" not in openapi["paths"]


async def test_the_schemas_validate_frames_captured_from_the_server(
    server: ServerProcess, chat: Harness
) -> None:
    document = _document(server)
    _alice, alice = await chat.user_client("alice")
    _bob, bob = await chat.user_client("bob")
    room = unique("contract")
    request = {"jsonrpc": "2.0", "id": "c1", "method": "join_room", "params": {"room_name": room}}
    _check(document, "join_room.request", request)
    joined = await alice.request("join_room", {"room_name": room})
    _check(document, "join_room.result", joined)
    await bob.call("join_room", room_name=room)
    sent = await alice.request(
        "send_message", {"room_id": room, "text": "hello", "client_msg_id": "m1"}
    )
    _check(document, "send_message.result", sent)
    await bob.params_of("message_received", text="hello")
    refused = await bob.request("get_history", {"room_id": unique("nowhere")})
    assert "error" in refused
    _check(document, "get_history.error", refused)
    _check(document, "connection_established", alice.established)
    seen = set()
    for client in (alice, bob):
        for notification in client.notifications:
            frame = {k: v for k, v in notification.items() if k != "_received_at"}
            _check(document, frame["method"], frame)
            seen.add(frame["method"])
    assert {"connection_established", "message_received", "user_joined"} <= seen
    # The schemas say something: a result is no notification, an unknown reason is no error.
    assert _invalid(document, "send_message.result", joined)
    refused["error"]["data"]["reason"] = "no_such_reason"
    assert _invalid(document, "get_history.error", refused)
