"""Import rules of docs/architecture.md section 2, checked on the source (AST), lazy imports too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FRAMEWORKS = {
    "litestar", "uvicorn", "typer", "websockets", "httpx", "rich", "prompt_toolkit",
    "prometheus_client",
}  # fmt: skip
# The floors of chat_core, and the floors each may build on: what a message's text passes
# through goes down them (wire -> domain, domain -> journal) and never climbs back.
FLOORS: dict[str, set[str]] = {
    "domain": {"domain"},
    "protocol": {"domain", "protocol"},
    "settings": {"domain", "settings"},
    "journal": {"domain", "journal", "settings"},
}
# Pure floors: no I/O, no clock, no randomness; a decision replays exactly.
PURE_FLOORS = ("domain", "protocol")
# What a pure module may not import: clocks, randomness, the OS, I/O and the event loop.
IMPURE_MODULES = {
    "time", "random", "os", "asyncio", "sqlalchemy", "aiosqlite", "uuid", "secrets",
    "socket", "subprocess", "logging", "sqlite3", "pathlib", "threading", "io",
}  # fmt: skip
IMPURE_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter", "urandom"}


def _python_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (top-level names and full dotted names)."""
    return _imports_in(path.read_text(encoding="utf-8"))


def _imports_in(source: str) -> set[str]:
    tree = ast.parse(source)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            found.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return found


def _top(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def _ids(paths: list[Path]) -> list[str]:
    return [str(path.relative_to(ROOT)) for path in paths]


CORE = _python_files("chat_core")
WEB = _python_files("chat_web")
CLI = _python_files("chat_cli")


def _floor_modules(*floors: str) -> list[Path]:
    return [p for f in floors for p in _python_files(f"chat_core/{f}") if p.name != "__init__.py"]


PURE = _floor_modules(*PURE_FLOORS)


def _core_floors(path: Path) -> set[str]:
    """The chat_core floors (sub-packages) and top-level modules a file imports."""
    return {name.split(".")[1] for name in _imports(path) if name.startswith("chat_core.")}


def test_the_packages_exist():
    assert CORE and (ROOT / "migrations" / "env.py").exists()
    assert all((ROOT / "chat_core" / floor / "__init__.py").exists() for floor in FLOORS)
    assert {p.stem for p in PURE} >= {"commands", "events", "state", "decider", "evolve", "rpc"}


@pytest.mark.parametrize("path", CORE, ids=_ids(CORE))
def test_chat_core_imports_no_web_or_cli_framework(path):
    assert _top(_imports(path)) & (FRAMEWORKS | {"chat_web", "chat_cli"}) == set()


@pytest.mark.parametrize("path", WEB, ids=_ids(WEB))
def test_chat_web_never_imports_chat_cli(path):
    assert "chat_cli" not in _top(_imports(path))


@pytest.mark.parametrize("path", CLI, ids=_ids(CLI))
def test_chat_cli_never_imports_chat_web(path):
    assert "chat_web" not in _top(_imports(path))


def test_the_migration_environment_imports_only_tables_settings_and_paths_of_the_core():
    imports = _imports(ROOT / "migrations" / "env.py")
    core = {name for name in imports if name.startswith("chat_core.") and name.count(".") == 2}
    settings = {"chat_core.settings.schema", "chat_core.settings.sources"}
    assert core <= {"chat_core.journal.tables", "chat_core.settings.paths", *settings}
    assert "chat_core.journal.tables" in core
    assert _top(imports) & (FRAMEWORKS | {"chat_web", "chat_cli"}) == set()


@pytest.mark.parametrize("path", sorted((ROOT / "migrations" / "versions").glob("*.py")), ids=str)
def test_migration_versions_do_not_depend_on_the_current_code(path):
    # A migration is frozen history: it must not change when chat_core does.
    assert _top(_imports(path)) & {"chat_core", "chat_web", "chat_cli"} == set()


@pytest.mark.parametrize("floor", sorted(FLOORS))
def test_each_floor_builds_only_on_the_floors_below_it(floor):
    for path in _floor_modules(floor):
        # `errors` is the one module every floor shares.
        assert _core_floors(path) - {"errors"} <= FLOORS[floor], path


# The journal stores and reads events; what they mean (the fold, the projection) is not its
# business, so a second implementation of the port needs none of it either. (journal.check and
# journal.replay are not the store: they run the start-up fold.)
JOURNAL_MODULES = [
    ROOT / "chat_core" / "journal" / f"{n}.py"
    for n in ("port", "sqlite", "sql", "memory", "postgres", "pg_sql", "pages", "open")
]


@pytest.mark.parametrize("path", JOURNAL_MODULES, ids=_ids(JOURNAL_MODULES))
def test_the_journal_imports_nothing_from_evolve_or_state(path):
    imports = _imports(path)
    assert imports & {"chat_core.domain.evolve", "chat_core.domain.state"} == set()


def test_the_journal_rule_covers_the_journal():
    assert all(path.exists() for path in JOURNAL_MODULES)


@pytest.mark.parametrize("path", PURE, ids=_ids(PURE))
def test_pure_modules_import_no_clock_randomness_io_or_event_loop(path):
    assert _top(_imports(path)) & IMPURE_MODULES == set()


@pytest.mark.parametrize("path", PURE, ids=_ids(PURE))
def test_pure_modules_read_no_clock(path):
    tree = ast.parse(path.read_text())
    calls = {
        ast.unparse(node.func)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in IMPURE_CALLS
    }
    bare = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in IMPURE_CALLS | {"open", "input", "print"}
    }
    assert calls | bare == set()


def test_the_checker_sees_a_forbidden_import_and_a_clock():
    # The rules above must not pass vacuously.
    source = "import os\nfrom datetime import datetime\ndef f():\n    import litestar.app\n"
    tree = ast.parse(source + "x = datetime.now()\n")
    assert {"os", "litestar", "litestar.app", "datetime"} <= _imports_in(source)
    assert any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "now"
        for n in ast.walk(tree)
    )
