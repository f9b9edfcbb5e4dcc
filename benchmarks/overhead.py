#!/usr/bin/env python3
"""What the options a long-running job adds cost on the bench site: each against the plain crawl.

usage: benchmarks/run.sh --overhead [--rounds N] [--variants A,B] [--port P] [--out FILE]

The 5,000-page bench site, `--concurrency 64 --per-host 64`, default `--workers`, in rounds; each
round runs every variant once, in an order that rotates from round to round, so a slow spell of the
shared machine falls on each variant in turn:

- plain: no option;
- access: two `--header`s and a cookie jar that sends a cookie with every request (`--cookies` with
  a cookies.txt for the site's host); headers and cookies: each of the two alone;
- metrics: `--metrics 127.0.0.1:PORT` (Prometheus endpoint served all along);
- events: `--events FILE` (one JSON line a page);
- render-auto: `--render auto`, which renders no page of this static site (it needs Playwright and
  Chromium; left out where they are missing).

Each variant's ratio is taken round by round against that round's plain run; the medians of the
ratios are reported, with the machine's load. Standard library only; see benchmarks/README.md.
"""
import argparse
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Any

import run

HERE = Path(__file__).resolve().parent
PAGES = 5000


def has_playwright(crawler: list[str]) -> bool:
    """Whether the crawler's own interpreter (beside its console script) has Playwright."""
    python = Path(crawler[0]).with_name("python")
    return python.exists() and subprocess.run([str(python), "-c", "import playwright"], capture_output=True).returncode == 0


def variants(port: int, work: Path, render: bool) -> dict[str, list[str]]:
    cookies = work / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tbench-cookie-value\n")
    found: dict[str, list[str]] = {
        "plain": [],
        "access": ["--header", "X-Team: docs", "--header", "Accept-Language: en", "--cookies", str(cookies)],
        "headers": ["--header", "X-Team: docs", "--header", "Accept-Language: en"],
        "cookies": ["--cookies", str(cookies)],
        "metrics": ["--metrics", f"127.0.0.1:{port + 1}"],
        "events": ["--events", str(work / "events.jsonl")],
    }
    if render and shutil.which("chromium"):
        found["render-auto"] = ["--render", "auto"]
    return found


def report(res: dict[str, Any]) -> str:
    names = list(res["rounds"][0]["runs"]) if res["rounds"] else []
    lines = [f"# What each option costs on the bench site ({res['date']})", "", f"`{res['command']}`", "",
             "| variant | wall (median) | CPU (median) | ratio to plain, wall (median of rounds) | rounds |",
             "| --- | --- | --- | --- | --- |"]
    for name in names:
        walls = [r["runs"][name]["wall_s"] for r in res["rounds"]]
        cpus = [r["runs"][name]["cpu_pct"] * r["runs"][name]["wall_s"] / 100 for r in res["rounds"]]
        ratios = [r["runs"][name]["wall_s"] / r["runs"]["plain"]["wall_s"] for r in res["rounds"]]
        lines.append(f"| {name} | {statistics.median(walls):.2f} s | {statistics.median(cpus):.2f} s | "
                     f"{statistics.median(ratios):.3f} | {', '.join(f'{x:.2f}' for x in ratios)} |")
    lines += ["", "Load (1, 5, 15 min) at each round: " + "; ".join(r["load"] for r in res["rounds"])]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description="What long-running options cost; see benchmarks/README.md.")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of every variant (default 5)")
    ap.add_argument("--variants", default="", help="comma-separated variants to run (default: all; plain is always run)")
    a = run.parse_options(ap, 8496, "the site's port (the next one serves --metrics)", HERE / "results-overhead.json",
                          report)
    if a is None:
        return
    crawler = run.crawler_command()
    res: dict[str, Any] = {**run.started(crawler, None, "--overhead"), "rounds": []}
    with run.served("overhead", {a.port: run.site(PAGES, 12)}) as work:
        url = f"http://127.0.0.1:{a.port}/"
        chosen = variants(a.port, work, has_playwright(crawler))
        if a.variants:
            wanted = {"plain", *a.variants.split(",")}
            chosen = {name: args for name, args in chosen.items() if name in wanted}
        names = list(chosen)
        for i in range(a.rounds):
            order = names[i % len(names):] + names[:i % len(names)]
            one: dict[str, Any] = {"load": run.loadavg(), "runs": {}}
            run.say(f"round {i + 1}/{a.rounds}: {', '.join(order)} ...")
            for name in order:
                one["runs"][name] = run.run_crawler(crawler, url, PAGES, work, name, ["--quiet", *chosen[name]])
            res["rounds"].append(one)
    run.save(res, a.out, report)


if __name__ == "__main__":
    main()
