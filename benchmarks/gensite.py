#!/usr/bin/env python3
"""Generate a deterministic static site for crawl benchmarks (standard library only).

usage: gensite.py OUTDIR [--pages N] [--links K] [--kb S] [--seed X]

Every page is reachable from index.html (a chain 0 -> 1 -> ... plus K random links a page).
Pages also carry fragment and relative duplicates, an out-of-scope link, a mailto link and,
one page in 50, a link to a missing page (404), so a crawler must canonicalize and scope.
A full crawl of a site made with --pages N stores N+1 pages with status 200 (index.html and
p/0..N-1) and N/50 with status 404. The same arguments always give the same bytes.
index.html is written last: a site without it is incomplete.
"""
import argparse
import os
import random

TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Page {i} of the bench site</title>
<meta name="description" content="Synthetic page {i} for crawl benchmarks">
</head><body><h1>Page {i}</h1>
<nav>{nav}</nav>
<main>{paras}</main>
<footer>{ext}</footer></body></html>
"""

WORDS = ["asyncio", "crawler", "thread", "process", "socket", "event", "loop", "semaphore", "queue",
         "fetch", "parse", "store", "export", "frontier", "politeness", "robots", "sitemap", "link"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--pages", type=int, default=5000)
    ap.add_argument("--links", type=int, default=20, help="random links a page (default 20)")
    ap.add_argument("--kb", type=int, default=12, help="approximate page size in KB (default 12)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    os.makedirs(os.path.join(a.out, "p"), exist_ok=True)
    para = " ".join(rnd.choice(WORDS) for _ in range(180))
    nparas = max(1, a.kb * 1024 // (len(para) + 8))
    for i in range(a.pages):
        targets = {(i + 1) % a.pages} | {rnd.randrange(a.pages) for _ in range(a.links)}
        nav = [f'<a href="/p/{t}.html">page {t}</a>' for t in sorted(targets)]
        nav.append(f'<a href="/p/{rnd.randrange(a.pages)}.html#section">fragment dup</a>')
        nav.append(f'<a href="../p/{rnd.randrange(a.pages)}.html">relative</a>')
        if i % 50 == 0:
            nav.append(f'<a href="/missing/{i}.html">missing</a>')
        ext = f'<a href="http://elsewhere.invalid/{i}">out of scope</a> <a href="mailto:x@example.invalid">mail</a>'
        paras = "\n".join(f"<p>{para}</p>" for _ in range(nparas))
        with open(os.path.join(a.out, "p", f"{i}.html"), "w") as f:
            f.write(TEMPLATE.format(i=i, nav=" ".join(nav), paras=paras, ext=ext))
    with open(os.path.join(a.out, "index.html"), "w") as f:
        f.write(TEMPLATE.format(i="index", nav='<a href="/p/0.html">start</a>', paras="", ext=""))
    print(f"{a.pages + 1} pages in {a.out}")


if __name__ == "__main__":
    main()
