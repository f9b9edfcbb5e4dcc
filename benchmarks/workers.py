#!/usr/bin/env python3
"""Every core and every machine: ``--workers 1`` against ``--workers 2``, and two crawls sharing a
Redis frontier, against Scrapy, on the 5,000-page bench site; optionally the broad crawl too.

usage: benchmarks/run.sh --workers [--pairs N] [--broad] [--no-redis] [--port P] [--out FILE]

Each pair runs, one after the other: the crawler with --workers 1, with --workers 2, two crawls
sharing a private redis-server (one with the seed, one joining), and Scrapy. Medians of the pairs;
peak RSS is every process of a run summed (worker processes count). With --broad, the 1,000-host
bed of benchmarks/broad.py is crawled once with --workers 1, once with --workers 2, and by Scrapy.
Standard library only; see benchmarks/README.md.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import broad
import run

HERE = Path(__file__).resolve().parent
PAGES = 5000


def redis_server(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    if not shutil.which("redis-server"):
        run.die("no redis-server (Debian: apt-get install redis-server), or pass --no-redis")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(work)], stdout=subprocess.DEVNULL)
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.1)
    run.die("redis-server did not start")
    raise AssertionError


def redis_pair(crawler: list[str], url: str, redis_url: str, work: Path, job: str) -> dict[str, Any]:
    """Two crawls sharing one Redis frontier: the first with the seed, the second joining at once."""
    dbs = [work / f"{job}-{n}.db" for n in (1, 2)]
    for db in dbs:
        for f in work.glob(f"{db.name}*"):
            f.unlink()
    shared = ["--frontier", redis_url, "--job", job, "--concurrency", str(run.CONC), "--per-host", str(run.CONC)]
    first = [*crawler, "crawl", url, "--db", str(dbs[0]), *shared]
    second = [*crawler, "crawl", "--db", str(dbs[1]), *shared]
    r = run.timed(first, work / f"{job}.log", also=[second])
    merged = subprocess.run([*crawler, "export", "--db", str(dbs[0]), "--db", str(dbs[1]), "--format", "jsonl",
                             "--out", "-"], capture_output=True, text=True, check=True).stdout.splitlines()
    statuses: dict[str, int] = {}
    for line in merged:
        s = str(json.loads(line)["status"])
        statuses[s] = statuses.get(s, 0) + 1
    if statuses != run.expected(PAGES):
        run.die(f"Redis run {job} is wrong: merged statuses {statuses}, expected {run.expected(PAGES)}")
    shares = [len(subprocess.run([*crawler, "export", "--db", str(db), "--out", "-"], capture_output=True, text=True,
                                 check=True).stdout.splitlines()) for db in dbs]
    return {**r, "pages": len(merged), "pages_per_s": round(len(merged) / r["wall_s"], 1), "shares": shares}


def report(res: dict[str, Any]) -> str:
    lines = [f"## {PAGES:,}-page bench site, `--concurrency {run.CONC} --per-host {run.CONC}`, "
             f"medians of {len(res['pairs'])} pairs", "",
             "| run | wall | CPU | peak RSS (all processes) | pages/s | vs --workers 1 | vs Scrapy |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    pairs = res["pairs"]
    med = lambda who, k: statistics.median(p[who][k] for p in pairs)  # noqa: E731
    names = {"w1": "crawler `--workers 1`", "w2": "crawler `--workers 2`",
             "redis": "two crawls sharing a Redis frontier", "scrapy": "Scrapy 2.19, 64 concurrent"}
    for key, name in names.items():
        if key not in pairs[0]:
            continue
        ratio_w1 = statistics.median(p["w1"]["wall_s"] / p[key]["wall_s"] for p in pairs)
        ratio_s = statistics.median(p["scrapy"]["wall_s"] / p[key]["wall_s"] for p in pairs) if "scrapy" in pairs[0] else 0
        lines.append(f"| {name} | {med(key, 'wall_s'):.2f} s | {med(key, 'cpu_pct'):.0f}% | {med(key, 'rss_mb'):.0f} MB "
                     f"| {med(key, 'pages_per_s'):,.0f} | {ratio_w1:.2f}× | {ratio_s:.2f}× |")
    if "redis" in pairs[0]:
        lines += ["", "Pages each Redis worker fetched, by pair: "
                  + ", ".join(f"{p['redis']['shares'][0]:,} + {p['redis']['shares'][1]:,}" for p in pairs)]
    if "broad" in res:
        b = res["broad"]
        lines += ["", f"## Broad crawl, {b['hosts']:,} hosts (20 slow, 20 dead seeds), "
                  f"`--concurrency {broad.CONC} --per-host {broad.PER_HOST} --timeout {broad.TIMEOUT}`, one run each", "",
                  "| run | wall | CPU | peak RSS | pages/s | most in flight to one host | vs Scrapy | checks |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for key, name in (("w1", "crawler `--workers 1`"), ("w2", "crawler `--workers 2`"), ("scrapy", "Scrapy")):
            if key in b["runs"]:
                r = b["runs"][key]
                vs = b["runs"]["scrapy"]["wall_s"] / r["wall_s"] if "scrapy" in b["runs"] else 0
                checks = "; ".join(r["problems"]) or "ok"
                lines.append(f"| {name} | {r['wall_s']:.1f} s | {r['cpu_pct']}% | {r['rss_mb']:.0f} MB "
                             f"| {r['pages_per_s']:,.0f} | {r['peak_per_host']} | {vs:.2f}× | {checks} |")
    return "\n".join(lines + run.machine_lines(res))


def main() -> None:
    ap = argparse.ArgumentParser(description="--workers 1 / 2 / Redis against Scrapy; see benchmarks/README.md.")
    ap.add_argument("--pairs", type=int, default=3, help="rounds of the four runs, alternating (default 3)")
    ap.add_argument("--broad", action="store_true", help="also the 1,000-host broad crawl (over 10 minutes with Scrapy)")
    ap.add_argument("--no-redis", action="store_true", help="skip the Redis runs")
    ap.add_argument("--no-scrapy", action="store_true", help="skip Scrapy")
    a = run.parse_options(ap, 8395, "the site's port", HERE / "results-workers.json", report)
    if a is None:
        return
    crawler = run.crawler_command()
    scrapy_py = None if a.no_scrapy else run.scrapy_python()
    res: dict[str, Any] = {**run.started(crawler, scrapy_py, "--workers"), "pairs": []}
    work = Path(tempfile.mkdtemp(prefix="crawler-benchmarks-workers-"))
    nginx = run.Nginx({a.port: run.site(PAGES, 12)})
    redis: subprocess.Popen[bytes] | None = None
    ok = False
    try:
        nginx.start()
        if not a.no_redis:
            redis, redis_url = redis_server(work)
        url = f"http://127.0.0.1:{a.port}/"
        for i in range(1, a.pairs + 1):
            pair: dict[str, Any] = {"load": run.loadavg()}
            run.say(f"pair {i}/{a.pairs}: --workers 1, --workers 2 ...")
            pair["w1"] = run.run_crawler(crawler, url, PAGES, work, "w1", ["--workers", "1"])
            pair["w2"] = run.run_crawler(crawler, url, PAGES, work, "w2", ["--workers", "2"])
            if redis is not None:
                run.say(f"pair {i}/{a.pairs}: two crawls sharing Redis ...")
                pair["redis"] = redis_pair(crawler, url, redis_url, work, f"bench-{i}-{os.getpid()}")
            if scrapy_py:
                run.say(f"pair {i}/{a.pairs}: Scrapy ...")
                pair["scrapy"] = run.run_scrapy(scrapy_py, url, PAGES, work)
            res["pairs"].append(pair)
        nginx.stop()
        if a.broad:
            kit = Path(os.environ.get("BENCH_KIT", HERE.parent.parent / "shared/bench"))
            bed = broad.Bed(kit, a.port + 100, work, "broad")
            res["broad"] = {"hosts": 1000, "runs": {}}
            try:
                run.say("broad: starting 1,000 hosts ...")
                bed.start(1000, 20, 20, 50)
                _, _, dead = broad.bed_addresses(1000, 20, 20)
                want = broad.expected_statuses(1000, 50)
                for key, workers in (("w1", "1"), ("w2", "2")):
                    run.say(f"broad: --workers {workers} ...")
                    res["broad"]["runs"][key] = broad.crawler_run(crawler, bed, bed.seeds, work / f"broad-{key}.db",
                                                                  want, dead, ["--workers", workers])
                if scrapy_py:
                    run.say("broad: Scrapy ...")
                    res["broad"]["runs"]["scrapy"] = broad.scrapy_run(scrapy_py, kit, bed, want, work)
            finally:
                bed.stop()
        ok = True
    finally:
        nginx.stop()
        if redis is not None:
            redis.terminate()
            redis.wait()
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            run.say(f"logs and jobs kept in {work}")
    run.save(res, a.out, report)


if __name__ == "__main__":
    main()
