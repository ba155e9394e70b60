"""The client's side of the wire vocabulary: requests encoded from the catalogue's params,
responses and notifications decoded into its result and notification structs.

Clients ignore fields they do not know (msgspec skips them); a notification this client does
not know, or whose params do not decode, is dropped rather than half-understood.
"""

from __future__ import annotations

from typing import Any, Final, Literal, TypeVar

import msgspec
from msgspec import UNSET, Raw, UnsetType

from chat_core.protocol.catalogue import METHOD_OF, NOTIFICATIONS
from chat_core.protocol.notifications import Notice
from chat_core.protocol.params import Params

R = TypeVar("R", bound=msgspec.Struct)


class ErrorObject(msgspec.Struct, frozen=True, kw_only=True):
    """A JSON-RPC error object (docs/protocol.md section 3); `data` is open-ended."""

    code: int = -32603
    message: str = "error"
    data: dict[str, Any] = {}


class Incoming(msgspec.Struct, frozen=True, kw_only=True):
    """One server message: a response (`id` with `result` or `error`) or a notification."""

    id: int | str | UnsetType | None = UNSET
    method: str | None = None
    # An empty Raw where the member is absent.
    params: Raw = Raw()
    result: Raw = Raw()
    error: ErrorObject | None = None

    @property
    def is_response(self) -> bool:
        return self.id is not UNSET and (len(self.result) > 0 or self.error is not None)


class _Request(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    jsonrpc: Literal["2.0"]
    id: int | UnsetType = UNSET
    method: str
    params: Params


_ENCODER: Final = msgspec.json.Encoder()
_FRAME: Final = msgspec.json.Decoder(Incoming | list[Raw])
_ONE: Final = msgspec.json.Decoder(Incoming)
_NOTICES: Final = {
    name: msgspec.json.Decoder(entry.params) for name, entry in NOTIFICATIONS.items()
}


def method_of(params: Params) -> str:
    return METHOD_OF[type(params)].name


def encode_request(request_id: int | None, params: Params) -> bytes:
    """A request (a notification when `request_id` is None) for the method of `params`."""
    id_: int | UnsetType = UNSET if request_id is None else request_id
    return _ENCODER.encode(_Request(jsonrpc="2.0", id=id_, method=method_of(params), params=params))


def decode_frame(frame: str | bytes) -> list[Incoming]:
    """The messages of one frame (an array with `batch=1`); what is not a message is skipped."""
    try:
        decoded = _FRAME.decode(frame)
    except msgspec.DecodeError:
        return []
    if isinstance(decoded, Incoming):
        return [decoded]
    found = []
    for raw in decoded:
        try:
            found.append(_ONE.decode(raw))
        except msgspec.DecodeError:
            continue
    return found


def decode_notice(message: Incoming) -> Notice | None:
    """The params struct of a notification, or None if unknown or malformed."""
    decoder = _NOTICES.get(message.method or "")
    if decoder is None:
        return None
    try:
        notice = decoder.decode(message.params if len(message.params) else b"{}")
    except msgspec.DecodeError:
        return None
    return notice if isinstance(notice, Notice) else None


def decode_result(raw: Raw, result: type[R]) -> R:
    """A result as its catalogue struct (msgspec.ValidationError if it is not one)."""
    return msgspec.json.decode(raw if len(raw) else b"{}", type=result)


def check_result_type(params: Params, result: type[msgspec.Struct]) -> None:
    """A caller's expected result must be the one the catalogue gives its method."""
    expected = METHOD_OF[type(params)].result
    if result is not expected:
        raise TypeError(f"{method_of(params)} returns {expected.__name__}, not {result.__name__}")
