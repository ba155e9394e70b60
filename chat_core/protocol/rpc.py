"""JSON-RPC 2.0 codec of docs/protocol.md section 3: parse one frame, encode responses.

Pure (no I/O) and built for speed: a well-formed single request is decoded, params included,
in one msgspec pass through a union of per-method envelopes tagged by `method`. Anything
else takes a slower path that works out the exact error, member by member.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, Final, Literal, TypeAlias, Union, cast

import msgspec
from msgspec import UNSET, Raw, Struct, UnsetType

from chat_core.errors import (
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    ChatError,
    InvalidParams,
)
from chat_core.protocol.catalogue import PARAMS as METHODS
from chat_core.protocol.params import Params

__all__ = [
    "INVALID_PARAMS",
    "METHODS",
    "Call",
    "ErrorReply",
    "Params",
    "Parsed",
    "RequestId",
    "encode_batch",
    "encode_error",
    "encode_notification",
    "encode_result",
    "error_from",
    "error_object",
    "parse_frame",
]

RequestId: TypeAlias = str | int | None
INVALID_PARAMS: Final = InvalidParams.code


class Call(Struct, frozen=True, kw_only=True):
    """A valid request (`is_notification` False: it needs a response) or notification."""

    id: RequestId
    method: str
    params: Params
    is_notification: bool


class ErrorReply(Struct, frozen=True, kw_only=True):
    """A member already answered by the parser: send `error` back with `id`."""

    id: RequestId
    error: dict[str, Any]


class Parsed(Struct, frozen=True, kw_only=True):
    """One frame: the items to answer, in member order.

    Invalid notifications get no reply, so a batch may have fewer items than members. The
    caller answers a batch with an array (nothing if no member needs a response) and a
    single message with a single response.
    """

    is_batch: bool
    items: list[Call | ErrorReply]
    # Requests the frame held, answered or not (what a request budget counts): a batch's
    # members, or 1 for a single message and for a batch refused as a whole.
    members: int = 1


def error_object(code: int, message: str, reason: str, **data: Any) -> dict[str, Any]:
    """A JSON-RPC error object `{"code", "message", "data": {"reason", ...}}`."""
    return {"code": code, "message": message, "data": {"reason": reason, **data}}


def error_from(exc: ChatError) -> dict[str, Any]:
    """The error object of a chat error, with its code and reason."""
    return exc.error_object()


# --- encoding --------------------------------------------------------------------------------


class _Result(Struct, frozen=True, kw_only=True):
    jsonrpc: str = "2.0"
    id: RequestId
    result: Any


class _Error(Struct, frozen=True, kw_only=True):
    jsonrpc: str = "2.0"
    id: RequestId
    error: dict[str, Any]


class _Notification(Struct, frozen=True, kw_only=True):
    jsonrpc: str = "2.0"
    method: str
    params: Any


# One encoder for the module; msgspec writes aware datetimes as RFC 3339 (UTC as `Z`).
_ENCODER: Final = msgspec.json.Encoder()


def encode_result(id: RequestId, result: dict[str, Any] | Struct) -> bytes:
    """The response to request `id`."""
    return _ENCODER.encode(_Result(id=id, result=result))


def encode_error(id: RequestId, error: dict[str, Any]) -> bytes:
    """The error response to request `id` (`id` None where it could not be read)."""
    return _ENCODER.encode(_Error(id=id, error=error))


def encode_notification(method: str, params: dict[str, Any] | Struct) -> bytes:
    """A server-to-client notification."""
    return _ENCODER.encode(_Notification(method=method, params=params))


def encode_batch(parts: Iterable[bytes]) -> bytes:
    """A batch response from responses already encoded; they are joined, not re-encoded."""
    return b"[" + b",".join(parts) + b"]"


# --- decoding --------------------------------------------------------------------------------


class _Envelope(Struct, frozen=True, kw_only=True, tag_field="method"):
    """Base of the per-method request envelopes; unknown members (`"type"`) are ignored."""

    jsonrpc: Literal["2.0"]
    # UNSET, not None: a request with `"id": null` still needs a response.
    id: RequestId | UnsetType = UNSET
    params: Any = UNSET


class _Spec(Struct, frozen=True):
    method: str
    # The params of an omitted `params`, or None where the method has required params.
    empty: Params | None


def _build() -> tuple[dict[type[_Envelope], _Spec], list[type[_Envelope]]]:
    specs: dict[type[_Envelope], _Spec] = {}
    for method, params_type in METHODS.items():
        envelope = cast(
            "type[_Envelope]",
            msgspec.defstruct(
                f"_{params_type.__name__}Request",
                [("params", cast(Any, params_type | UnsetType), UNSET)],
                bases=(_Envelope,),
                tag=method,
                frozen=True,
                kw_only=True,
            ),
        )
        try:
            empty: Params | None = msgspec.json.decode(b"{}", type=params_type)
        except msgspec.ValidationError:
            empty = None
        specs[envelope] = _Spec(method, empty)
    return specs, list(specs)


_SPECS, _ENVELOPES = _build()
_REQUEST_TYPE: Final[Any] = cast(Any, Union)[tuple(_ENVELOPES)]

_FRAME_DECODER: Final = msgspec.json.Decoder(cast(Any, Union)[_REQUEST_TYPE, list[Raw]])
_REQUEST_DECODER: Final = msgspec.json.Decoder(_REQUEST_TYPE)
_LOOSE_FRAME_DECODER: Final = msgspec.json.Decoder(dict[str, Raw] | list[Raw])
_MEMBER_DECODER: Final = msgspec.json.Decoder(dict[str, Raw])
_ID_DECODER: Final = msgspec.json.Decoder(RequestId)
_STR_DECODER: Final = msgspec.json.Decoder(str)
_PARAMS_DECODERS: Final = {
    method: msgspec.json.Decoder(params_type) for method, params_type in METHODS.items()
}

_EMPTY_OBJECT: Final = b"{}"
_FIELD_AT = re.compile(r"`\$\.([A-Za-z_][A-Za-z0-9_]*)")
_MISSING_FIELD = re.compile(r"required field `([^`]+)`")


def _parse_error(why: str) -> ErrorReply:
    return ErrorReply(
        id=None, error=error_object(PARSE_ERROR, f"Parse error: {why}", "parse_error")
    )


def _invalid_request(id: RequestId, why: str) -> ErrorReply:
    message = f"Invalid request: {why}"
    return ErrorReply(id=id, error=error_object(INVALID_REQUEST, message, "invalid_request"))


def _invalid_params(id: RequestId, raw: Raw | bytes, exc: msgspec.ValidationError) -> ErrorReply:
    if memoryview(raw)[:1].tobytes() != b"{":
        message = "Invalid params: `params` must be an object of named parameters"
        return ErrorReply(id=id, error=error_object(INVALID_PARAMS, message, "invalid_params"))
    why = str(exc)
    found = _FIELD_AT.search(why) or _MISSING_FIELD.search(why)
    message = "Invalid params: " + why.replace("`$", "`params")
    data = {"field": found.group(1)} if found else {}
    return ErrorReply(id=id, error=error_object(INVALID_PARAMS, message, "invalid_params", **data))


def _read_str(raw: Raw | None) -> str | None:
    if raw is None:
        return None
    try:
        return _STR_DECODER.decode(raw)
    except msgspec.ValidationError:
        return None


def _classify(member: Raw | str | bytes) -> Call | ErrorReply | None:
    """The slow path: the exact outcome of one member (None: a notification, no reply)."""
    try:
        fields = _MEMBER_DECODER.decode(member)
    except msgspec.ValidationError:
        return _invalid_request(None, "a request must be an object")
    is_notification = "id" not in fields
    id: RequestId = None
    if not is_notification:
        try:
            id = _ID_DECODER.decode(fields["id"])
        except msgspec.ValidationError:
            return _invalid_request(None, '"id" must be a string, an integer or null')
    if _read_str(fields.get("jsonrpc")) != "2.0":
        return _invalid_request(id, '"jsonrpc" must be "2.0"')
    method = _read_str(fields.get("method"))
    if method is None:
        return _invalid_request(id, '"method" must be a string')
    decoder = _PARAMS_DECODERS.get(method)
    if decoder is None:
        if is_notification:
            return None
        message = f"Method not found: {method[:64]!r}"
        return ErrorReply(id=id, error=error_object(METHOD_NOT_FOUND, message, "method_not_found"))
    raw_params = fields.get("params", _EMPTY_OBJECT)
    try:
        params = decoder.decode(raw_params)
    except msgspec.ValidationError as exc:
        return None if is_notification else _invalid_params(id, raw_params, exc)
    return Call(id=id, method=method, params=params, is_notification=is_notification)


def _from_envelope(envelope: _Envelope) -> Call | None:
    """The call of a well-formed envelope; None if its omitted params need the slow path."""
    spec = _SPECS[type(envelope)]
    params = envelope.params
    if params is UNSET:
        params = spec.empty
        if params is None:
            return None
    if envelope.id is UNSET:
        return Call(id=None, method=spec.method, params=params, is_notification=True)
    return Call(id=envelope.id, method=spec.method, params=params, is_notification=False)


def _member(raw: Raw) -> Call | ErrorReply | None:
    try:
        envelope = _REQUEST_DECODER.decode(raw)
    except msgspec.ValidationError:
        return _classify(raw)
    return _from_envelope(envelope) or _classify(raw)


def _batch(members: list[Raw], max_batch: int) -> Parsed:
    if not members:
        return Parsed(is_batch=False, items=[_invalid_request(None, "empty batch")])
    if 0 < max_batch < len(members):
        # Refused before any member is looked at: the work stays bounded by the limit.
        message = f"Invalid request: a batch holds at most {max_batch} requests"
        error = error_object(INVALID_REQUEST, message, "batch_too_large")
        return Parsed(is_batch=False, items=[ErrorReply(id=None, error=error)])
    items = [item for item in map(_member, members) if item is not None]
    return Parsed(is_batch=True, items=items, members=len(members))


def _single(item: Call | ErrorReply | None) -> Parsed:
    return Parsed(is_batch=False, items=[] if item is None else [item])


def _parse_loose(data: str | bytes, max_batch: int) -> Parsed:
    """Valid JSON that is not a perfect request, or a frame with a syntax error further on."""
    try:
        decoded = _LOOSE_FRAME_DECODER.decode(data)
    except msgspec.ValidationError:
        # Neither an object nor an array: a scalar, but only valid JSON is -32600 (`0:` or
        # `"a"b` fail typing before the trailing text is seen; this raises DecodeError).
        try:
            msgspec.json.decode(data)
        except msgspec.ValidationError:
            # A number out of range (1e400) stops msgspec before it sees what follows.
            try:
                json.loads(data)
            except ValueError:
                return _single(_parse_error("JSON is malformed"))
        return _single(_invalid_request(None, "a request must be an object"))
    if isinstance(decoded, list):
        return _batch(decoded, max_batch)
    return _single(_classify(data))


def parse_frame(data: str | bytes, max_batch: int = 0) -> Parsed:
    """Parse one WebSocket text frame into the calls to run and the errors to send.

    Never raises for any `str` or `bytes`: bad JSON, bad requests and bad params all become
    `ErrorReply` items (docs/protocol.md section 3). A batch of more than `max_batch` members
    (0: no limit) is one -32600 error, reason `batch_too_large`.
    """
    try:
        try:
            decoded = _FRAME_DECODER.decode(data)
        except msgspec.ValidationError:
            return _parse_loose(data, max_batch)
        if isinstance(decoded, list):
            return _batch(decoded, max_batch)
        return _single(_from_envelope(decoded) or _classify(data))
    except msgspec.DecodeError as exc:
        return _single(_parse_error(str(exc)))
    except UnicodeError:
        # A `str` holding lone surrogates cannot be UTF-8: it was never valid JSON text.
        return _single(_parse_error("the frame is not valid UTF-8"))
    except RecursionError:
        # msgspec bounds nesting by the interpreter's recursion limit (about 1000 levels).
        return _single(_parse_error("JSON nested too deeply"))
