#!/usr/bin/env python3
"""The crawler against Scrapy on a generated site served by nginx on 127.0.0.1, in one command.

usage: benchmarks/run.sh [--pairs N] [--scale] [--pages N] [--port P] [--out FILE]
       benchmarks/run.sh --report FILE      (print the tables of an earlier run's JSON again)

See benchmarks/README.md. Standard library only; Scrapy runs from benchmarks/.venv-scrapy.
"""
import argparse
import contextlib
import datetime
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TMP = Path(tempfile.gettempdir())
SCRAPY_VENV = HERE / ".venv-scrapy"
CONC = 64


def die(msg: str) -> None:
    sys.exit(f"benchmarks: {msg}")


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def out(cmd: list[str]) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True)
    return (r.stdout + r.stderr).strip()


# --- what is run ---------------------------------------------------------------------------------

def crawler_command() -> list[str]:
    if os.environ.get("CRAWLER"):
        return shlex.split(os.environ["CRAWLER"])
    if (ROOT / ".venv/bin/crawler").exists():
        return [str(ROOT / ".venv/bin/crawler")]
    if shutil.which("crawler"):
        return ["crawler"]
    die("no crawler: set CRAWLER, or install the project in .venv (see the project README)")
    return []


def scrapy_python() -> str:
    py = SCRAPY_VENV / "bin/python"
    if py.exists() and subprocess.run([py, "-c", "import scrapy"], capture_output=True).returncode == 0:
        return str(py)
    say(f"installing Scrapy into {SCRAPY_VENV} (once) ...")
    subprocess.run([sys.executable, "-m", "venv", SCRAPY_VENV], check=True)
    r = subprocess.run([py, "-m", "pip", "install", "-q", os.environ.get("SCRAPY_SPEC", "scrapy")],
                       capture_output=True, text=True)
    if r.returncode != 0:
        die(f"pip could not install Scrapy:\n{r.stdout}{r.stderr}")
    return str(py)


def site(pages: int, kb: int) -> Path:
    d = TMP / f"crawler-bench-site-{pages}p-{kb}k"
    if not (d / "index.html").exists():  # gensite writes index.html last
        say(f"generating {d} ...")
        subprocess.run([sys.executable, HERE / "gensite.py", d, "--pages", str(pages), "--kb", str(kb)],
                       check=True, stdout=subprocess.DEVNULL)
    for f in d.rglob("*.html"):  # warm the page cache, so the first timed crawl is not the one that reads the disk
        f.read_bytes()
    return d


class Nginx:
    """A private nginx serving each root on its own 127.0.0.1 port; stop() kills it."""

    def __init__(self, roots: dict[int, Path]):
        self.run = TMP / f"crawler-bench-nginx-{min(roots)}"
        self.pid = self.run / "nginx.pid"
        self.roots = roots

    def start(self) -> None:
        if not shutil.which("nginx"):
            say("installing Debian's nginx (apt-get) ...")
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            subprocess.run("apt-get update -qq && apt-get install -y -qq nginx", shell=True, env=env, check=True,
                           stdout=subprocess.DEVNULL)
        self.run.mkdir(exist_ok=True)
        self.stop()  # one left by a run that was killed
        servers = "\n".join(f"  server {{ listen 127.0.0.1:{port}; root {root}; index index.html; }}"
                            for port, root in self.roots.items())
        temps = " ".join(f"{k}_temp_path {self.run}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (self.run / "nginx.conf").write_text(f"""worker_processes 1;
pid {self.pid};
error_log {self.run}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  include /etc/nginx/mime.types;
  sendfile on; tcp_nopush on;
  keepalive_requests 100000;
  {temps}
{servers}
}}
""")
        subprocess.run(["nginx", "-c", self.run / "nginx.conf", "-p", self.run], check=True)
        for port in self.roots:
            for _ in range(50):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                die(f"nginx did not answer on port {port} (see {self.run}/error.log)")

    def stop(self) -> None:
        try:
            pid = int(self.pid.read_text())
            if Path(f"/proc/{pid}/comm").read_text().strip() != "nginx":
                return  # a stale pid file: that number is someone else's process now
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            return
        for _ in range(50):
            if not self.pid.exists():
                return
            time.sleep(0.1)


@contextlib.contextmanager
def served(name: str, roots: dict[int, Path]) -> Iterator[Path]:
    """For the block: nginx serving ``roots`` (stopped whatever happens) and a scratch folder for the
    benchmark's jobs and logs, removed when the block ends well, kept and named when it fails."""
    work = Path(tempfile.mkdtemp(prefix=f"crawler-benchmarks-{name}-"))
    nginx = Nginx(roots)
    try:
        nginx.start()
        yield work
    except BaseException:
        nginx.stop()
        say(f"logs and jobs kept in {work}")
        raise
    nginx.stop()
    shutil.rmtree(work, ignore_errors=True)


def tree_rss_kb(pid: int) -> int:
    """Memory of a process and all its descendants: their proportional set sizes summed (from
    /proc/PID/smaps_rollup), so that pages a forked worker shares with its parent count once."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


def timed(cmd: list[str], log: Path, also: list[list[str]] = ()) -> dict:
    """Run cmd (and the commands in ``also`` beside it); wall time until all have ended, CPU (100% =
    one core) and peak memory: the larger of wait4's peak RSS (the biggest single process) and the
    peak of every process of the run summed (proportional set sizes, sampled every 250 ms), so
    worker processes count, and what they share with their parent counts once."""
    with open(log, "wb") as f:
        t0 = time.perf_counter()
        procs = [subprocess.Popen(c, stdout=f, stderr=subprocess.STDOUT) for c in [cmd, *also]]
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.25):   # reading smaps_rollup costs CPU: 20 times a second took ~12% of a core
                peak[0] = max(peak[0], sum(tree_rss_kb(p.pid) for p in procs))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        utime = stime = maxrss = 0.0
        codes = []
        for p in procs:
            _, status, ru = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            codes.append(p.returncode)
            utime, stime, maxrss = utime + ru.ru_utime, stime + ru.ru_stime, max(maxrss, ru.ru_maxrss)
        wall = time.perf_counter() - t0
        done.set()
        sampler.join()
    if any(codes):
        die(f"exit {codes} from {shlex.join(map(str, cmd))}:\n{log.read_text(errors='replace')[-3000:]}")
    return {"wall_s": round(wall, 3), "cpu_pct": round(100 * (utime + stime) / wall),
            "rss_mb": round(max(maxrss, peak[0]) / 1024, 1)}


def expected(pages: int) -> dict[str, int]:
    return {"200": pages + 1, "404": pages // 50}


def run_crawler(crawler: list[str], url: str, pages: int, work: Path, name: str, extra: list[str] = ()) -> dict:
    db = work / f"{name}.db"
    for f in work.glob(f"{name}.db*"):
        f.unlink()
    r = timed([*crawler, "crawl", url, "--db", str(db), "--concurrency", str(CONC), "--per-host", str(CONC), *extra],
              work / f"{name}.log")
    stats = json.loads(out([*crawler, "stats", "--db", str(db), "--json"]))
    if stats["statuses"] != expected(pages):
        die(f"crawler run {name} is wrong: statuses {stats['statuses']}, expected {expected(pages)} (job in {db})")
    r["pages"] = stats["pages"]
    r["pages_per_s"] = round(r["pages"] / r["wall_s"], 1)
    return r


def run_scrapy(py: str, url: str, pages: int, work: Path) -> dict:
    feed = work / "scrapy.jsonl"
    r = timed([py, str(HERE / "scrapy_spider.py"), url, str(feed), str(CONC)], work / "scrapy.log")
    statuses: dict[str, int] = {}
    with open(feed) as f:
        for line in f:
            s = str(json.loads(line)["status"])
            statuses[s] = statuses.get(s, 0) + 1
    if statuses != expected(pages):
        die(f"Scrapy run is wrong: records by status {statuses}, expected {expected(pages)} (feed {feed})")
    r["pages"] = sum(statuses.values())
    r["pages_per_s"] = round(r["pages"] / r["wall_s"], 1)
    return r


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def started(crawler: list[str], scrapy_py: str | None, *flag: str) -> dict:
    """What every benchmark's results begin with: when, the command as typed (``benchmarks/run.sh``
    with ``flag``, the benchmark's own), and the machine."""
    return {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": shlex.join(["benchmarks/run.sh", *flag, *sys.argv[1:]]),
            "machine": machine(crawler, scrapy_py)}


def machine(crawler: list[str], scrapy_py: str | None) -> dict:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    osrel = dict(ln.split("=", 1) for ln in Path("/etc/os-release").read_text().splitlines() if "=" in ln)
    return {
        "cpu": cpu, "cores": len(os.sched_getaffinity(0)), "memory_gb": round(mem_kb / 1024 ** 2, 1),
        "os": f"{osrel.get('PRETTY_NAME', '?').strip(chr(34))}, Linux {platform.release()}",
        "python": platform.python_version(),
        "crawler": out([*crawler, "version"]),
        "scrapy": "Scrapy " + out([scrapy_py, "-c", "import scrapy; print(scrapy.__version__)"]) if scrapy_py
                  else "Scrapy (not run)",
        "nginx": out(["nginx", "-v"]).replace("nginx version: ", ""),
        "load_start": loadavg(),
    }


# --- what is printed -----------------------------------------------------------------------------

def machine_lines(res: dict) -> list[str]:
    """The closing section of every benchmark's report: the machine, the date, the command."""
    return ["", "## Machine", "", *(f"- {k}: {v}" for k, v in res["machine"].items()),
            f"- date: {res['date']}", f"- command: `{res['command']}`"]


def save(res: dict, out: Path, report: Callable[[dict], str]) -> None:
    """Note the load at the end, write the results as JSON and print their report."""
    res["machine"]["load_end"] = loadavg()
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(report(res))
    say(f"\nresults written to {out}")


def report(res: dict) -> str:
    m, cmp_, n = res["machine"], res["compare"], res["compare"]["pages"]
    runs = cmp_["pairs"]
    lines = [f"## Crawler vs Scrapy: {n:,}-page site (12 KB pages), pairs run alternately: {len(runs)}", "",
             "| pair | crawler s | crawler MB | Scrapy s | Scrapy MB | speed-up | load avg before |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for i, p in enumerate(runs, 1):
        c, s = p["crawler"], p["scrapy"]
        lines.append(f"| {i} | {c['wall_s']:.2f} | {c['rss_mb']:.0f} | {s['wall_s']:.2f} | {s['rss_mb']:.0f} "
                     f"| {p['speedup']:.2f}× | {p['load']} |")
    sm = cmp_["summary"]
    lines += ["", f"| on the {n:,}-page site, median of {len(runs)} | wall | peak RSS | pages/s |",
              "| --- | --- | --- | --- |",
              f"| {m['crawler']}, {CONC} concurrent, robots on, bodies stored | {sm['crawler_s']:.2f} s "
              f"| {sm['crawler_mb']:.0f} MB | ~{sm['crawler_pps']:,.0f} |",
              f"| {m['scrapy']}, {CONC} concurrent, robots obeyed, JSONL feed | {sm['scrapy_s']:.2f} s "
              f"| {sm['scrapy_mb']:.0f} MB | ~{sm['scrapy_pps']:,.0f} |",
              f"| **median speed-up** (per pair: Scrapy s / crawler s) | **{sm['speedup']:.2f}×** | | |"]
    if res.get("scale"):
        sc = res["scale"]
        lines += ["", "## Scale: the crawler alone, 2 KB pages", "",
                  "| site | pages stored | wall | pages/s | peak RSS |", "| --- | --- | --- | --- | --- |"]
        for key in ("small", "large"):
            r = sc[key]
            lines.append(f"| {r['site_pages']:,} pages | {r['pages']:,} | {r['wall_s']:.2f} s "
                         f"| {r['pages_per_s']:,.0f} | {r['rss_mb']:.0f} MB |")
        lines += ["", f"- rate at {sc['large']['site_pages']:,} / rate at {sc['small']['site_pages']:,}: "
                  f"**{sc['rate_ratio']:.2f}** (goal: ≥ 0.75, i.e. within 25%): "
                  f"{'met' if sc['rate_ratio'] >= 0.75 else 'NOT met'}",
                  f"- peak RSS at {sc['large']['site_pages']:,}: **{sc['large']['rss_mb']:.0f} MB** "
                  f"(goal: < 250 MB): {'met' if sc['large']['rss_mb'] < 250 else 'NOT met'}"]
    return "\n".join(lines + machine_lines(res))


def parse_options(ap: argparse.ArgumentParser, port: int, port_help: str, out: Path,
                  report: Callable[[dict], str]) -> argparse.Namespace | None:
    """Add what every benchmark takes (``--port``, ``--out``, ``--report``) and parse the command line.
    With ``--report FILE``, print that file's tables and return None. From here SIGTERM exits through
    the caller's ``finally`` blocks, so the servers it starts are stopped."""
    ap.add_argument("--port", type=int, default=int(os.environ.get("PORT", port)), help=f"{port_help} (default {port})")
    ap.add_argument("--out", type=Path, default=out, help=f"JSON results (default benchmarks/{out.name})")
    ap.add_argument("--report", type=Path, metavar="FILE", help="print the tables of an earlier results file and exit")
    a = ap.parse_args()
    if a.report:
        print(report(json.loads(a.report.read_text())))
        return None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return a


def main() -> None:
    ap = argparse.ArgumentParser(description="The crawler against Scrapy; see benchmarks/README.md.")
    ap.add_argument("--pairs", type=int, default=3, help="crawler/Scrapy pairs, run alternately (default 3)")
    ap.add_argument("--scale", action="store_true", help="also crawl a 100,000-page and a 5,000-page 2 KB site")
    ap.add_argument("--pages", type=int, default=5000, help="pages of the comparison site (default 5000)")
    ap.add_argument("--scale-pages", type=int, default=100_000, help=argparse.SUPPRESS)
    a = parse_options(ap, 8395, "first of 3 ports", HERE / "results.json", report)
    if a is None:
        return

    crawler = crawler_command()
    scrapy_py = scrapy_python()
    sites = {a.port: site(a.pages, 12)}
    if a.scale:
        sites[a.port + 1] = site(5000, 2)
        sites[a.port + 2] = site(a.scale_pages, 2)
    res = started(crawler, scrapy_py)
    with served("run", sites) as work:
        url = f"http://127.0.0.1:{a.port}/"
        pairs = []
        for i in range(1, a.pairs + 1):
            load = loadavg()
            say(f"pair {i}/{a.pairs}: crawler ...")
            c = run_crawler(crawler, url, a.pages, work, "crawler")
            say(f"pair {i}/{a.pairs}: Scrapy ...")
            s = run_scrapy(scrapy_py, url, a.pages, work)
            pairs.append({"crawler": c, "scrapy": s, "speedup": round(s["wall_s"] / c["wall_s"], 3), "load": load})
        med = lambda who, k: statistics.median(p[who][k] for p in pairs)  # noqa: E731
        res["compare"] = {"pages": a.pages, "pairs": pairs, "summary": {
            "crawler_s": med("crawler", "wall_s"), "crawler_mb": med("crawler", "rss_mb"),
            "crawler_pps": med("crawler", "pages_per_s"), "scrapy_s": med("scrapy", "wall_s"),
            "scrapy_mb": med("scrapy", "rss_mb"), "scrapy_pps": med("scrapy", "pages_per_s"),
            "speedup": statistics.median(p["speedup"] for p in pairs)}}
        if a.scale:
            sc = {}
            for key, port, n in (("small", a.port + 1, 5000), ("large", a.port + 2, a.scale_pages)):
                say(f"scale: crawler on the {n:,}-page 2 KB site ...")
                load = loadavg()
                r = run_crawler(crawler, f"http://127.0.0.1:{port}/", n, work, f"scale-{n}")
                sc[key] = {"site_pages": n, "load_before": load, **r}
            sc["rate_ratio"] = round(sc["large"]["pages_per_s"] / sc["small"]["pages_per_s"], 3)
            res["scale"] = sc
    save(res, a.out, report)


if __name__ == "__main__":
    main()
