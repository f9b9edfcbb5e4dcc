"""``crawler bench``: the generated site, the fetch models (every one stores the same pages), the
command on small sites (its rows, its chart), the report, the command's early failures. Speed is what
the bench measures; no test here asserts a ratio or a rate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import cli_env

from crawler.bench.fetch_models import FETCH_MODELS
from crawler.bench.report import report, speedups, table
from crawler.bench.site import BenchSite, SiteSpec, link_targets, page
from crawler.bench.workloads import MODES, Case, Result, Run, Workload, fetch_cases, parse_cases, worker_cases
from crawler.parser import parse

# -- the site ------------------------------------------------------------------------------------


def test_every_page_is_reachable_from_the_root() -> None:
    spec = SiteSpec(pages=50)
    seen, todo = {0}, [0]
    while todo:
        for t in link_targets(todo.pop(), spec):
            if t not in seen:
                seen.add(t)
                todo.append(t)
    assert seen == set(range(spec.pages))


def test_many_anchors_canonicalize_to_a_few_pages() -> None:
    """However many anchors a page has, its links are its targets and the few off-site URLs, so the
    crawl stays the site's size."""
    spec = SiteSpec(pages=40, anchors=400, targets=5, offsite=3, text_kb=4)
    body = page(7, spec)
    assert body.count(b"<a href") == 400
    links = {link.url for link in parse("http://127.0.0.1:8000/p/7", {}, body).links}
    expected = {f"http://127.0.0.1:8000/p/{t}" for t in link_targets(7, spec)}
    assert links == expected | {f"http://elsewhere.invalid/{k}" for k in range(3)}
    assert page(7, spec) == body   # deterministic


def test_site_serves_pages_and_404s_from_another_process() -> None:
    import httpx2

    spec = SiteSpec(pages=3)
    with BenchSite(spec) as site, httpx2.Client() as client:
        assert client.get(site.url).status_code == 200
        assert client.get(site.url + "p/2").content == page(2, spec)
        assert client.get(site.url + "robots.txt").status_code == 404
        assert client.get(site.url + "p/3").status_code == 404


# -- the fetch models store the same pages -------------------------------------------------------


def _stored(cli: Any, *dbs: Path) -> set[tuple[Any, ...]]:
    """What the job files hold, by page: URL, status, title, link count (depth left out: it depends
    on which page found a URL first)."""
    rows = [r for db in dbs for r in cli.export(db, "--fields", "url,status,title,outlinks,error")]
    found = {(r["url"], r["status"], r["title"], r["outlinks"], r["error"]) for r in rows}
    assert len(found) == len(rows), "a page stored twice"
    return found


def test_every_fetch_model_and_every_worker_split_stores_the_same_pages(cli: Any, tmp_path: Path) -> None:
    spec = SiteSpec(pages=60, delay=0.005)
    io = Workload("io", "I/O-bound", spec, concurrency=8)
    chosen = [*fetch_cases(io, (1, 8), lambda level: spec.pages + 1), *worker_cases([io], cores=3)]
    assert [(c.mode, c.fetch, c.concurrency, c.workers) for c in chosen] == [
        ("fetch", "sequential", 1, 1), ("fetch", "threads", 1, 1), ("fetch", "asyncio", 1, 1),
        ("fetch", "threads", 8, 1), ("fetch", "asyncio", 8, 1),
        ("workers", None, 8, 1), ("workers", None, 8, 2), ("workers", None, 8, 3)]
    stored = {}
    with BenchSite(spec) as site:
        for n, case in enumerate(chosen):
            folder = tmp_path / str(n)
            folder.mkdir()
            commands, dbs = case.commands(site.url, folder)
            assert len(commands) == len(dbs) == 1   # --workers K is one crawl
            for command in commands:
                subprocess.run(command, env=cli_env(), cwd=folder, check=True, timeout=120, capture_output=True)
            stored[case.label] = _stored(cli, *dbs)
    first = stored["sequential fetch, 1 in flight"]
    assert len(first) == spec.pages + 1
    assert {status for _, status, *_ in first} == {200}
    for label, pages in stored.items():
        assert pages == first, label


def test_the_blocking_transport_answers_as_the_crawler_needs_from_its_threads() -> None:
    """Whole responses (status, reason, HTTP version, headers, raw body) through httpx2's async
    interface, made in at most N threads (``threads``) or on the caller's own (``sequential``)."""
    import asyncio
    import threading

    import httpx2

    from crawler.bench.fetch_models import BlockingTransport

    spec = SiteSpec(pages=12, delay=0.02)

    async def fetch_all(transport: httpx2.AsyncBaseTransport, url: str) -> list[httpx2.Response]:
        async with httpx2.AsyncClient(transport=transport) as client:
            async def one(path: str) -> httpx2.Response:
                async with client.stream("GET", url + path) as r:
                    await r.aread()
                    return r
            return await asyncio.gather(*(one(f"p/{i}") for i in range(spec.pages)), one("nothing"))

    with BenchSite(spec) as site:
        for threads in (0, 4):
            before = {t.name for t in threading.enumerate()}
            answers = asyncio.run(fetch_all(BlockingTransport(threads), site.url))
            assert [r.status_code for r in answers] == [200] * spec.pages + [404]
            assert [r.content for r in answers[:-1]] == [page(i, spec) for i in range(spec.pages)]
            assert (answers[0].http_version, answers[0].reason_phrase) == ("HTTP/1.1", "OK")
            assert answers[0].headers["content-type"] == "text/html; charset=utf-8"
            assert {t.name for t in threading.enumerate()} == before   # the pool is shut down with the client


# -- the command, on small sites -----------------------------------------------------------------

TINY_IO = Workload("io", "I/O-bound", SiteSpec(pages=30, delay=0.01), concurrency=8)
TINY_CPU = Workload("cpu", "CPU-bound", SiteSpec(pages=8, anchors=300, targets=4, offsite=2, text_kb=20), concurrency=4,
                    extract_text=True)
LEVELS = (1, 4, 16)


def tiny_cases(quick: bool) -> list[Case]:
    """What ``cases`` returns, on sites small enough for a test (a few pages per request in flight)."""
    chosen = [TINY_IO, TINY_CPU]
    return (parse_cases(chosen) + fetch_cases(TINY_IO, LEVELS, lambda level: 10 + 2 * level)
            + worker_cases(chosen, cores=2))


FIELDS = {"workload", "mode", "pages", "seconds", "pages_per_s", "cpu_percent", "peak_rss_mb", "concurrency", "threads",
          "workers", "other_cpu_percent", "errors"}


def test_bench_writes_rows_for_every_mode_fetch_model_level_and_worker_count(cli: Any, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    monkeypatch.setattr("crawler.bench.command.cases", tiny_cases)
    done = cli.in_process("bench", "--quick", "--out", "r.json", "--plot", "r.png")
    assert done.returncode == 0, done.stderr
    for label in ("async parse mode", "sequential fetch", "threads fetch", "asyncio fetch", "2 workers"):
        assert label in done.stdout
    assert (tmp_path / "r.png").read_bytes().startswith(b"\x89PNG")
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["machine"]["cpu_count"] >= 1
    assert set(doc["workloads"]) == {"io", "cpu"}
    assert doc["fetch_sweep"]["concurrency"] == list(LEVELS)
    rows = doc["results"]
    for r in rows:
        assert set(r) >= FIELDS, r
        assert r["errors"] == 0, r
        assert min(r["seconds"], r["pages_per_s"], r["cpu_percent"], r["peak_rss_mb"]) > 0, r
        assert r["threads"] >= 1, r
        assert "runs" not in r   # one run each with --quick
    parse_rows = [r for r in rows if r["mode"] in MODES]
    assert [(r["workload"], r["mode"]) for r in parse_rows] == [(w, m) for w in ("io", "cpu") for m in MODES]
    for r in parse_rows:
        assert "fetch" not in r   # as they were, so earlier results still compare
        assert r["pages"] == doc["workloads"][r["workload"]]["pages"], r
        assert (r["concurrency"], r["workers"]) == (doc["workloads"][r["workload"]]["concurrency"], 1)
        assert r["speedup_vs_async"] > 0
    fetch_rows = [r for r in rows if r["mode"] == "fetch"]
    assert [(r["fetch"], r["concurrency"]) for r in fetch_rows] == [
        ("sequential", 1), ("threads", 1), ("asyncio", 1), ("threads", 4), ("asyncio", 4), ("threads", 16), ("asyncio", 16)]
    for r in fetch_rows:
        assert (r["workload"], r["workers"]) == ("io", 1)
        assert r["pages"] == 10 + 2 * r["concurrency"], r   # the whole site of its level
        assert r["speedup_vs_sequential"] > 0
    # A pool of N threads is N threads (and N connections); asyncio's stay a handful whatever N is.
    threads = {(r["fetch"], r["concurrency"]): r["threads"] for r in fetch_rows}
    assert threads["asyncio", 16] < 16 < threads["threads", 16]
    worker_rows = [r for r in rows if r["mode"] == "workers"]
    assert [(r["workload"], r["workers"]) for r in worker_rows] == [("io", 1), ("io", 2), ("cpu", 1), ("cpu", 2)]
    for r in worker_rows:
        assert r["pages"] == doc["workloads"][r["workload"]]["pages"], r
        assert r["speedup_vs_1_worker"] > 0


def test_the_median_run_is_reported_with_every_run() -> None:
    io = Workload("io", "I/O-bound", SiteSpec(pages=9), concurrency=4)
    runs = (Run(10, 2.0, 1.0, 50.0, 0.0, 0, 3), Run(10, 1.0, 1.0, 60.0, 0.0, 0, 3), Run(10, 4.0, 1.0, 40.0, 0.0, 0, 3))
    async_, process = Case(io, "async", 4), Case(io, "process", 4)
    results = [Result(async_, runs), Result(process, (runs[1],))]
    assert results[0].median is runs[0]
    assert speedups(results) == {async_: 1.0, process: 2.0}
    rows = report(results, {"cpu_count": 2})["results"]
    assert rows[0]["seconds"] == 2.0
    assert [r["seconds"] for r in rows[0]["runs"]] == [2.0, 1.0, 4.0]
    assert rows[0]["cpu_percent"] == 50.0
    assert rows[1]["pages_per_s"] == 10.0
    assert rows[1]["speedup_vs_async"] == 2.0
    assert table(results).row_count == 2


def test_each_row_is_compared_with_its_own_baseline() -> None:
    io = Workload("io", "I/O-bound", SiteSpec(pages=9), concurrency=4)
    seq, threads = Case(io, "fetch", 1, "sequential"), Case(io, "fetch", 64, "threads")
    one, two = Case(io, "workers", 4, workers=1), Case(io, "workers", 4, workers=2)
    lone = Case(io, "thread", 4)   # no async row beside it: no ratio

    def result(case: Case, seconds: float) -> Result:
        return Result(case, (Run(10, seconds, 1.0, 50.0, 0.0, 0, 2),))

    ratio = speedups([result(seq, 10.0), result(threads, 0.5), result(one, 1.0), result(two, 0.8), result(lone, 1.0)])
    assert ratio == {seq: 1.0, threads: 20.0, one: 1.0, two: 1.25}
    assert set(FETCH_MODELS) == {"sequential", "threads", "asyncio"}


def test_plot_draws_a_png_with_or_without_the_new_panels(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from crawler.bench.plot import plot

    parse_rows: list[dict[str, Any]] = [
        {"workload": w, "mode": m, "pages_per_s": 10.0 * (k + 1), "cpu_percent": 50.0 * (k + 1), "speedup_vs_async": k + 1.0}
        for w in ("io", "cpu") for k, m in enumerate(MODES)]
    doc: dict[str, Any] = {"machine": {"cpu_count": 2, "python": "3", "crawler": "0"}, "workloads": {}, "results": parse_rows}
    plot(doc, str(tmp_path / "old.png"))   # a document of before the fetch models
    fetch_rows = [{"workload": "io", "mode": "fetch", "fetch": f, "concurrency": c, "pages_per_s": 20.0 * c,
                   "peak_rss_mb": 50.0, "threads": c if f == "threads" else 3}
                  for f in FETCH_MODELS for c in (1, 8, 64) if f != "sequential" or c == 1]
    worker_rows = [{"workload": w, "mode": "workers", "workers": k, "pages_per_s": 100.0 * k, "cpu_percent": 90.0 * k,
                    "speedup_vs_1_worker": float(k)} for w in ("io", "cpu") for k in (1, 2)]
    doc["results"] = parse_rows + fetch_rows + worker_rows
    plot(doc, str(tmp_path / "new.png"))
    for name in ("old.png", "new.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")


# -- the command's early failures --------------------------------------------------------------


def test_plot_without_matplotlib_is_one_line_and_exit_2(cli: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # what an import finds where it is not installed
    done = cli.in_process("bench", "--quick", "--out", "r.json", "--plot", "r.png")
    assert done.returncode == 2
    assert done.stderr == "crawler: --plot needs matplotlib: pip install 'crawler[plot]'\n"
    assert done.stdout == ""
    assert list(tmp_path.iterdir()) == []   # nothing ran


def test_an_output_that_cannot_be_written_fails_before_any_run(cli: Any, tmp_path: Path) -> None:
    done = cli.in_process("bench", "--quick", "--out", tmp_path / "missing" / "r.json")
    assert done.returncode == 2
    assert "no directory" in done.stderr
    assert done.stdout == ""
