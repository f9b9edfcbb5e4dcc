"""What structured data and the built-in fields cost the parse stage, per page, on a generated site.

    .venv/bin/python benchmarks/extraction_cost.py SITE_DIR [--pages N] [--repeat R]

SITE_DIR is a site made by the benchmark kit's ``gensite.py`` (or benchmarks/gensite.py). Every
figure is CPU time on one core, the median of R passes over the same pages read into memory:

- ``parse``: ``crawler.parser.parse`` as the crawl calls it (title, links, h1, lang, word count);
- ``tree``: lexbor's parse of the decoded text alone; ``main_text``: the main text taken out of a
  tree already parsed (what the word count costs);
- ``structured``: JSON-LD and OpenGraph/Twitter meta over a parsed tree, on the site's pages (none
  of them declare any) and on the same pages with a JSON-LD block and OpenGraph meta added;
- ``microdata``: extruct's reader on the pages with a schema.org Product in microdata added (a
  second parse, by lxml, plus extruct's walk), when extruct is installed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser

from crawler.extract import count_words, main_text, raw_main_text
from crawler.extraction.structured import structured
from crawler.parser import parse

HEADERS = {"content-type": "text/html; charset=utf-8"}
DECLARED = """<script type="application/ld+json">{"@context": "https://schema.org", "@type": "Article",
"headline": "Page of the bench site", "author": {"@type": "Person", "name": "A. Writer"},
"datePublished": "2026-12-03", "image": ["https://example.test/a.png", "https://example.test/b.png"]}</script>
<meta property="og:title" content="Page of the bench site"><meta property="og:type" content="article">
<meta property="og:image" content="https://example.test/a.png"><meta name="twitter:card" content="summary">
"""
MICRODATA = """<div itemscope itemtype="https://schema.org/Product"><h2 itemprop="name">Kettle</h2>
<img itemprop="image" src="/k.png" alt=""><p itemprop="description">A kettle that boils water.</p>
<div itemprop="offers" itemscope itemtype="https://schema.org/Offer"><span itemprop="price" content="19.99">19.99</span>
<meta itemprop="priceCurrency" content="EUR"><link itemprop="availability" href="https://schema.org/InStock"></div>
<div itemprop="aggregateRating" itemscope itemtype="https://schema.org/AggregateRating">
<span itemprop="ratingValue">4.4</span> from <span itemprop="reviewCount">89</span> reviews</div></div>
"""


def timed(runs: list[tuple[str, list[tuple[str, bytes]], Callable[[str, bytes], object]]],
          repeat: int) -> list[tuple[str, float]]:
    """Median CPU seconds per page of each run, the runs taken in turn ``repeat`` times (a machine
    shared with other work slows them all alike)."""
    passes: list[list[float]] = [[] for _ in runs]
    for _ in range(repeat):
        for times, (_name, pages, run) in zip(passes, runs, strict=True):
            start = time.process_time()
            for url, body in pages:
                run(url, body)
            times.append((time.process_time() - start) / len(pages))
    return [(name, statistics.median(times)) for (name, _pages, _run), times in zip(runs, passes, strict=True)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("site", type=Path)
    ap.add_argument("--pages", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=9)
    args = ap.parse_args()
    files = sorted(args.site.rglob("*.html"))[: args.pages]
    pages = [(f"http://127.0.0.1/{f.relative_to(args.site)}", f.read_bytes()) for f in files]
    declared = [(url, body.replace(b"</head>", DECLARED.encode() + b"</head>", 1)) for url, body in pages]
    with_microdata = [(url, body.replace(b"<main>", b"<main>" + MICRODATA.encode(), 1)) for url, body in pages]

    def tree(url: str, body: bytes) -> object:
        return LexborHTMLParser(body.decode())

    rows = timed([
        ("parse", pages, lambda url, body: parse(url, HEADERS, body)),
        ("tree", pages, tree),
        ("tree + main_text", pages, lambda url, body: main_text(LexborHTMLParser(body.decode()))),
        ("tree + raw main text + count_words", pages,
         lambda url, body: count_words(raw_main_text(LexborHTMLParser(body.decode())))),
        ("tree + structured (none declared)", pages, lambda url, body: structured(LexborHTMLParser(body.decode()), url)),
        ("tree, pages with JSON-LD and OpenGraph", declared, tree),
        ("tree + structured, pages with JSON-LD and OpenGraph", declared,
         lambda url, body: structured(LexborHTMLParser(body.decode()), url)),
        ("parse, pages with microdata", with_microdata, lambda url, body: parse(url, HEADERS, body)),
        ("tree, pages with microdata", with_microdata, tree),
        ("tree + structured without microdata, pages with microdata", with_microdata,
         lambda url, body: structured(LexborHTMLParser(body.decode()), url, microdata=False)),
        ("tree + structured with microdata, pages with microdata", with_microdata,
         lambda url, body: structured(LexborHTMLParser(body.decode()), url)),
    ], args.repeat)
    print(f"{len(pages)} pages of {args.site}, median of {args.repeat} passes, "
          f"CPU time per page (Python {sys.version.split()[0]})")
    for name, seconds in rows:
        print(f"  {name:<60} {seconds * 1e6:8.0f} µs")


if __name__ == "__main__":
    main()
