"""chat_cli talks to the server over the wire only: it never imports chat_web."""

from __future__ import annotations

import ast
from pathlib import Path

import chat_cli


def test_chat_cli_never_imports_chat_web() -> None:
    offenders = []
    for path in Path(chat_cli.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "chat_web"]
    assert offenders == []
