"""The event codec: journal rows to `Recorded` events and back, with upcasting.

A row stores the event's tag, its schema version and its JSON payload. Decoding a row of
the current version is one msgspec call; an older row is first lifted by upcasters, pure
`dict -> dict` functions keyed by (tag, version), one version at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec

from chat_core.domain import events as e
from chat_core.errors import CorruptJournal

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

# The current schema version of each tag. Bump it together with an upcaster from the
# previous version and a frozen sample of the old form in tests/data/.
VERSIONS: Final[dict[str, int]] = {cls.__struct_config__.tag: 1 for cls in e.EVENT_TYPES}  # type: ignore[misc]

# (tag, version) -> the function lifting a payload of that version to version + 1.
UPCASTERS: dict[tuple[str, int], Upcaster] = {}

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(e.Event)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# event class -> its tag
TAGS: Final[dict[type[e._Event], str]] = {
    cls: cls.__struct_config__.tag  # type: ignore[misc]
    for cls in e.EVENT_TYPES
}
# tag -> its event class: a decoded payload must be of the class its row's tag names.
_CLASSES: Final[dict[str, type[e._Event]]] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in e.EVENT_TYPES
}


class Message(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """A chat message as clients see it (docs/protocol.md section 5): in a room's recent window
    of the state, and in a history page read from the journal."""

    seq: int
    message_id: int
    room_id: str
    username: str
    text: str
    timestamp: datetime
    client_msg_id: str | None = None


def message_of(seq: int, timestamp: datetime, event: e.MessageSent) -> Message:
    """The state's (and history's) view of a recorded message."""
    return Message(
        seq=seq,
        message_id=event.message_id,
        room_id=event.room_id,
        username=event.username,
        text=event.text,
        timestamp=timestamp,
        client_msg_id=event.client_msg_id,
    )


def encode_event(event: e.Event) -> bytes:
    """The JSON payload of an event (its `type` tag included)."""
    return _encoder.encode(event)


def to_micros(at: datetime) -> int:
    """A UTC datetime as integer microseconds since the epoch (the journal's time column)."""
    # timedelta // timedelta is integer arithmetic in C: exact, and one call.
    return (at - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    """The inverse of `to_micros`, exact to the microsecond (integer arithmetic, no float)."""
    # Positional timedelta(days, seconds, microseconds) with both parts already normalised:
    # about twice as fast as timedelta(microseconds=...), which goes through a float path.
    return _EPOCH + timedelta(0, micros // 1_000_000, micros % 1_000_000)


def upcast(tag: str, version: int, payload: dict[str, Any]) -> dict[str, Any]:
    """Lift a payload from `version` to the current version of its tag."""
    current = VERSIONS.get(tag)
    if current is None:
        raise ValueError(f"unknown event tag {tag!r}")
    if version > current:
        raise ValueError(f"{tag} version {version} is newer than this code knows ({current})")
    while version < current:
        step = UPCASTERS.get((tag, version))
        if step is None:
            raise ValueError(f"no upcaster for {tag} version {version}")
        payload = step(payload)
        version += 1
    return payload


def decode_event(seq: int, tag: str, version: int, payload: bytes | str) -> e.Event:
    """Decode one stored event, raising `CorruptJournal` (with its seq) if it cannot be read."""
    try:
        event: e.Event
        if version == VERSIONS.get(tag):
            event = _decoder.decode(payload)
        else:
            raw = msgspec.json.decode(payload)
            if not isinstance(raw, dict):
                raise ValueError("payload is not a JSON object")
            event = msgspec.convert({**upcast(tag, version, raw), "type": tag}, e.Event)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError, TypeError) as exc:
        raise CorruptJournal(seq, str(exc)) from exc
    if e.tag_of(event) != tag:
        raise CorruptJournal(seq, f"payload type {e.tag_of(event)!r} under tag {tag!r}")
    return event


def decode_rows(rows: Iterable[tuple[Any, ...]]) -> list[e.Recorded]:
    """A page of journal rows as `Recorded` events (`decode_row` of each, locals bound once)."""
    out: list[e.Recorded] = []
    append = out.append
    decode = _decoder.decode
    recorded = e.Recorded
    versions = VERSIONS
    classes = _CLASSES
    epoch = _EPOCH
    for seq, tag, version, payload, actor, command_id, at in rows:
        cls = classes.get(tag)
        if cls is None or version != versions[tag]:
            append(decode_row(seq, tag, version, payload, actor, command_id, at))
            continue
        try:
            event: e.Event = decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise CorruptJournal(seq, str(exc)) from exc
        if event.__class__ is not cls:
            raise CorruptJournal(seq, f"payload type {e.tag_of(event)!r} under tag {tag!r}")
        append(
            recorded(
                seq=seq,
                at=epoch + timedelta(0, at // 1_000_000, at % 1_000_000),
                actor=actor,
                event=event,
                command_id=command_id,
            )
        )
    return out


class PackedMessage(msgspec.Struct, array_like=True, frozen=True, gc=False, tag="m"):
    """A message_sent row of a packed replay page (see `Journal.packed_pages`). `event` is the
    payload decoded when it has the current version, else still its JSON text."""

    seq: int
    at: int
    version: int
    event: e.MessageSent | str


class PackedEvent(msgspec.Struct, array_like=True, frozen=True, gc=False, tag="e"):
    """Any other row of a packed replay page; `event` as in `PackedMessage`."""

    seq: int
    tag: str
    version: int
    at: int
    actor: str
    command_id: str | None
    event: e.Event | str


_packed_decoder = msgspec.json.Decoder(list[PackedMessage | PackedEvent])


def decode_packed(body: bytes) -> list[PackedMessage | PackedEvent] | None:
    """A packed page's rows, or None if it does not decode as a whole (a corrupt row, or a
    value of an unexpected type): the caller then reads the page row by row, which names it.
    """
    try:
        return _packed_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def decode_row(
    seq: int,
    tag: str,
    version: int,
    payload: bytes | str,
    actor: str,
    command_id: str | None,
    recorded_at: int,
) -> e.Recorded:
    """A journal row as a `Recorded` event."""
    return e.Recorded(
        seq=seq,
        at=from_micros(recorded_at),
        actor=actor,
        event=decode_event(seq, tag, version, payload),
        command_id=command_id,
    )
