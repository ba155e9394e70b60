"""Usage errors that help: a misspelt option gets "Did you mean --username?".

Click's parser already finds the close matches, but the copy typer ships lists them as
"(Possible options: ...)" even when there is one. The group below rewrites that error into
one suggestion, the closest (difflib orders them best first). `chat_cli/usage.py` holds the
same class: the two packages never import each other (docs/architecture.md section 2).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import typer
from typer.core import TyperGroup


@contextlib.contextmanager
def _suggesting() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        # Duck-typed: the class lives in a private module of typer (or in click, by version).
        possibilities = getattr(exc, "possibilities", None)
        if type(exc).__name__ == "NoSuchOption" and possibilities:
            message = str(getattr(exc, "message", "")).rstrip(".")
            exc.message = f"{message}. Did you mean {possibilities[0]}?"  # type: ignore[attr-defined]
            exc.possibilities = None  # type: ignore[attr-defined]
        raise


class SuggestingGroup(TyperGroup):
    """A typer group whose unknown-option errors suggest the closest option."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        with _suggesting():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: Any) -> Any:
        # Subcommands parse their options inside the group's invoke.
        with _suggesting():
            return super().invoke(ctx)


def suggesting_app(**options: Any) -> typer.Typer:
    """A `typer.Typer` with this group (sub-apps added to it are covered too)."""
    return typer.Typer(cls=SuggestingGroup, **options)
