"""``crawler extract --db JOB --rules FILE``: fixed rules run again over every body a job stored, with
no request; the same rules give the crawl's own values; a killed run leaves the previous ones."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from site_server import Site, html, reply

from crawler.storage.jobfile import JobLock
from crawler.storage.read import JobReader

PAGES = 12
# Where a subprocess finds the tests' plugins (and the code under test, where PYTHONPATH names it).
PLUGIN_PATH = os.pathsep.join(p for p in (str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")) if p)

# The first try: the heading is read from the wrong element and the price keeps its currency.
RULES_A = r"""
[[page]]
name = "product"
match = "/p/"
[page.fields]
heading = "h2"
price   = { css = ".price", type = "float", required = true }
"""

# Fixed: the heading is the h1, the price a number out of its text; a list of links and a url.
RULES_B = r"""
[[page]]
name = "product"
match = "/p/"
[page.fields]
heading = "h1"
price   = { css = ".price", regex = '([\d.]+)', type = "float", required = true }
tags    = { css = "a.tag", many = true }
next    = { css = "a[rel=next]", attr = "href", type = "url" }
"""


def product(n: int) -> str:
    return (f"<html><head><title>Product {n}</title><meta property='og:title' content='Item {n}'>"
            f'<script type="application/ld+json">{{"@type": "Product", "sku": {n}}}</script></head><body><h1>Item {n}</h1>'
            f"<span class=price>EUR {n}.50</span><a class=tag href='/t/a'>a</a><a class=tag href='/t/b'>b</a>"
            f"<a rel=next href='/p/{n + 1}'>next</a></body></html>")


@pytest.fixture
def shop() -> Any:
    routes: dict[str, Any] = {"/": html("Shop", *(f"/p/{n}" for n in range(1, PAGES + 1)), "/p/boom")}
    routes |= {f"/p/{n}": reply(200, product(n), "text/html; charset=utf-8") for n in range(1, PAGES + 1)}
    routes["/p/boom"] = reply(200, product(99), "text/html")
    with Site(routes) as site:
        yield site


def crawl(cli: Any, tmp_path: Path, site: Site, rules: str, *args: object) -> Path:
    """A job of ``site`` crawled (in this process) with ``rules``."""
    path = tmp_path / f"rules-{len(list(tmp_path.glob('rules-*')))}.toml"
    path.write_text(rules, encoding="utf-8")
    db = tmp_path / "job.db"
    done = cli.in_process("crawl", site.url("/"), "--db", db, "--no-robots", "--workers", 1, "--max-depth", 1,
                          "--extract", path, *args)
    assert done.returncode == 0, done.stderr
    return db


def rules_file(tmp_path: Path, rules: str, name: str) -> Path:
    path = tmp_path / name
    path.write_text(rules, encoding="utf-8")
    return path


def extracted(cli: Any, db: Path) -> dict[str, Any]:
    """What the export says extraction made of each page: data, error and structured data, by path."""
    return {r["url"].split("/", 3)[3]: (r.get("data"), r.get("error"), r.get("jsonld"), r.get("opengraph"))
            for r in cli.export(db) if r.get("status") == 200}


def test_fixed_rules_run_over_a_stored_job_give_the_new_values_and_the_job_keeps_them(
        cli: Any, tmp_path: Path, shop: Site) -> None:
    db = crawl(cli, tmp_path, shop, RULES_A)
    before = extracted(cli, db)
    assert before["p/3"][:2] == ({"heading": None, "price": None}, "extract_missing")
    requests = sum(shop.counts().values())
    fixed = rules_file(tmp_path, RULES_B, "fixed.toml")
    done = cli.in_process("extract", "--db", db, "--rules", fixed, "--workers", 1)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""   # no progress line where stderr is no terminal
    assert done.stdout.startswith(f"extracted {PAGES + 2} pages in ")
    assert f"{PAGES + 1} with a page type, 0 extract_missing, 0 extract_failed" in done.stdout
    after = extracted(cli, db)
    assert after["p/3"] == ({"heading": "Item 3", "price": 3.5, "tags": ["a", "b"], "next": shop.url("/p/4")},
                            None, [{"@type": "Product", "sku": 3}], {"og:title": "Item 3"})
    assert after[""] == before[""]   # the home page: no page type applies, as before
    assert sum(shop.counts().values()) == requests   # not one request
    with JobReader(db) as job:   # the job's next crawl extracts with the fixed rules
        assert job.meta()["job_settings"]["extract"] == str(fixed.resolve())


def test_a_rerun_says_what_its_rules_matched_and_names_a_field_that_matched_nothing(
        cli: Any, tmp_path: Path, shop: Site) -> None:
    db = crawl(cli, tmp_path, shop, RULES_B)
    wrong = rules_file(tmp_path, RULES_B.replace('".price"', '".cost"'), "wrong.toml")
    done = cli.in_process("extract", "--db", db, "--rules", wrong, "--workers", 1)
    assert done.returncode == 0, done.stderr
    assert 'page type "product"' in done.stdout
    assert f'crawler: field "price" of page type "product" matched nothing on {PAGES + 1} pages' in done.stderr


@pytest.mark.parametrize("plugin", [(), ("--plugin", "extraction_plugin:sizes")], ids=["rules", "rules and plugin"])
def test_the_rules_run_again_give_exactly_what_the_crawl_stored(cli: Any, tmp_path: Path, shop: Site,
                                                                 plugin: tuple[str, ...]) -> None:
    db = crawl(cli, tmp_path, shop, RULES_B, *plugin)
    crawled = extracted(cli, db)
    if plugin:   # the plugin ran, and failed on one page only
        assert crawled["p/boom"][1] == "extract_failed"
        assert crawled["p/2"][0]["links"] == 3
    rules = rules_file(tmp_path, RULES_B, "same.toml")
    done = cli.in_process("extract", "--db", db, "--rules", rules, "--workers", 1, *plugin)
    assert done.returncode == 0, done.stderr
    assert extracted(cli, db) == crawled


def test_two_workers_give_the_values_of_one(cli: Any, tmp_path: Path, shop: Site) -> None:
    db = crawl(cli, tmp_path, shop, RULES_A)
    fixed = rules_file(tmp_path, RULES_B, "fixed.toml")
    assert cli.in_process("extract", "--db", db, "--rules", fixed, "--workers", 1).returncode == 0
    one = extracted(cli, db)
    assert cli.in_process("extract", "--db", db, "--rules", rules_file(tmp_path, RULES_A, "a.toml")).returncode == 0
    assert extracted(cli, db) != one
    assert cli.in_process("extract", "--db", db, "--rules", fixed, "--workers", 2).returncode == 0
    assert extracted(cli, db) == one


def staged(db: Path) -> int:
    """Pages a run has staged so far (0 before it starts)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM extracted_next").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def until(check: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_a_run_killed_midway_leaves_the_previous_values_and_the_next_run_completes(
        cli: Any, tmp_path: Path, shop: Site) -> None:
    db = crawl(cli, tmp_path, shop, RULES_A)
    before = extracted(cli, db)
    fixed = rules_file(tmp_path, RULES_B, "fixed.toml")
    # The plugin hangs on the last page, so the run is killed with its first batches staged.
    proc = cli.popen("extract", "--db", db, "--rules", fixed, "--plugin", "extraction_plugin:stall",
                     "--workers", 1, env={"STALL_ON": f"/p/{PAGES}", "PYTHONPATH": PLUGIN_PATH}, new_session=True)
    cli.interrupt(proc, lambda: until(lambda: staged(db) > 0), signal.SIGKILL, group=True)
    assert extracted(cli, db) == before
    with JobReader(db) as job:
        assert job.meta()["job_settings"]["extract"].endswith("rules-0.toml")
    done = cli.in_process("extract", "--db", db, "--rules", fixed)
    assert done.returncode == 0, done.stderr
    assert extracted(cli, db)["p/1"][0]["heading"] == "Item 1"


def test_a_job_crawled_now_by_another_process_is_refused(cli: Any, tmp_path: Path, shop: Site) -> None:
    db = crawl(cli, tmp_path, shop, RULES_A)
    lock = JobLock(db)
    lock.acquire()
    try:
        line = cli.fails(2, "extract", "--db", db, "--rules", rules_file(tmp_path, RULES_B, "b.toml"))
    finally:
        lock.release()
    assert "is being crawled by process" in line


def test_a_missing_job_a_file_that_is_no_job_and_a_job_without_bodies_are_refused(
        cli: Any, tmp_path: Path, shop: Site) -> None:
    rules = rules_file(tmp_path, RULES_B, "b.toml")
    assert cli.fails(2, "extract", "--db", tmp_path / "nope.db", "--rules", rules) == \
        f"crawler: error: no job file at {tmp_path / 'nope.db'}"
    assert "is not a database" in cli.fails(2, "extract", "--db", rules, "--rules", rules)
    db = crawl(cli, tmp_path, shop, RULES_A, "--no-bodies")
    assert "was crawled with --no-bodies" in cli.fails(2, "extract", "--db", db, "--rules", rules)


def test_the_progress_line_gives_pages_done_of_all_the_rate_and_the_time_left() -> None:
    from crawler.extract_db import progress_line
    assert progress_line(500, 2_000, 10.0) == "0:00:10  pages 500 / 2,000  50/s  0:00:30 left"
    assert progress_line(0, 2_000, 0.0) == "0:00:00  pages 0 / 2,000  0/s  starting"
