"""``crawler bench``: the generated site, the measuring machinery on a tiny workload, the report, the
command's early failures. Speed is what the bench measures; no test here asserts a ratio."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import cli_env

from crawler.bench import MODES, Result, Run, Workload, report, run_bench, speedups, table
from crawler.bench_site import BenchSite, SiteSpec, link_targets, page
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


# -- the machinery, on a tiny workload -----------------------------------------------------------

TINY = [
    Workload("io", "I/O-bound", SiteSpec(pages=30, delay=0.01), concurrency=8),
    Workload("cpu", "CPU-bound", SiteSpec(pages=8, anchors=300, targets=4, offsite=2, text_kb=20), concurrency=4,
             extract_text=True),
]


def test_run_bench_measures_every_mode_on_every_workload() -> None:
    seen: list[str] = []
    results = run_bench(TINY, MODES, repeats=1, on_run=seen.append)
    assert len(seen) == 6
    assert seen[0].startswith("run 1/6: io workload, async mode")
    doc = json.loads(json.dumps(report(results, TINY)))
    assert set(doc) == {"machine", "workloads", "results"}
    assert doc["machine"]["cpu_count"] >= 1
    assert doc["machine"]["python"]
    assert doc["machine"]["crawler"]
    assert [(r["workload"], r["mode"]) for r in doc["results"]] == [(w.name, m) for w in TINY for m in MODES]
    for row in doc["results"]:
        assert row["pages"] == doc["workloads"][row["workload"]]["pages"], row   # the whole site, every time
        assert row["errors"] == 0
        assert row["seconds"] > 0
        assert row["pages_per_s"] > 0
        assert row["cpu_percent"] > 0
        assert row["peak_rss_mb"] > 0
        assert row["speedup_vs_async"] > 0
        assert "runs" not in row


def test_the_median_run_is_reported_with_every_run() -> None:
    runs = (Run(10, 2.0, 1.0, 50.0, 0.0, 0), Run(10, 1.0, 1.0, 60.0, 0.0, 0), Run(10, 4.0, 1.0, 40.0, 0.0, 0))
    results = [Result("cpu", "async", runs), Result("cpu", "process", (runs[1],))]
    assert results[0].median is runs[0]
    assert speedups(results) == {("cpu", "async"): 1.0, ("cpu", "process"): 2.0}
    rows = report(results, [])["results"]
    assert rows[0]["seconds"] == 2.0
    assert [r["seconds"] for r in rows[0]["runs"]] == [2.0, 1.0, 4.0]
    assert rows[0]["cpu_percent"] == 50.0
    assert rows[1]["pages_per_s"] == 10.0
    assert table(results).row_count == 2


def test_plot_draws_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from crawler.bench import plot

    rows: list[dict[str, Any]] = [
        {"workload": w, "mode": m, "pages_per_s": 10.0 * (k + 1), "cpu_percent": 50.0 * (k + 1), "speedup_vs_async": k + 1.0}
        for w in ("io", "cpu") for k, m in enumerate(MODES)]
    doc = {"machine": {"cpu_count": 2, "python": "3", "crawler": "0"}, "workloads": {}, "results": rows}
    plot(doc, str(tmp_path / "r.png"))
    assert (tmp_path / "r.png").read_bytes().startswith(b"\x89PNG")


# -- the command's early failures --------------------------------------------------------------


def test_plot_without_matplotlib_is_one_line_and_exit_2(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['matplotlib'] = None; from crawler.cli import main; "
            "sys.exit(main(['bench', '--quick', '--out', 'r.json', '--plot', 'r.png']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=cli_env(),
                          timeout=30, check=False)
    assert done.returncode == 2
    assert done.stderr == "crawler: --plot needs matplotlib: pip install 'crawler[plot]'\n"
    assert done.stdout == ""
    assert list(tmp_path.iterdir()) == []   # nothing ran


def test_an_output_that_cannot_be_written_fails_before_any_run(cli: Any, tmp_path: Path) -> None:
    done = cli.in_process("bench", "--quick", "--out", tmp_path / "missing" / "r.json")
    assert done.returncode == 2
    assert "no directory" in done.stderr
    assert done.stdout == ""
