"""The folder listing is the architecture: imports point one way (STYLE.md, practice 3).

models, errors and urls import nothing of the package; the pure stages (urls, scope, parser,
extract) do no I/O; only the scheduler wires stages together, and only the CLI (and the bench,
which is a CLI command) imports the scheduler.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "crawler"
FOUNDATIONS = {"models", "errors"}
PURE = {"urls", "scope", "parser", "extract"}
IO_MODULES = {"asyncio", "aiosqlite", "sqlite3", "httpx2", "aiohttp", "socket", "subprocess", "logging"}


def imports_of(module: str) -> tuple[set[str], set[str]]:
    """(crawler modules, other top-level modules) imported at run time by crawler/<module>.py."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    ours: set[str] = set()
    theirs: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            node.body = []  # imports for annotations only do not count
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module + ("." + node.names[0].name if node.module == "crawler" else "")]
        for name in names:
            if name.startswith("crawler."):
                ours.add(name.split(".")[1])
            elif name != "__future__":
                theirs.add(name.split(".")[0])
    return ours - {"__init__"}, theirs


def modules() -> list[str]:
    return sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))


def test_foundations_import_nothing_of_the_package() -> None:
    for module in sorted(FOUNDATIONS):
        assert imports_of(module)[0] <= {"__version__"}, module


def test_urls_imports_only_the_foundations() -> None:
    assert imports_of("urls")[0] <= FOUNDATIONS


def test_pure_stages_do_no_io() -> None:
    for module in sorted(PURE):
        ours, theirs = imports_of(module)
        assert not theirs & IO_MODULES, f"{module} imports {theirs & IO_MODULES}"
        assert not ours - PURE - FOUNDATIONS, f"{module} imports {ours - PURE - FOUNDATIONS}"


def test_only_the_cli_and_bench_import_the_scheduler() -> None:
    importers = {m for m in modules() if "scheduler" in imports_of(m)[0]}
    assert importers <= {"cli", "bench", "progress"}, importers


def test_no_stage_imports_the_cli() -> None:
    assert not [m for m in modules() if "cli" in imports_of(m)[0]]
