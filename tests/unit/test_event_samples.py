"""Frozen samples of every stored event form decode with today's code; upcasters chain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chat_core.domain import codec
from chat_core.domain import events as e
from chat_core.errors import CorruptJournal

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "events"
SAMPLE_FILES = sorted(SAMPLES.glob("*.json"))


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_every_current_event_tag_has_a_frozen_sample_of_its_current_version():
    present = {path.name for path in SAMPLE_FILES}
    missing = {
        f"{tag}.v{version}.json"
        for tag, version in codec.VERSIONS.items()
        if f"{tag}.v{version}.json" not in present
    }
    assert missing == set()


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_a_frozen_sample_names_its_tag_and_version(path):
    sample = _load(path)
    assert path.name == f"{sample['tag']}.v{sample['version']}.json"
    assert sample["payload"]["type"] == sample["tag"]


@pytest.mark.parametrize(
    "path", [p for p in SAMPLE_FILES if ".v0." not in p.name], ids=lambda p: p.name
)
def test_every_current_sample_decodes_and_re_encodes_to_the_same_payload(path):
    sample = _load(path)
    payload = json.dumps(sample["payload"])
    event = codec.decode_event(1, sample["tag"], sample["version"], payload)
    assert e.tag_of(event) == sample["tag"]
    assert json.loads(codec.encode_event(event)) == sample["payload"]


def _user_left_v0_to_v1(payload: dict) -> dict:
    """The fake upcaster: v0 called the user `user` and had no reason."""
    lifted = {k: v for k, v in payload.items() if k != "user"}
    return {**lifted, "username": payload["user"], "reason": "left"}


def test_an_upcaster_lifts_an_old_sample_to_the_current_event(monkeypatch):
    monkeypatch.setitem(codec.UPCASTERS, ("user_left", 0), _user_left_v0_to_v1)
    sample = _load(SAMPLES / "user_left.v0.json")
    event = codec.decode_event(3, sample["tag"], sample["version"], json.dumps(sample["payload"]))
    assert event == e.UserLeft(room_id="general", username="Alice", reason="left")


def test_upcasters_chain_one_version_at_a_time(monkeypatch):
    # Pretend user_left is at version 3: v0 -> v1 -> v2 -> v3, each step applied once, in order.
    steps: list[int] = []

    def step(version: int):
        def lift(payload: dict) -> dict:
            steps.append(version)
            return payload

        return lift

    monkeypatch.setitem(codec.VERSIONS, "user_left", 3)
    monkeypatch.setitem(codec.UPCASTERS, ("user_left", 0), _user_left_v0_to_v1)
    monkeypatch.setitem(codec.UPCASTERS, ("user_left", 1), step(1))
    monkeypatch.setitem(codec.UPCASTERS, ("user_left", 2), step(2))
    sample = _load(SAMPLES / "user_left.v0.json")
    event = codec.decode_event(3, "user_left", 0, json.dumps(sample["payload"]))
    assert steps == [1, 2]
    assert event == e.UserLeft(room_id="general", username="Alice", reason="left")


def test_the_fake_upcasters_are_gone_after_the_tests_that_added_them():
    assert ("user_left", 0) not in codec.UPCASTERS
    assert codec.VERSIONS["user_left"] == 1


def test_an_old_version_without_an_upcaster_is_a_corrupt_row():
    sample = _load(SAMPLES / "user_left.v0.json")
    with pytest.raises(CorruptJournal) as info:
        codec.decode_event(9, "user_left", 0, json.dumps(sample["payload"]))
    assert info.value.seq == 9
    assert "no upcaster" in str(info.value)
