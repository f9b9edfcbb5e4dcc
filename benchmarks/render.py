#!/usr/bin/env python3
"""What rendering costs: `--render auto` on the static bench site against `--render never`, and a
crawl of a site built by JavaScript with `--render always`.

usage: benchmarks/run.sh --render [--pairs N] [--js-pages N] [--port P] [--out FILE]

1. The 5,000-page bench site (static HTML), `--concurrency 64 --per-host 64`, in pairs run one
   after the other (A B A B ...): `--render never`, then `--render auto`. Medians of the pairs;
   the ratio taken pair by pair. Each auto job is checked: every page stored, none rendered.
2. A site of --js-pages pages (default 2,000) where every page is an empty `<div id="app">` and a
   script that sets the title and fetches its content and links from the same origin (served by
   nginx), crawled once with `--render always` at the default concurrency (one page per core, one
   worker process per core): rendered pages/s, CPU, and peak memory of the whole process tree
   (crawler, workers, Playwright's drivers, every Chromium process; proportional set sizes
   sampled every 250 ms). Checked: every page stored with the title its script sets.

Needs the extra crawler[render] and a Chromium on PATH. Standard library only; see benchmarks/README.md.
"""
import argparse
import json
import sqlite3
import statistics
from pathlib import Path
from typing import Any

import run

HERE = Path(__file__).resolve().parent
PAGES = 5000

SHELL = """<!doctype html><html><head><meta charset="utf-8"><title>Loading</title></head>
<body><div id="app"></div><script>
document.title = 'Page {n} (by script)';
fetch('/api/{n}.json').then(r => r.json()).then(data => {{
  document.getElementById('app').innerHTML = '<h1>' + data.heading + '</h1><p>' + data.text + '</p>' +
    data.links.map(href => '<a href="' + href + '">' + href + '</a>').join(' ');
}});
</script></body></html>
"""


def js_site(pages: int) -> Path:
    """A site of ``pages`` script-built pages: / is page 0, /p/N.html links the next ones."""
    d = run.TMP / f"crawler-bench-js-site-{pages}p"
    if not (d / "index.html").exists():   # written last
        run.say(f"generating {d} ...")
        (d / "p").mkdir(parents=True, exist_ok=True)
        (d / "api").mkdir(exist_ok=True)
        for n in range(pages):
            links = [f"/p/{m}.html" for m in (n + 1, 2 * n + 1, (7 * n + 3) % pages) if 0 < m < pages]
            (d / "api" / f"{n}.json").write_text(json.dumps({"heading": f"Heading {n}", "text": "word " * 200,
                                                             "links": links}))
            if n:
                (d / "p" / f"{n}.html").write_text(SHELL.format(n=n))
        (d / "index.html").write_text(SHELL.format(n=0))
    return d


def rendered_count(db: Path) -> tuple[int, int]:
    """(pages, pages rendered) of a job file."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT COUNT(*), COUNT(rendered) FROM pages").fetchone()
    finally:
        conn.close()


def check_js(db: Path, pages: int) -> None:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT u.url, p.title, p.rendered FROM pages p JOIN urls u ON u.id = p.url_id "
                            "WHERE p.status = 200").fetchall()
    finally:
        conn.close()
    if len(rows) != pages:
        run.die(f"the rendered crawl stored {len(rows)} pages of {pages} (job {db})")
    for url, title, rendered in rows:
        path = url.split("/", 3)[3]
        n = 0 if not path else int(path.rsplit("/", 1)[1].split(".")[0])
        if title != f"Page {n} (by script)" or not rendered:
            run.die(f"{url} was not rendered as a browser shows it: title {title!r}, rendered {rendered!r}")


def report(res: dict[str, Any]) -> str:
    lines = []
    pairs = res["pairs"]
    if pairs:
        lines += [f"## {PAGES:,}-page bench site (static), `--concurrency {run.CONC} --per-host {run.CONC}`, "
                  f"medians of {len(pairs)} pairs", "",
                  "| run | wall | CPU | peak memory | pages/s | vs never | pages rendered |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for key in ("never", "auto"):
            ratio = statistics.median(p[key]["wall_s"] / p["never"]["wall_s"] for p in pairs)
            med = lambda k: statistics.median(p[key][k] for p in pairs)  # noqa: B023, E731
            lines.append(f"| `--render {key}` | {med('wall_s'):.2f} s | {med('cpu_pct'):.0f}% | {med('rss_mb'):.0f} MB "
                         f"| {med('pages_per_s'):,.0f} | {ratio:.3f}× | {max(p[key]['rendered'] for p in pairs)} |")
        lines += ["", "Wall time of auto over never, pair by pair: "
                  + ", ".join(f"{p['auto']['wall_s'] / p['never']['wall_s']:.3f}" for p in pairs)]
    if "js" in res:
        js = res["js"]
        lines += ["", f"## {js['pages']:,}-page site built by JavaScript, `--render always`, default concurrency", "",
                  "| wall | CPU | peak memory (process tree) | rendered pages/s | load before |",
                  "| --- | --- | --- | --- | --- |",
                  f"| {js['wall_s']:.1f} s | {js['cpu_pct']:.0f}% | {js['rss_mb']:.0f} MB | {js['pages_per_s']:.2f} "
                  f"| {js['load']} |"]
    return "\n".join(lines + run.machine_lines(res))


def main() -> None:
    ap = argparse.ArgumentParser(description="What rendering costs; see benchmarks/README.md.")
    ap.add_argument("--pairs", type=int, default=3, help="never/auto pairs on the static site, alternating (default 3; 0 skips)")
    ap.add_argument("--js-pages", type=int, default=2000, help="pages of the script-built site (default 2,000; 0 skips)")
    a = run.parse_options(ap, 8397, "the sites' first port", HERE / "results-render.json", report)
    if a is None:
        return
    crawler = run.crawler_command()
    res: dict[str, Any] = {**run.started(crawler, None, "--render"), "pairs": []}
    sites = {a.port: run.site(PAGES, 12)}
    if a.js_pages:
        sites[a.port + 1] = js_site(a.js_pages)
    with run.served("render", sites) as work:
        url = f"http://127.0.0.1:{a.port}/"
        for i in range(1, a.pairs + 1):
            pair: dict[str, Any] = {"load": run.loadavg()}
            run.say(f"pair {i}/{a.pairs}: --render never, then --render auto ...")
            for mode in ("never", "auto"):
                pair[mode] = run.run_crawler(crawler, url, PAGES, work, mode, ["--render", mode])
                pair[mode]["rendered"] = rendered_count(work / f"{mode}.db")[1]
            if pair["auto"]["rendered"]:
                run.die(f"--render auto rendered {pair['auto']['rendered']} pages of the static site (job {work}/auto.db)")
            res["pairs"].append(pair)
        if a.js_pages:
            run.say(f"crawling the {a.js_pages:,}-page script-built site with --render always ...")
            db = work / "js.db"
            load = run.loadavg()
            r = run.timed([*crawler, "crawl", f"http://127.0.0.1:{a.port + 1}/", "--db", str(db), "--render", "always",
                           "--quiet"], work / "js.log")
            check_js(db, a.js_pages)
            res["js"] = r | {"pages": a.js_pages, "pages_per_s": round(a.js_pages / r["wall_s"], 2), "load": load}
    run.save(res, a.out, report)


if __name__ == "__main__":
    main()
