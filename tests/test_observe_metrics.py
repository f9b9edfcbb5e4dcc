"""``--metrics HOST:PORT``: a Prometheus endpoint scraped with real HTTP requests while a crawl runs
(crawler.observe.metrics), with one process and with worker processes, and the rules of where it
may listen."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis_server import free_port
from site_server import Site, Slow, html, reply

from crawler.config import Settings
from crawler.errors import UsageError
from crawler.observe.metrics import Metrics, listen_address
from crawler.observe.watch import watching
from crawler.run_stats import RunStats
from crawler.scheduler import Crawl


def slow_site(site: Site, pages: int, delay: float) -> None:
    """A chain of ``pages`` pages after the home page, each answering after ``delay`` seconds."""
    site.routes["/"] = html("Home", "/p/0")
    for i in range(pages):
        site.routes[f"/p/{i}"] = Slow(delay, html(f"Page {i}", f"/p/{i + 1}" if i + 1 < pages else "/"))


def scrape(port: int) -> dict[str, float]:
    """``/metrics`` read over HTTP, by the official parser: sample name (with its labels) -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode("utf-8")
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


class Scraper:
    """Scrapes ``crawler_pages_total`` every 50 ms in a thread while the body runs; ``seen`` is every value read."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.seen: list[float] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.is_set():
            with contextlib.suppress(urllib.error.URLError, ConnectionError):   # not listening yet, or no more
                self.seen.append(scrape(self.port)["crawler_pages_total"])
            self._done.wait(0.05)

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


@contextlib.contextmanager
def crawl_watched(settings: Settings, seeds: list[str]) -> Iterator[tuple[RunStats, Scraper]]:
    """Run a crawl in this process with its endpoint up, scraped meanwhile; yields (its stats, the
    scraper) after the run, the endpoint still up."""
    port = int(settings.metrics.rpartition(":")[2])
    crawl = Crawl(settings, seeds)
    with watching(settings, crawl.stats, seeds, lambda line: None), Scraper(port) as scraper:
        stats = asyncio.run(crawl.run())
        yield stats, scraper


def grew(seen: list[float]) -> bool:
    """Read at least three distinct values, never going down."""
    return seen == sorted(seen) and len(set(seen)) >= 3


@pytest.mark.parametrize("workers", [1, 2])
def test_the_page_counter_grows_during_a_crawl_and_ends_at_the_jobs_count(
        site: Site, cli: Any, db: Path, workers: int) -> None:
    slow_site(site, 12, delay=0.08)
    port = free_port()
    settings = Settings(db=str(db), metrics=f"127.0.0.1:{port}", workers=workers, concurrency=2, per_host=2)
    with crawl_watched(settings, [site.url("/")]) as (stats, scraper):
        final = scrape(port)
        assert grew(scraper.seen), scraper.seen
        # With worker processes this process fetches no page: every page it counts is a worker's.
        assert final["crawler_pages_total"] == stats.pages == cli.stats(db)["pages"] == 13


def test_errors_bytes_latency_and_parked_hosts_are_counted(site: Site, cli: Any, db: Path) -> None:
    site.routes.update({"/": html("Home", "/a", "/gone"), "/a": html("A"), "/gone": reply(404, "no")})
    closed = free_port()   # nothing listens there: its host is parked (connect)
    settings = Settings(db=str(db), metrics=f"127.0.0.1:{free_port()}", workers=1, retries=0, allow_private=True)
    with crawl_watched(settings, [site.url("/"), f"http://127.0.0.1:{closed}/"]):
        figures = scrape(int(settings.metrics.rpartition(":")[2]))
    records = cli.export_by_url(db)
    assert figures["crawler_pages_total"] == len(records) == 4
    assert figures["crawler_errors_total{code=http_error}"] == 1
    assert figures["crawler_errors_total{code=connect}"] == 1
    assert figures["crawler_bytes_total"] == sum(r["bytes"] or 0 for r in records.values())
    assert figures["crawler_fetch_seconds_count"] == 3   # the connect failure had no answer to time
    assert figures["crawler_hosts{state=parked}"] == 1
    assert figures["crawler_hosts{state=backoff}"] == 0
    assert figures["crawler_in_flight"] == figures["crawler_queued"] == 0


def test_a_crawl_with_two_workers_serves_the_whole_crawls_figures_on_the_command_line(
        site: Site, cli: Any, db: Path) -> None:
    slow_site(site, 12, delay=0.08)
    port = free_port()
    proc = cli.popen("crawl", site.url("/"), "--db", db, "--workers", 2, "--metrics", f"127.0.0.1:{port}",
                     "--concurrency", 2)
    try:
        with Scraper(port) as scraper:
            err = proc.communicate(timeout=60)[1]
    finally:
        cli.stop(proc)
    assert proc.returncode == 0, err
    assert f"crawler: metrics at http://127.0.0.1:{port}/metrics" in err.splitlines()
    assert grew(scraper.seen), scraper.seen
    assert max(scraper.seen) <= cli.stats(db)["pages"] == 13


def test_a_port_in_use_is_one_line_and_exit_2_before_the_crawl_starts(site: Site, cli: Any, db: Path) -> None:
    site.routes["/"] = html("Home")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = cli.fails(2, "crawl", site.url("/"), "--db", db, "--metrics", f"127.0.0.1:{port}")
    assert line.startswith(f"crawler: error: --metrics 127.0.0.1:{port}: cannot listen there: ")
    assert site.count("/") == 0
    assert not db.exists()


def test_a_host_name_is_refused_so_that_only_an_address_typed_out_listens_beyond_loopback(
        cli: Any, db: Path) -> None:
    line = cli.fails(2, "crawl", "http://127.0.0.1:9/", "--db", db, "--metrics", "metrics.example:9108")
    assert line == ("crawler: error: --metrics takes an IP address, not a host name ('metrics.example'): "
                    "127.0.0.1:9108, or 0.0.0.0:9108 to listen on every interface")


@pytest.mark.parametrize(("spec", "address"), [
    ("127.0.0.1:9108", ("127.0.0.1", 9108)), (":9108", ("127.0.0.1", 9108)), ("9108", ("127.0.0.1", 9108)),
    ("localhost:9108", ("127.0.0.1", 9108)), ("0.0.0.0:9108", ("0.0.0.0", 9108)), ("[::1]:9108", ("::1", 9108)),
    ("[::]:9108", ("::", 9108)), ("10.1.2.3:0", ("10.1.2.3", 0)),
])
def test_where_metrics_listen(spec: str, address: tuple[str, int]) -> None:
    assert listen_address(spec) == address


@pytest.mark.parametrize("spec", ["", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000", "example.com:9108", "[::1]"])
def test_what_metrics_refuse(spec: str) -> None:
    with pytest.raises(UsageError, match="--metrics"):
        listen_address(spec)


def test_without_the_client_library_one_line_names_the_extra(cli: Any, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)   # import fails as when not installed
    line = cli.fails(2, "crawl", "http://127.0.0.1:9/", "--db", db, "--metrics", "127.0.0.1:9108")
    assert line == "crawler: error: --metrics needs prometheus_client: pip install 'crawler[metrics]'"


def test_two_runs_in_one_process_do_not_share_figures(site: Site, cli: Any, tmp_path: Path) -> None:
    site.routes.update({"/": html("Home", "/a"), "/a": html("A")})
    for name in ("one.db", "two.db"):
        settings = Settings(db=str(tmp_path / name), metrics=f"127.0.0.1:{free_port()}", workers=1)
        with crawl_watched(settings, [site.url("/")]):
            assert scrape(int(settings.metrics.rpartition(":")[2]))["crawler_pages_total"] == 2


def test_hosts_by_state_follow_what_the_run_says_of_each_host() -> None:
    metrics = Metrics(RunStats())
    metrics.host("a", "backoff", "429: 1 in flight, 2 s apart", None)
    metrics.host("b", "backoff", "timeout: 1 in flight, 2 s apart", None)
    metrics.host("b", "backoff", "timeout: 1 in flight, 4 s apart", None)   # still one host backed off
    metrics.host("c", "parked", "connect", "2026-12-03T12:00:00Z")
    assert (metrics.backoff, metrics.parked) == (2, 1)
    metrics.host("a", "parked", "429, failing", "2026-12-03T12:00:00Z")
    metrics.host("b", "active", None, None)
    assert (metrics.backoff, metrics.parked) == (0, 2)


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_the_endpoint_answers_on_the_address_given_and_its_thread_ends_with_it(address: str) -> None:
    if address == "::1" and not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    metrics = Metrics(RunStats())
    served = metrics.serve(address, 0)
    with urllib.request.urlopen(served.url, timeout=10) as answer:
        assert b"crawler_pages_total 0.0" in answer.read()
    assert served.thread.is_alive()
    served.close()
    assert not served.thread.is_alive()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(served.url, timeout=5)
