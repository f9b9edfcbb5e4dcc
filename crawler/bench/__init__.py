"""``crawler bench``: what asyncio, threads and processes each buy a crawler, measured in real crawls.

    case (workload × mode) ─► bench site (own process) ─► crawl command(s) (own process trees, fresh
                              job files) ─► sampled every 50 ms: CPU, RSS, OS threads ─► table, JSON, chart

- ``site``: the generated site and its server; ``workloads``: what is measured (the cases) and the
  runs; ``measure``: how a run is measured from outside; ``fetch_models``: the blocking and asyncio
  fetch models; ``report`` and ``plot``: the table, the JSON document and the chart; ``command``:
  ``crawler bench`` itself.
- ``python -m crawler.bench`` crawls with a chosen fetch model (``crawl`` below): the one command
  the bench runs that is not ``crawler crawl``.
"""

from __future__ import annotations

from collections.abc import Sequence

from crawler.bench.fetch_models import FetchModel, transport_for


def crawl(fetch: FetchModel, concurrency: int, seeds: Sequence[str], db: str) -> int:
    """Crawl ``seeds`` into the job file ``db`` as ``crawler crawl`` would, with ``concurrency``
    requests in flight (in total and to the one host) carried by the fetch model ``fetch``. Other
    settings come from the environment (``CRAWLER_*``), as for ``crawl``. Returns the pages stored."""
    import asyncio

    from crawler import config
    from crawler.loop import event_loop_factory, raise_open_files_limit
    from crawler.scheduler import Crawl

    settings = config.load(None, {"db": db, "concurrency": concurrency, "per_host": concurrency, "workers": 1})
    raise_open_files_limit()
    job = Crawl(settings, seeds, transport=transport_for(fetch, concurrency))
    with asyncio.Runner(loop_factory=event_loop_factory(settings.event_loop)) as runner:   # as ``crawl`` does
        return runner.run(job.run()).pages
