"""What reading references costs the parse stage, per page, on a folder of real HTML (Debian's Python
docs by default) and on the CSS files beside it.

    .venv/bin/python benchmarks/references_cost.py [DIR] [--repeat R]

Every figure is CPU time on one core, the median of R passes over the same files read into memory:

- ``parse``: ``crawler.parser.parse`` as the crawl calls it (references included);
- ``tree``: lexbor's parse of the text alone;
- ``references``: ``crawler.references.html_references`` over a tree already parsed (the selector
  pass, srcset, <style> blocks and style="" attributes through ``crawler.css_refs``);
- ``css``: ``crawler.css_refs.css_references`` over every .css file under DIR, per file;
- ``tinycss2``: the same references through tinycss2's tokenizer, per file, when it is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser

from crawler.css_refs import css_references
from crawler.parser import parse
from crawler.references import html_references


def median_ms(fn: Callable[[], object], count: int, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        started = time.process_time()
        fn()
        runs.append((time.process_time() - started) * 1000 / max(count, 1))
    return statistics.median(runs)


def tinycss2_references(css: str) -> list[str]:
    import tinycss2  # type: ignore[import-not-found]  # optional: only to compare

    found: list[str] = []

    def walk(tokens: list[object]) -> None:
        for token in tokens:
            kind = getattr(token, "type", "")
            if kind == "url":
                found.append(token.value)  # type: ignore[attr-defined]
            elif kind == "function" and token.lower_name == "url":  # type: ignore[attr-defined]
                found.extend(t.value for t in token.arguments if getattr(t, "type", "") == "string")  # type: ignore[attr-defined]
            elif kind == "at-rule" and token.lower_at_keyword == "import":  # type: ignore[attr-defined]
                walk(token.prelude)  # type: ignore[attr-defined]
                found.extend(t.value for t in token.prelude if getattr(t, "type", "") == "string")  # type: ignore[attr-defined]
            for inner in ("prelude", "content", "arguments"):
                if kind != "at-rule" or inner != "prelude":
                    walk(getattr(token, inner, None) or [])
    walk(tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True))
    return found


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", nargs="?", default="/usr/share/doc/python3.11/html")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    root = Path(args.dir)
    pages = [(f"http://docs.test/{p.relative_to(root)}", p.read_bytes()) for p in sorted(root.rglob("*.html"))]
    sheets = [p.read_text("utf-8", "replace") for p in sorted(root.rglob("*.css"))]
    headers = {"content-type": "text/html; charset=utf-8"}
    texts = [body.decode("utf-8", "replace") for _, body in pages]
    trees = [LexborHTMLParser(text) for text in texts]
    refs = sum(len(html_references(tree)) for tree in trees)
    print(f"{len(pages)} pages, {refs} references ({refs / len(pages):.1f} a page); "
          f"{len(sheets)} stylesheets, {sum(map(len, sheets)) / 1024:.0f} KB")
    figures = {
        "parse": median_ms(lambda: [parse(u, headers, b) for u, b in pages], len(pages), args.repeat),
        "tree": median_ms(lambda: [LexborHTMLParser(t) for t in texts], len(pages), args.repeat),
        "references": median_ms(lambda: [html_references(t) for t in trees], len(pages), args.repeat),
        "css": median_ms(lambda: [css_references(s) for s in sheets], len(sheets), args.repeat),
    }
    with contextlib.suppress(ImportError):
        figures["tinycss2"] = median_ms(lambda: [tinycss2_references(s) for s in sheets], len(sheets), args.repeat)
    for name, ms in figures.items():
        print(f"{name:<11} {ms:8.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
