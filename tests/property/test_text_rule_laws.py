"""Hypothesis: the text rule against an independent statement of it, for any text."""

from __future__ import annotations

import unicodedata

from hypothesis import assume, given
from hypothesis import strategies as st

from chat_core.domain.rules import check_text
from chat_core.errors import InvalidParams

# Every character hypothesis can draw, controls and format characters included; plus the
# characters the rule is about, so they are common rather than rare.
ANY_CHAR = st.characters(exclude_categories=["Cs"]) | st.sampled_from(
    "\x00\x1b\x07\r\n\t\x7f\x85\x9b \u200b\u200d\u2060\ufeff\u3164a😀"
)
TEXTS = st.text(ANY_CHAR, max_size=30)


def _control(char: str) -> bool:
    point = ord(char)
    return char not in "\n\t" and (point < 0x20 or 0x7F <= point <= 0x9F)


def _shows_something(text: str) -> bool:
    # Weaker than the rule (which also drops other default-ignorables): used one way only.
    return any(not ch.isspace() and unicodedata.category(ch) != "Cf" for ch in text)


def _outcome(text: str, max_length: int) -> str:
    try:
        check_text(text, max_length, "text")
    except InvalidParams as exc:
        assert exc.data == {"field": "text"}
        return exc.reason
    return "ok"


@given(TEXTS, st.integers(1, 40))
def test_a_text_with_a_control_character_is_always_invalid_text(text, max_length):
    if any(_control(ch) for ch in text):
        assert _outcome(text, max_length) == "invalid_text"


@given(TEXTS, st.integers(1, 40))
def test_an_accepted_text_is_control_free_visible_and_within_its_length(text, max_length):
    if _outcome(text, max_length) == "ok":
        assert not any(_control(ch) for ch in text)
        assert _shows_something(text)
        assert len(text) <= max_length


@given(TEXTS)
def test_invisible_characters_never_make_a_blank_text_visible(text):
    invisible = "".join(ch for ch in text if ch.isspace() or unicodedata.category(ch) == "Cf")
    invisible = "".join(ch for ch in invisible if not _control(ch))
    assert _outcome(invisible + "\u200b", 100) == "empty_message"


@given(st.text(st.characters(categories=["L", "N", "P", "S"]), min_size=1, max_size=30), TEXTS)
def test_visible_text_with_format_characters_mixed_in_passes(visible, noise):
    shown = "".join(ch for ch in visible if ch.isprintable() and not ch.isspace())
    # The blank look-alikes the rule names (braille blank, Hangul fillers) are not visible.
    assume(shown.strip("\u2800\u3164\uffa0"))
    mixed = shown + "".join(ch for ch in noise if unicodedata.category(ch) == "Cf")
    assert _outcome(mixed, 100) == "ok"
