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
PURE = {"urls", "scope", "parser", "extract", "addresses", "sitemaps", "printable", "pace", "host_queue", "content_types",
        "references", "css_refs"}
IO_MODULES = {"asyncio", "aiosqlite", "sqlite3", "httpx2", "aiohttp", "socket", "subprocess", "logging"}


def imports_in(source: str, package: str = "crawler") -> tuple[set[str], set[str]]:
    """(first-level crawler names, other top-level modules) that ``source`` imports at run time.

    ``package`` is the dotted package the source sits in, for relative imports. Every name of a
    ``from`` import counts: ``from crawler import config, scheduler`` is config and scheduler, and
    ``crawler.storage.read`` counts as ``storage``.
    """
    tree = ast.parse(source)
    ours: set[str] = set()
    theirs: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            node.body = []  # imports for annotations only do not count
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            here = package.split(".")
            base = here[: len(here) - node.level + 1] if node.level else []  # from . / from .. import
            base += node.module.split(".") if node.module else []
            names = [".".join([*base, alias.name]) for alias in node.names]
        for name in names:
            if name.startswith("crawler."):
                ours.add(name.split(".")[1])
            elif name.split(".")[0] != "__future__":
                theirs.add(name.split(".")[0])
    return ours - {"__init__"}, theirs


def imports_of(module: str, package: Path = PACKAGE) -> tuple[set[str], set[str]]:
    """``imports_in`` of a module named relative to the package (``cli``, ``storage.read``,
    ``storage/read``; a subpackage's name means its ``__init__``). Imports within the module's own
    first-level subpackage do not count: ``storage.read`` importing ``storage.db`` is no dependency."""
    parts = module.removesuffix(".py").replace("/", ".").split(".")
    path = package.joinpath(*parts).with_suffix(".py")
    if path.exists():
        inside = ".".join([package.name, *parts[:-1]])
    else:
        path = package.joinpath(*parts, "__init__.py")
        inside = ".".join([package.name, *parts])
    ours, theirs = imports_in(path.read_text(encoding="utf-8"), inside)
    return ours - {parts[0]}, theirs


def modules(package: Path = PACKAGE) -> list[str]:
    """Every module as ``imports_of`` names it, subpackages included: ``cli``, ``storage``, ``storage.read``."""
    found = []
    for path in package.rglob("*.py"):
        parts = path.relative_to(package).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts and parts != ("__main__",):
            found.append(".".join(parts))
    return sorted(found)


def test_imports_in_reads_every_name_of_a_from_import() -> None:
    assert imports_in("from crawler import config, scheduler\n") == ({"config", "scheduler"}, set())


def test_imports_in_reads_subpackages_relative_imports_and_skips_type_checking() -> None:
    source = """
import os.path
from crawler.storage.read import pages
import crawler.frontier.sqlite
from . import db
from ..urls import canonicalize
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from crawler.scheduler import Crawl
"""
    assert imports_in(source, "crawler.storage") == ({"storage", "frontier", "urls"}, {"os", "typing"})


def test_modules_and_imports_of_see_subpackages(tmp_path: Path) -> None:
    package = tmp_path / "crawler"
    (package / "storage").mkdir(parents=True)
    files = {"__init__.py": "", "__main__.py": "from crawler import cli\n", "cli.py": "from crawler import scheduler\n",
             "storage/__init__.py": "from .read import pages\n",
             "storage/read.py": "from crawler.storage import db\nfrom crawler import models, urls\n"}
    for name, text in files.items():
        (package / name).write_text(text, encoding="utf-8")
    assert modules(package) == ["cli", "storage", "storage.read"]
    assert imports_of("cli", package)[0] == {"scheduler"}
    assert imports_of("storage", package)[0] == set()
    assert imports_of("storage/read", package)[0] == imports_of("storage.read", package)[0] == {"models", "urls"}


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


def test_only_the_crawl_command_and_bench_import_the_scheduler() -> None:
    importers = {m for m in modules() if "scheduler" in imports_of(m)[0]}
    assert importers <= {"crawl_command", "bench"}, importers


def test_no_stage_imports_the_cli() -> None:
    assert not [m for m in modules() if "cli" in imports_of(m)[0]]


def test_sql_lives_in_storage_and_the_sqlite_frontier_only() -> None:
    speaking_sql = {m for m in modules() if imports_of(m)[1] & {"sqlite3", "aiosqlite"}}
    assert speaking_sql, "no module imports sqlite3: this test no longer sees anything"
    assert {m for m in speaking_sql if not m.startswith("storage.") and m != "frontier.sqlite"} == set(), speaking_sql


def test_storage_and_the_frontier_know_nothing_of_the_stages_around_them() -> None:
    allowed = FOUNDATIONS | {"extract", "storage", "frontier"}
    for module in [m for m in modules() if m.split(".")[0] in ("storage", "frontier")]:
        assert imports_of(module)[0] <= allowed, f"{module} imports {imports_of(module)[0] - allowed}"
    assert imports_of("frontier")[0] <= FOUNDATIONS   # the protocol: plain values only


def test_export_reads_through_storage_only() -> None:
    # and writes through output, the destination (--out) apart from the formats, as Scrapy keeps them;
    # the pure stages' functions (no I/O) read a stored body as the crawl read it (text, markdown)
    for module in [m for m in modules() if m.split(".")[0] == "export"]:
        ours, theirs = imports_of(module)
        assert ours <= FOUNDATIONS | PURE | {"storage", "output"}, f"{module} imports {ours}"
        assert not theirs & {"sqlite3", "aiosqlite"}, module


def test_the_clock_is_a_foundation() -> None:
    assert imports_of("clock")[0] == set()


def test_no_module_is_past_400_lines_and_no_class_past_250() -> None:
    # A long module or class is two concerns fused: split it by concern before it grows past these.
    long_modules, long_classes = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        name = str(path.relative_to(PACKAGE))
        if source.count("\n") > 400:
            long_modules.append((name, source.count("\n")))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ClassDef) and (node.end_lineno or 0) - node.lineno + 1 > 250:
                long_classes.append((f"{name}:{node.name}", (node.end_lineno or 0) - node.lineno + 1))
    assert not long_modules, long_modules
    assert not long_classes, long_classes


def test_extraction_reads_pages_as_the_parser_does_and_knows_no_stage_around_it() -> None:
    # Pure but for reading its rules file and importing the user's plugin, which happen before the
    # first request; what runs on each page imports the foundations, urls and itself only.
    for module in ("extraction.rules", "extraction.fields", "extraction.plugin", "extraction.check"):
        ours, theirs = imports_of(module)
        assert not theirs & IO_MODULES, f"{module} imports {theirs & IO_MODULES}"
        assert ours <= FOUNDATIONS | {"urls"}, f"{module} imports {ours - FOUNDATIONS - {'urls'}}"
    assert "extraction" not in imports_of("parser")[0]   # the parser hands its tree over, it calls nothing
    # The one step the crawl and ``crawler extract --db`` share reads a stored body as the parser does.
    ours, theirs = imports_of("extraction.apply")
    assert not theirs & IO_MODULES, f"extraction.apply imports {theirs & IO_MODULES}"
    assert ours <= FOUNDATIONS | {"urls", "parser"}, f"extraction.apply imports {ours - FOUNDATIONS - {'urls', 'parser'}}"
