"""Every event survives encode/decode through the journal codec, and so does its time."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat_core.domain import codec
from chat_core.domain import events as e

UTC_TIMES = st.datetimes(
    min_value=datetime(1970, 1, 1),  # noqa: DTZ001 (hypothesis takes naive bounds)
    max_value=datetime(2200, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)


def _strategy(cls: type) -> st.SearchStrategy:
    # Datetime fields must be timezone-aware UTC (docs/protocol.md); the rest come from the types.
    overrides = {
        field.name: st.none() | UTC_TIMES
        for field in msgspec.structs.fields(cls)
        if "datetime" in str(field.type)
    }
    return st.builds(cls, **overrides)


EVENTS = st.one_of([_strategy(cls) for cls in e.EVENT_TYPES])


@pytest.mark.parametrize("cls", e.EVENT_TYPES, ids=lambda cls: cls.__name__)
@settings(max_examples=25)
@given(data=st.data())
def test_each_event_type_round_trips_through_the_codec(cls, data):
    event = data.draw(_strategy(cls))
    tag = e.tag_of(event)
    payload = codec.encode_event(event)
    decoded = codec.decode_event(1, tag, codec.VERSIONS[tag], payload)
    assert decoded == event
    assert type(decoded) is cls
    # Decoding also works from the text column (the journal stores str).
    assert codec.decode_event(1, tag, codec.VERSIONS[tag], payload.decode()) == event


@settings(max_examples=100)
@given(event=EVENTS, seq=st.integers(1, 2**53), at=UTC_TIMES, actor=st.text(max_size=10))
def test_a_journal_row_decodes_to_the_recorded_event(event, seq, at, actor):
    tag = e.tag_of(event)
    row = (
        seq,
        tag,
        codec.VERSIONS[tag],
        codec.encode_event(event),
        actor,
        None,
        codec.to_micros(at),
    )
    assert codec.decode_row(*row) == e.Recorded(seq=seq, at=at, actor=actor, event=event)


@given(at=UTC_TIMES)
def test_recorded_times_round_trip_to_the_microsecond(at):
    assert codec.from_micros(codec.to_micros(at)) == at


def test_every_event_type_has_a_current_version():
    assert set(codec.VERSIONS) == {cls.__struct_config__.tag for cls in e.EVENT_TYPES}
