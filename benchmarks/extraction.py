#!/usr/bin/env python3
"""What extraction costs: a crawl with five fields and structured data against a crawl without,
and `crawler extract --db` over a stored job with one worker process against two.

usage: benchmarks/run.sh --extraction [--pairs N] [--extract-pages N] [--port P] [--out FILE]

1. The 5,000-page bench site, `--concurrency 64 --per-host 64`, in pairs run one after the other
   (A B A B ...): the crawl without extraction (`--no-structured-data`, no rules) and the crawl
   with benchmarks/bench-rules.toml (five fields: a heading, a regex-typed number, a `many` list
   of URLs, an attribute, a paragraph) and structured data on. Medians of the pairs; the ratio
   is taken pair by pair. Each job is checked: every page stored, and the rules' values on a
   page are the values the page has.
2. A job of --extract-pages pages (default 100,000; ~2 KB pages) crawled once, then
   `crawler extract --db JOB --rules FILE --workers 1` and `--workers 2` in turn, --pairs times:
   pages/s (stored HTML pages over wall time) and peak memory of every process of the run.

Standard library only; see benchmarks/README.md.
"""
import argparse
import json
import statistics
import subprocess
from pathlib import Path
from typing import Any

import run

HERE = Path(__file__).resolve().parent
PAGES = 5000
RULES = HERE / "bench-rules.toml"


def check_values(crawler: list[str], db: Path) -> None:
    """The rules' values on a stored page are what the bench site's page N holds."""
    lines = subprocess.run([*crawler, "export", "--db", str(db), "--format", "jsonl", "--out", "-"],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    for line in lines:
        rec = json.loads(line)
        if rec["status"] != 200 or "/p/" not in rec["url"]:
            continue
        number = int(rec["url"].rsplit("/", 1)[1].split(".")[0])
        data = rec.get("data") or {}
        if data.get("number") != number or data.get("heading") != f"Page {number}" or not data.get("links"):
            run.die(f"extraction is wrong on {rec['url']}: {data} (job {db})")
        return
    run.die(f"no bench page in the export of {db}")


def extract_run(crawler: list[str], db: Path, work: Path, workers: int, pages: int) -> dict[str, Any]:
    r = run.timed([*crawler, "extract", "--db", str(db), "--rules", str(RULES), "--workers", str(workers)],
                  work / f"extract-{workers}.log")
    r["pages_per_s"] = round(pages / r["wall_s"], 1)
    return r


def report(res: dict[str, Any]) -> str:
    pairs = res["pairs"]
    lines = [f"## {PAGES:,}-page bench site, `--concurrency {run.CONC} --per-host {run.CONC}`, medians of {len(pairs)} pairs", "",
             "| run | wall | CPU | peak RSS | pages/s | vs without |", "| --- | --- | --- | --- | --- | --- |"]
    for key, name in (("plain", "without extraction (`--no-structured-data`)"),
                      ("rules", "five fields (`--extract bench-rules.toml`) and structured data")):
        ratio = statistics.median(p[key]["wall_s"] / p["plain"]["wall_s"] for p in pairs)
        med = lambda k: statistics.median(p[key][k] for p in pairs)  # noqa: B023, E731
        lines.append(f"| {name} | {med('wall_s'):.2f} s | {med('cpu_pct'):.0f}% | {med('rss_mb'):.0f} MB "
                     f"| {med('pages_per_s'):,.0f} | {ratio:.3f}× |")
    lines.append("")
    lines.append("Wall time with extraction over without, pair by pair: "
                 + ", ".join(f"{p['rules']['wall_s'] / p['plain']['wall_s']:.3f}" for p in pairs))
    if "extract" in res:
        e = res["extract"]
        lines += ["", f"## `crawler extract --db` over a job of {e['pages']:,} stored pages, "
                  f"medians of {len(e['runs'])} rounds", "",
                  "| workers | wall | CPU | peak RSS (all processes) | pages/s | vs --workers 1 |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for w in ("1", "2"):
            med = lambda k: statistics.median(r[w][k] for r in e["runs"])  # noqa: B023, E731
            ratio = statistics.median(r[w]["pages_per_s"] / r["1"]["pages_per_s"] for r in e["runs"])
            lines.append(f"| {w} | {med('wall_s'):.1f} s | {med('cpu_pct'):.0f}% | {med('rss_mb'):.0f} MB "
                         f"| {med('pages_per_s'):,.0f} | {ratio:.2f}× |")
    return "\n".join(lines + run.machine_lines(res))


def main() -> None:
    ap = argparse.ArgumentParser(description="What extraction costs; see benchmarks/README.md.")
    ap.add_argument("--pairs", type=int, default=3, help="rounds of each comparison, alternating (default 3)")
    ap.add_argument("--extract-pages", type=int, default=100_000, help="pages of the job `crawler extract --db` reads "
                    "(default 100,000; 0 skips it)")
    a = run.parse_options(ap, 8396, "the sites' first port", HERE / "results-extraction.json", report)
    if a is None:
        return
    crawler = run.crawler_command()
    res: dict[str, Any] = {**run.started(crawler, None, "--extraction"), "pairs": []}
    sites = {a.port: run.site(PAGES, 12)}
    if a.extract_pages:
        sites[a.port + 1] = run.site(a.extract_pages, 2)
    with run.served("extraction", sites) as work:
        url = f"http://127.0.0.1:{a.port}/"
        for i in range(1, a.pairs + 1):
            pair: dict[str, Any] = {"load": run.loadavg()}
            run.say(f"pair {i}/{a.pairs}: without extraction, then with ...")
            pair["plain"] = run.run_crawler(crawler, url, PAGES, work, "plain", ["--no-structured-data"])
            pair["rules"] = run.run_crawler(crawler, url, PAGES, work, "rules", ["--extract", str(RULES)])
            check_values(crawler, work / "rules.db")
            res["pairs"].append(pair)
        if a.extract_pages:
            run.say(f"crawling the {a.extract_pages:,}-page job for `crawler extract --db` ...")
            job = work / "big.db"
            run.timed([*crawler, "crawl", f"http://127.0.0.1:{a.port + 1}/", "--db", str(job), "--concurrency",
                       str(run.CONC), "--per-host", str(run.CONC), "--no-structured-data"], work / "big.log")
            stats = json.loads(run.out([*crawler, "stats", "--db", str(job), "--json"]))
            html_pages = stats["statuses"].get("200", 0)
            res["extract"] = {"pages": html_pages, "runs": []}
            for i in range(1, a.pairs + 1):
                run.say(f"round {i}/{a.pairs}: crawler extract --db, --workers 1 then 2 ...")
                res["extract"]["runs"].append({w: extract_run(crawler, job, work, int(w), html_pages) for w in ("1", "2")})
            check_values(crawler, job)
    run.save(res, a.out, report)


if __name__ == "__main__":
    main()
