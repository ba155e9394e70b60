"""The text rule (chat_core.domain.rules.check_text): no control characters, not blank, bounded."""

from __future__ import annotations

import pytest

from chat_core.domain.rules import check_plain, check_text, is_blank
from chat_core.errors import InvalidParams

C0 = [chr(c) for c in range(0x20) if chr(c) not in "\n\t"]
C1 = [chr(c) for c in range(0x80, 0xA0)]
CONTROLS = [*C0, "\x7f", *C1]
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e", "\u3164"]


def refused(text: str, reason: str, field: str = "text") -> None:
    with pytest.raises(InvalidParams) as caught:
        check_text(text, 1000, field)
    assert (caught.value.reason, caught.value.data) == (reason, {"field": field})


@pytest.mark.parametrize("char", CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
def test_every_c0_c1_and_del_control_is_refused_inside_text(char):
    refused(f"hello {char} world", "invalid_text")


def test_the_forged_line_and_clipboard_sequences_are_refused():
    refused("\x1b[2K\r<admin> forged", "invalid_text")
    refused("\x1b]52;c;aGVsbG8=\x07", "invalid_text")


def test_newline_and_tab_are_allowed():
    check_text("line one\n\tline two", 1000, "text")


@pytest.mark.parametrize("text", [*INVISIBLE, "\u200b\u200b \u200d\n\ufeff", "\u200e\u2063"])
def test_text_of_only_invisible_characters_is_empty(text):
    assert is_blank(text)
    refused(text, "empty_message")


def test_mixed_text_with_emoji_and_joiners_passes():
    # A family emoji is held together by U+200D; a flag by regional indicators.
    check_text("héllo 👨\u200d👩\u200d👧 🇫🇷 ok\u200b", 1000, "text")
    assert not is_blank("\u200ba")


def test_the_field_names_the_param_at_fault():
    refused("\x00", "invalid_text", field="display_name")
    refused("\u200b", "empty_message", field="message")
    with pytest.raises(InvalidParams) as caught:
        check_text("x" * 11, 10, "message")
    assert (caught.value.reason, caught.value.data) == ("message_too_long", {"field": "message"})


def test_check_plain_allows_blank_text_but_not_controls():
    check_plain("", "reason")
    check_plain("\u200b", "reason")
    with pytest.raises(InvalidParams) as caught:
        check_plain("spam\x9b", "reason")
    assert caught.value.data == {"field": "reason"}
