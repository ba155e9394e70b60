"""One wire vocabulary: the handler table, the catalogue and docs/protocol.md agree."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import msgspec
import pytest

from chat_core.protocol.catalogue import METHODS, NOTIFICATIONS, PARAMS, errors_of
from chat_core.protocol.codes import Close
from chat_core.protocol.rpc import METHODS as PARSED_METHODS
from chat_web.methods import HANDLERS

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def _section(number: int) -> str:
    text = PROTOCOL.read_text(encoding="utf-8")
    start = text.index(f"\n## {number}. ")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def _table(section: str, header: str) -> list[list[str]]:
    """The rows (cells) of the markdown table whose first header cell is `header`."""
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _names(rows: list[list[str]]) -> list[str]:
    """The backquoted names of each row's first cell (`a` / `b` is two names)."""
    return [name for row in rows for name in re.findall(r"`([a-z_]+)`", row[0])]


def _fields(cell: str) -> set[str]:
    """The field names listed in a params or result cell, before any parenthesis."""
    cell = re.sub(r"\([^)]*\)", "", cell)
    return set(re.findall(r"[a-z][a-z_]+", cell.replace("`", " "))) - {"none", "true"}


def _frozen_and_keyword_only(struct: type[msgspec.Struct]) -> bool:
    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = inspect.signature(struct).parameters.values()
    return struct.__struct_config__.frozen and all(p.kind == keyword for p in parameters)


DOC_METHODS = _table(_section(4), "Method")
DOC_NOTIFICATIONS = _table(_section(5), "Notification")


def test_handlers_catalogue_parser_and_protocol_document_name_the_same_methods() -> None:
    documented = _names(DOC_METHODS)
    assert len(documented) == len(set(documented))
    assert set(HANDLERS) == set(METHODS) == set(PARAMS) == set(PARSED_METHODS) == set(documented)


def test_catalogue_and_protocol_document_name_the_same_notifications() -> None:
    documented = _names(DOC_NOTIFICATIONS)
    assert len(documented) == len(set(documented))
    assert set(NOTIFICATIONS) == set(documented)


@pytest.mark.parametrize("row", DOC_METHODS, ids=lambda row: row[0])
def test_each_documented_method_has_the_catalogue_params_and_result_fields(
    row: list[str],
) -> None:
    for name in re.findall(r"`([a-z_]+)`", row[0]):
        method = METHODS[name]
        assert _fields(row[1]) == set(method.params.__struct_fields__), name
        # A result cell lists its top-level fields first; nested ones are inside `[...]`.
        top = re.sub(r"\[[^\]]*\]", "", row[2])
        assert _fields(top) == set(method.result.__struct_fields__), name


@pytest.mark.parametrize("row", DOC_NOTIFICATIONS, ids=lambda row: row[0])
def test_each_documented_notification_has_the_catalogue_params_fields(row: list[str]) -> None:
    for name in re.findall(r"`([a-z_]+)`", row[0]):
        # Words after the list's parenthesised remarks are prose, not fields.
        assert _fields(row[1].split(" (no seq)")[0]) == set(
            NOTIFICATIONS[name].params.__struct_fields__
        ), name


def test_close_codes_are_the_documented_ones() -> None:
    rows = _table(_section(2), "Code")
    documented = {int(code) for row in rows for code in re.findall(r"\d{4}", row[0])}
    assert documented == {int(code) for code in Close}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_catalogue_structs_are_frozen_and_keyword_only(name: str) -> None:
    method = METHODS[name]
    for struct in (method.params, method.result):
        assert _frozen_and_keyword_only(struct), struct
    codes = [kind.code for kind in errors_of(method)]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize("name", sorted(NOTIFICATIONS))
def test_notification_structs_are_frozen_and_keyword_only(name: str) -> None:
    assert _frozen_and_keyword_only(NOTIFICATIONS[name].params)
