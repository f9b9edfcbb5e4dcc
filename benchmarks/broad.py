#!/usr/bin/env python3
"""The broad-crawl benchmark: many small hosts on loopback, the crawler against Scrapy (issue 9).

usage: benchmarks/run.sh --broad [--hosts N] [--slow M] [--dead D] [--pages K] [--port P]
                                 [--scale-hosts N] [--scale-pages K] [--no-scale] [--no-scrapy] [--out FILE]

The test bed is the benchmark kit's ``hosts.py`` (``$BENCH_KIT``, default ``../shared/bench`` beside
the project): N sites of K pages on the addresses 127.0.x.y, the last M of them slow (2 KB/s), and D
dead seeds (127.0.200.x, nothing listening). On it, one after the other: the crawler over every seed,
the crawler over the fast hosts alone, and Scrapy (the kit's ``scrapy_broad.py``) over every seed;
then the scale run, the crawler alone over a second bed of ``--scale-hosts`` hosts. Each run is
checked (statuses stored, dead seeds recorded with an error, no host with more than ``--per-host``
requests in flight in the bed's request log); a wrong run is reported and makes the exit status 1.
See benchmarks/README.md. Standard library only.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import run  # the single-host driver beside this file: the crawler's command, Scrapy's venv, timing, the machine

HERE = Path(__file__).resolve().parent
CONC, PER_HOST, TIMEOUT = 64, 2, 10
# The goals; reported as met or not, they do not fail the run.
GOAL_SLOW_HOSTS = 1.15       # all hosts / fast hosts alone, at most (or 1.15 x 60 s, whichever is larger)
GOAL_SLOW_FLOOR_S = 60.0
GOAL_SPEEDUP = 8.0           # Scrapy's wall / the crawler's, at least
GOAL_SCALE_RATE = 0.8        # pages/s at scale / pages/s on the broad bed, at least
GOAL_SCALE_RSS_MB = 250.0


# --- the bed -------------------------------------------------------------------------------------

def address(i: int) -> str:
    """Host i of a hosts.py bed (its documented numbering)."""
    return f"127.0.{1 + i // 250}.{1 + i % 250}"


def bed_addresses(hosts: int, slow: int, dead: int) -> tuple[list[str], list[str], list[str]]:
    """(fast, slow, dead) addresses of a bed started with these numbers."""
    fast = hosts - slow
    return ([address(i) for i in range(fast)], [address(i) for i in range(fast, hosts)],
            [f"127.0.200.{1 + j}" for j in range(dead)])


def expected_statuses(live_hosts: int, pages: int) -> dict[str, int]:
    """Pages by status that a full crawl of ``live_hosts`` sites of ``pages`` pages stores: index.html
    and p/0..K-1 answer 200, and pages 0, 50, 100, ... each link one missing page (hosts.py's count)."""
    return {"200": live_hosts * (pages + 1), "404": live_hosts * ((pages + 49) // 50)}


def seeds_without(seeds: Iterable[str], addresses: Iterable[str]) -> list[str]:
    """The seed URLs whose host is none of ``addresses``."""
    left_out = set(addresses)
    return [s for s in seeds if s.split("//", 1)[-1].split("/", 1)[0].rpartition(":")[0] not in left_out]


# --- the request log -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Request:
    """One line of the bed's request log, in whole milliseconds of nginx's clock."""

    address: str
    start_ms: int
    end_ms: int
    request: str     # "GET /p/1.html HTTP/1.1"


def _ms(seconds: str) -> int:
    whole, _, fraction = seconds.partition(".")
    return int(whole) * 1000 + int((fraction + "000")[:3])


def parse_log(lines: Iterable[str]) -> Iterator[Request]:
    """Requests of a log written by ``hosts.py --log``: "ADDRESS TIME DURATION REQUEST" a line.

    hosts.py's usage calls the second field the start, but it is nginx's ``$msec``: the time the line
    was logged, when the response had been sent. So a request ran from TIME - DURATION to TIME
    (``$request_time``, from the first byte read), both exact milliseconds of one cached clock."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            addr, logged, duration, request = line.rstrip("\n").split(" ", 3)
            end = _ms(logged)
            yield Request(addr, end - _ms(duration), end, request)
        except ValueError:
            raise ValueError(f"request log line {number} is not 'ADDRESS TIME DURATION REQUEST': {line!r}") from None


def peak_in_flight(requests: Iterable[Request]) -> dict[str, int]:
    """The most requests each address had in flight at once, that the log can tell apart.

    The log's clock has whole milliseconds, so a request is in flight over [start, end): one that
    ends in the millisecond another starts does not overlap it (on a kept-alive connection the next
    request starts no earlier than the previous one was logged), and one that took under a
    millisecond cannot be placed beside others and is left out (``instant`` counts them). The server
    sees a request for less time than the client holds its slot (from the first byte it reads to
    the last it sends), so this never overstates the client's count."""
    events: dict[str, list[tuple[int, int]]] = {}
    for r in requests:
        if r.end_ms > r.start_ms:
            events.setdefault(r.address, []).extend(((r.start_ms, 1), (r.end_ms, -1)))
    peaks = {}
    for addr, changes in events.items():
        now = peak = 0
        for _, change in sorted(changes):   # at one instant, -1 (an end) sorts before +1 (a start)
            now += change
            peak = max(peak, now)
        peaks[addr] = peak
    return peaks


def instant(requests: Iterable[Request]) -> int:
    """How many requests took under a millisecond of the log's clock (``peak_in_flight`` leaves them out)."""
    return sum(r.end_ms == r.start_ms for r in requests)


def over_limit(peaks: dict[str, int], limit: int) -> dict[str, int]:
    """The addresses whose peak in flight was above ``limit``."""
    return {a: n for a, n in sorted(peaks.items()) if n > limit}


def repeated(requests: Iterable[Request]) -> int:
    """How many requests asked again for an (address, request line) already asked for."""
    counts = Counter((r.address, r.request) for r in requests)
    return sum(n - 1 for n in counts.values())


# --- the checks of a run -------------------------------------------------------------------------

def check_crawler_job(stats: dict[str, Any], hosts: Sequence[dict[str, Any]], want: dict[str, int],
                      dead: Iterable[str], port: int) -> list[str]:
    """What is wrong with a crawler job, from ``crawler stats --json`` and ``stats --hosts --json``:
    the pages by status must be ``want``, and each dead seed's host recorded with an error."""
    problems = []
    if stats["statuses"] != want:
        problems.append(f"pages by status {stats['statuses']}, expected {want}")
    by_host = {h["host"]: h for h in hosts}
    unrecorded = [a for a in dead if not _has_error(by_host.get(f"{a}:{port}"))]
    if unrecorded:
        problems.append(f"{len(unrecorded)} dead seeds not recorded with an error: {', '.join(unrecorded[:5])}")
    return problems


def _has_error(host: dict[str, Any] | None) -> bool:
    """A host is recorded with an error when a page of it has one, or when it is parked with one."""
    return host is not None and (host["errors"] > 0 or bool(host.get("parked_error")))


def check_in_flight(requests: Sequence[Request], limit: int) -> list[str]:
    """What is wrong with a run's requests: a host with more than ``limit`` in flight at once."""
    over = over_limit(peak_in_flight(requests), limit)
    if not over:
        return []
    shown = ", ".join(f"{a}: {n}" for a, n in list(over.items())[:5])
    return [f"{len(over)} hosts had more than {limit} requests in flight ({shown})"]


def feed_statuses(feed: Path) -> dict[str, int]:
    """Records by status in Scrapy's JSON lines feed."""
    counts: Counter[str] = Counter()
    with open(feed, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                counts[str(json.loads(line)["status"])] += 1
    return dict(sorted(counts.items()))


# --- the runs ------------------------------------------------------------------------------------

class Bed:
    """A hosts.py bed on one port, its request log read one run at a time; stop() ends it."""

    def __init__(self, kit: Path, port: int, work: Path, name: str) -> None:
        self.kit, self.port = kit, port
        self.seeds, self.log = work / f"{name}-seeds.txt", work / f"{name}-requests.log"
        self._mark = 0

    def start(self, hosts: int, slow: int, dead: int, pages: int) -> None:
        subprocess.run([sys.executable, self.kit / "hosts.py", "start", "--port", str(self.port), "--hosts", str(hosts),
                        "--slow", str(slow), "--dead", str(dead), "--pages", str(pages), "--seeds", self.seeds,
                        "--log", self.log], check=True, stdout=subprocess.DEVNULL)

    def stop(self) -> None:
        subprocess.run([sys.executable, self.kit / "hosts.py", "stop", "--port", str(self.port)], check=False)

    def mark(self) -> None:
        """Requests logged from now on belong to the next run."""
        self._mark = self.log.stat().st_size if self.log.exists() else 0

    def requests(self) -> list[Request]:
        """The requests logged since the last mark (nginx writes each line as the request ends)."""
        with open(self.log, encoding="utf-8", errors="replace") as f:
            f.seek(self._mark)
            return list(parse_log(f))


def crawler_run(crawler: list[str], bed: Bed, seeds: Path, db: Path, want: dict[str, int], dead: list[str],
                extra: Sequence[str] = ()) -> dict[str, Any]:
    for f in db.parent.glob(f"{db.name}*"):
        f.unlink()
    bed.mark()
    r = run.timed([*crawler, "crawl", "--seeds", str(seeds), "--db", str(db), "--concurrency", str(CONC),
                   "--per-host", str(PER_HOST), "--timeout", str(TIMEOUT), *extra], db.with_suffix(".log"))
    requests = bed.requests()
    stats = json.loads(_output([*crawler, "stats", "--db", str(db), "--json"]))
    hosts = json.loads(_output([*crawler, "stats", "--db", str(db), "--hosts", "--json"]))
    problems = check_crawler_job(stats, hosts, want, dead, bed.port) + check_in_flight(requests, PER_HOST)
    return {**r, "pages": stats["pages"], "pages_per_s": round(stats["pages"] / r["wall_s"], 1),
            "statuses": stats["statuses"], "requests": len(requests), "repeated": repeated(requests),
            "peak_per_host": max(peak_in_flight(requests).values(), default=0), "instant": instant(requests),
            "problems": problems}


def scrapy_run(py: str, kit: Path, bed: Bed, want: dict[str, int], work: Path) -> dict[str, Any]:
    feed = work / "scrapy.jsonl"
    bed.mark()
    r = run.timed([py, str(kit / "scrapy_broad.py"), str(bed.seeds), str(feed), str(CONC), str(PER_HOST), str(TIMEOUT)],
                  work / "scrapy.log")
    requests = bed.requests()
    statuses = feed_statuses(feed)
    problems = [] if statuses == want else [f"records by status {statuses}, expected {want}"]
    pages = sum(statuses.values())
    # Scrapy's requests in flight per host are reported, not checked: it is the baseline, not the subject.
    return {**r, "pages": pages, "pages_per_s": round(pages / r["wall_s"], 1), "statuses": statuses,
            "requests": len(requests), "repeated": repeated(requests),
            "peak_per_host": max(peak_in_flight(requests).values(), default=0), "instant": instant(requests),
            "problems": problems}


def _output(cmd: list[str]) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


# --- what is printed -----------------------------------------------------------------------------

def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(res: dict[str, Any]) -> str:
    b, runs = res["bed"], res["runs"]
    lines = [f"## Broad crawl: {b['hosts']:,} hosts of {b['pages']} pages ({b['slow']} slow at 2 KB/s) "
             f"+ {b['dead']} dead seeds, `--concurrency {CONC} --per-host {PER_HOST} --timeout {TIMEOUT}`", "",
             "| run | wall | CPU | peak RSS | pages | pages/s | requests (asked again) | most in flight to one host¹ "
             "| checks |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    names = {"crawler": "crawler, every seed", "crawler_fast": f"crawler, the {b['hosts'] - b['slow']:,} fast hosts alone",
             "scrapy": f"{res['machine'].get('scrapy', 'Scrapy')}, `scrapy_broad.py`, every seed",
             "scale": f"crawler, scale: {res.get('scale_bed', {}).get('hosts', 0):,} hosts of "
                      f"{res.get('scale_bed', {}).get('pages', 0)} pages"}
    for key, name in names.items():
        if key in runs:
            r = runs[key]
            lines.append(f"| {name} | {r['wall_s']:.1f} s | {r['cpu_pct']}% | {r['rss_mb']:.0f} MB | {r['pages']:,} "
                         f"| {r['pages_per_s']:,.0f} | {r['requests']:,} ({r['repeated']:,}) | {r['peak_per_host']} "
                         f"| {'; '.join(r['problems']) or 'ok'} |")
    instants = ", ".join(f"{r['instant']:,}" for r in runs.values())
    lines += ["", f"¹ from the bed's request log (whole milliseconds): requests that took under 1 ms "
              f"({instants} in the runs above) cannot be placed "
              f"beside others and are not counted; the slow hosts' 2-second requests show the limit. "
              f"The crawler's must not exceed --per-host {PER_HOST}; Scrapy's are shown, not checked."]
    c = runs["crawler"]
    lines += ["", "Goals of issue 9 (reported, not enforced):", ""]
    if "crawler_fast" in runs:
        f = runs["crawler_fast"]
        bound = max(GOAL_SLOW_HOSTS * f["wall_s"], GOAL_SLOW_HOSTS * GOAL_SLOW_FLOOR_S)
        lines.append(f"- with the slow hosts / the fast hosts alone: **{c['wall_s'] / f['wall_s']:.2f}×** "
                     f"({c['wall_s']:.1f} s; goal ≤ {bound:.1f} s, the larger of {GOAL_SLOW_HOSTS}× the fast run "
                     f"and {GOAL_SLOW_HOSTS}× {GOAL_SLOW_FLOOR_S:.0f} s): {_met(c['wall_s'] <= bound)}")
    if "scrapy" in runs:
        s = runs["scrapy"]
        lines.append(f"- speed-up over Scrapy (Scrapy's wall / the crawler's): **{s['wall_s'] / c['wall_s']:.2f}×** "
                     f"(goal ≥ {GOAL_SPEEDUP:.0f}×): {_met(s['wall_s'] / c['wall_s'] >= GOAL_SPEEDUP)}")
        lines.append(f"- peak RSS, crawler / Scrapy: {c['rss_mb']:.0f} MB / {s['rss_mb']:.0f} MB "
                     f"(goal: below Scrapy's): {_met(c['rss_mb'] < s['rss_mb'])}")
    if "scale" in runs:
        sc = runs["scale"]
        ratio = sc["pages_per_s"] / c["pages_per_s"]
        lines.append(f"- scale pages/s / broad pages/s: **{ratio:.2f}** (goal ≥ {GOAL_SCALE_RATE}, within 20%): "
                     f"{_met(ratio >= GOAL_SCALE_RATE)}")
        lines.append(f"- scale peak RSS: **{sc['rss_mb']:.0f} MB** (goal < {GOAL_SCALE_RSS_MB:.0f} MB): "
                     f"{_met(sc['rss_mb'] < GOAL_SCALE_RSS_MB)}")
    return "\n".join(lines + run.machine_lines(res))


def main() -> None:
    ap = argparse.ArgumentParser(description="The broad-crawl benchmark; see benchmarks/README.md.")
    ap.add_argument("--hosts", type=int, default=1000, help="hosts of the bed (default 1000)")
    ap.add_argument("--slow", type=int, default=20, help="of which slow, 2 KB/s (default 20)")
    ap.add_argument("--dead", type=int, default=20, help="dead seeds, nothing listening (default 20)")
    ap.add_argument("--pages", type=int, default=50, help="pages a host (default 50)")
    ap.add_argument("--scale-hosts", type=int, default=10_000, help="hosts of the scale bed (default 10000)")
    ap.add_argument("--scale-pages", type=int, default=10, help="pages a host of the scale bed (default 10)")
    ap.add_argument("--no-scale", action="store_true", help="skip the scale run")
    ap.add_argument("--no-scrapy", action="store_true", help="skip Scrapy (it takes over 10 minutes on the full bed)")
    a = run.parse_options(ap, 8495, "the beds' port", HERE / "results-broad.json", report)
    if a is None:
        return
    kit = Path(os.environ.get("BENCH_KIT", HERE.parent.parent / "shared/bench"))
    if not (kit / "hosts.py").exists() or not (kit / "scrapy_broad.py").exists():
        run.die(f"no benchmark kit at {kit} (hosts.py, scrapy_broad.py): set BENCH_KIT")

    crawler = run.crawler_command()
    scrapy_py = None if a.no_scrapy else run.scrapy_python()
    res: dict[str, Any] = {
        **run.started(crawler, scrapy_py, "--broad"), "runs": {},
        "bed": {"hosts": a.hosts, "slow": a.slow, "dead": a.dead, "pages": a.pages}}
    work = Path(tempfile.mkdtemp(prefix="crawler-benchmarks-broad-"))
    bed = Bed(kit, a.port, work, "broad")
    problems: list[str] = []
    ok = False
    try:
        run.say(f"starting {a.hosts:,} hosts on port {a.port} ...")
        bed.start(a.hosts, a.slow, a.dead, a.pages)
        fast, slow, dead = bed_addresses(a.hosts, a.slow, a.dead)
        all_seeds = bed.seeds.read_text().split()
        fast_seeds = work / "fast-seeds.txt"
        fast_seeds.write_text("\n".join(seeds_without(all_seeds, slow + dead)) + "\n")
        want = expected_statuses(a.hosts, a.pages)
        runs = res["runs"]
        run.say("crawler, every seed ...")
        runs["crawler"] = crawler_run(crawler, bed, bed.seeds, work / "broad.db", want, dead)
        run.say(f"crawler, the {len(fast):,} fast hosts alone ...")
        runs["crawler_fast"] = crawler_run(crawler, bed, fast_seeds, work / "fast.db",
                                           expected_statuses(len(fast), a.pages), [])
        if scrapy_py:
            run.say("Scrapy, every seed ...")
            runs["scrapy"] = scrapy_run(scrapy_py, kit, bed, want, work)
        bed.stop()
        if not a.no_scale:
            res["scale_bed"] = {"hosts": a.scale_hosts, "pages": a.scale_pages}
            bed = Bed(kit, a.port, work, "scale")
            run.say(f"scale: starting {a.scale_hosts:,} hosts of {a.scale_pages} pages ...")
            try:
                bed.start(a.scale_hosts, 0, 0, a.scale_pages)
            except subprocess.CalledProcessError as exc:
                # The kit's nginx has a ceiling (worker_connections 8192 for every listening socket):
                # the runs above still count, so report them and say why this one is missing.
                res["scale_error"] = f"the {a.scale_hosts:,}-host bed did not start (hosts.py exit {exc.returncode})"
            else:
                run.say("scale: crawler ...")
                runs["scale"] = crawler_run(crawler, bed, bed.seeds, work / "scale.db",
                                            expected_statuses(a.scale_hosts, a.scale_pages), [])
        problems = [f"{name}: {p}" for name, r in runs.items() for p in r["problems"]]
        if "scale_error" in res:
            problems.append(f"scale: {res['scale_error']}")
        ok = not problems
    finally:
        bed.stop()
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            run.say(f"logs, request logs and jobs kept in {work}")
    run.save(res, a.out, report)
    if problems:
        run.say("\n".join(["wrong runs:", *problems]))
        sys.exit(1)


if __name__ == "__main__":
    main()
