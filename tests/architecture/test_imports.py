"""Import rules of docs/architecture.md section 2, checked on the source (AST), lazy imports too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FRAMEWORKS = {"litestar", "uvicorn", "typer", "websockets", "httpx", "rich", "prompt_toolkit"}
PURE_MODULES = ("commands", "events", "state", "decider", "evolve", "audience", "codec", "rules")
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


def test_the_packages_exist():
    assert CORE and (ROOT / "migrations" / "env.py").exists()
    assert all((ROOT / "chat_core" / f"{name}.py").exists() for name in PURE_MODULES)


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
    core = {name for name in imports if name.startswith("chat_core.") and name.count(".") == 1}
    settings = {"chat_core.settings", "chat_core.settings_sources"}
    assert core <= {"chat_core.tables", "chat_core.paths", *settings}
    assert "chat_core.tables" in core
    assert _top(imports) & (FRAMEWORKS | {"chat_web", "chat_cli"}) == set()


@pytest.mark.parametrize("path", sorted((ROOT / "migrations" / "versions").glob("*.py")), ids=str)
def test_migration_versions_do_not_depend_on_the_current_code(path):
    # A migration is frozen history: it must not change when chat_core does.
    assert _top(_imports(path)) & {"chat_core", "chat_web", "chat_cli"} == set()


# The journal stores and reads events; what they mean (the fold, the projection) is not its
# business, so a second implementation of the port needs none of it either.
JOURNAL_NAMES = ("journal_port", "journal", "journal_sql", "memory_journal")
# (journal_check is not the journal: it runs the start-up fold and checks what it folded.)
JOURNAL_MODULES = [ROOT / "chat_core" / f"{name}.py" for name in JOURNAL_NAMES]


@pytest.mark.parametrize("path", JOURNAL_MODULES, ids=_ids(JOURNAL_MODULES))
def test_the_journal_imports_nothing_from_evolve_or_state(path):
    imports = _imports(path)
    assert imports & {"chat_core.evolve", "chat_core.state"} == set()
    # `from chat_core import state` names the module as an alias, not a dotted import.
    aliased = {
        alias.name
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module == "chat_core"
        for alias in node.names
    }
    assert aliased & {"evolve", "state"} == set()


def test_the_journal_rule_covers_the_journal():
    assert all(path.exists() for path in JOURNAL_MODULES)


@pytest.mark.parametrize("name", PURE_MODULES)
def test_pure_modules_import_no_clock_randomness_io_or_event_loop(name):
    path = ROOT / "chat_core" / f"{name}.py"
    imports = _imports(path)
    assert _top(imports) & IMPURE_MODULES == set()
    core_imports = {n.split(".")[1] for n in imports if n.startswith("chat_core.")}
    core_imports |= {
        alias.name
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module == "chat_core"
        for alias in node.names
    }
    # Pure modules build only on other pure modules.
    assert core_imports <= {*PURE_MODULES, "errors"}, core_imports


@pytest.mark.parametrize("name", PURE_MODULES)
def test_pure_modules_read_no_clock(name):
    tree = ast.parse((ROOT / "chat_core" / f"{name}.py").read_text())
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
