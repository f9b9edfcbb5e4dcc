"""``python -m crawler.bench --fetch MODEL --concurrency N --db PATH URL ...``: one crawl with a fetch
model of the bench (``crawler.bench.fetch_models``); what ``crawler bench`` runs for its fetch rows."""

from __future__ import annotations

import argparse

from crawler.bench import crawl
from crawler.bench.fetch_models import FETCH_MODELS


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m crawler.bench", description=__doc__)
    parser.add_argument("urls", nargs="+", help="seed URLs")
    parser.add_argument("--fetch", choices=FETCH_MODELS, required=True)
    parser.add_argument("--concurrency", type=int, required=True, help="requests in flight")
    parser.add_argument("--db", required=True, help="the job file")
    args = parser.parse_args()
    pages = crawl(args.fetch, args.concurrency, args.urls, args.db)
    print(f"{pages} pages")


if __name__ == "__main__":
    main()
