"""chat_cli.visible: what reaches the terminal holds no control character from the network."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from rich.text import Text

from chat_cli.visible import CONTINUATION, visible, visible_json, visible_text

ANY_TEXT = st.text(st.characters(exclude_categories=["Cs"]) | st.sampled_from("\x1b\r\n\t\x9b"))


def _controls(text: str) -> list[str]:
    return [ch for ch in text if (ord(ch) < 0x20 and ch != "\n") or 0x7F <= ord(ch) <= 0x9F]


def test_controls_are_shown_as_hex_escapes():
    assert visible("\x1b[2K\r<admin> forged") == "\\x1b[2K\\x0d<admin> forged"
    assert visible("a\x00b\x7fc\x85d\x9b") == "a\\x00b\\x7fc\\x85d\\x9b"


def test_a_newline_starts_an_indented_continuation_and_a_tab_is_spaces():
    assert visible("one\n<admin> two\tthree") == f"one\n{CONTINUATION}<admin> two    three"


def test_plain_text_is_returned_as_it_is():
    text = "héllo 👨\u200d👩\u200d👧 [red]not markup[/red]"
    assert visible(text) is text


@given(ANY_TEXT)
def test_visible_output_holds_no_control_and_no_line_starts_at_column_zero(text):
    shown = visible(text)
    assert _controls(shown) == []
    assert all(line.startswith(CONTINUATION) for line in shown.split("\n")[1:])


@given(ANY_TEXT)
def test_visible_json_is_the_same_json_without_del_or_c1(text):
    document = json.dumps({"text": text}, ensure_ascii=False)
    safe = visible_json(document)
    assert json.loads(safe) == {"text": text}
    assert not any(0x7F <= ord(ch) <= 0x9F for ch in safe)


def test_visible_text_escapes_a_rich_line_and_keeps_its_styles():
    line = Text("12:00 ", style="dim")
    line.append("<bob>", style="cyan")
    line.append(" hi\x1b[2J there", style="bold")
    shown = visible_text(line)
    assert shown.plain == "12:00 <bob> hi\\x1b[2J there"
    assert shown.style == "dim"
    spans = {(shown.plain[s.start : s.end], str(s.style)) for s in shown.spans}
    assert spans == {("<bob>", "cyan"), (" hi\\x1b[2J there", "bold")}
    clean = Text("no controls")
    assert visible_text(clean) is clean
