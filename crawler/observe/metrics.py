"""``--metrics HOST:PORT``: a Prometheus endpoint while a crawl runs, through the official client
library (the extra ``crawler[metrics]``), served by its own thread from a registry of this run's
(no global state: two crawls in one process do not share figures).

What the run already counts (``RunStats``: pages, retries, requests in flight, the queue, hosts
active) is read when Prometheus scrapes, so it costs the crawl nothing; what it does not (errors by
code, bytes, fetch latency, hosts backed off and parked) is counted here as pages are stored.

Where it listens: loopback unless the user says otherwise in so many words. HOST must be an IP
address or ``localhost``; a host name is refused (it could resolve to an address the user did not
mean to expose), so listening on every interface is ``0.0.0.0:9108`` typed out, never implied.
``:9108`` and ``9108`` mean 127.0.0.1:9108.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from crawler.errors import UsageError
from crawler.models import PageRecord
from crawler.observe.base import HostState, Observer

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client.metrics_core import Metric

    from crawler.run_stats import RunStats

POLL = 0.05   # seconds between the server thread's looks for a request to stop
INSTALL = "--metrics needs prometheus_client: pip install 'crawler[metrics]'"


def listen_address(spec: str) -> tuple[str, int]:
    """``HOST:PORT`` as (address, port): HOST an IP address (``[::1]`` for IPv6) or ``localhost``,
    or left out for 127.0.0.1. Raises ``UsageError`` naming the flag otherwise."""
    host, sep, port_text = spec.strip().rpartition(":")
    if not sep:
        host, port_text = "", spec.strip()
    if not port_text.isdigit() or int(port_text) > 65535:
        raise UsageError(f"--metrics takes HOST:PORT (127.0.0.1:9108), got {spec!r}")
    host = host.strip("[]") if host.startswith("[") else host
    if host in ("", "localhost"):
        return "127.0.0.1", int(port_text)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(f"--metrics takes an IP address, not a host name ({host!r}): 127.0.0.1:9108, or "
                         f"0.0.0.0:9108 to listen on every interface") from None
    return str(address), int(port_text)


def check_available() -> None:
    """Before the job file or a worker: the client library is installed, or one line says what to install."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise UsageError(INSTALL) from None


class Metrics(Observer):
    """This run's figures in a registry of its own; ``serve`` puts them on an HTTP endpoint."""

    def __init__(self, stats: RunStats) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram
        self.registry = CollectorRegistry()
        self._stats = stats
        self._errors = Counter("crawler_errors", "Pages stored with an error, by error code (crawler stats names them)",
                               ["code"], registry=self.registry)
        self._bytes = Counter("crawler_bytes", "Body bytes received for the pages stored", registry=self.registry)
        self._latency = Histogram("crawler_fetch_seconds", "Seconds from a request's start to its last byte",
                                  registry=self.registry)
        self._states: dict[str, HostState] = {}
        self.backoff = 0    # hosts backed off now (slowed by 429, 503, timeouts or slow answers)
        self.parked = 0     # hosts parked in this run and not heard to answer well since
        self.registry.register(_RunFigures(stats, self))

    def page(self, url: str, record: PageRecord) -> None:
        if record.error is not None:
            self._errors.labels(record.error).inc()
        if record.size:
            self._bytes.inc(record.size)
        if record.elapsed_ms is not None:
            self._latency.observe(record.elapsed_ms / 1000)

    def host(self, host: str, state: HostState, reason: str | None, until: str | None) -> None:
        before = self._states.get(host, "active")
        if before == state:
            return
        self._states[host] = state
        # Two ints the scrape thread reads: no dict of ours is iterated across threads.
        self.backoff += (state == "backoff") - (before == "backoff")
        self.parked += (state == "parked") - (before == "parked")

    def serve(self, address: str, port: int) -> Served:
        """Listen on ``address``:``port`` in a thread; a port in use is a ``UsageError`` (exit 2).

        The client library's own ``start_http_server``, but for the thread: its server looks for a
        request to stop every 0.5 s, so closing it at the end of a crawl waited up to half a second
        of the crawl's wall time (measured: docs/performance.md); this one looks every 0.05 s."""
        import socket
        from wsgiref.simple_server import WSGIRequestHandler, make_server

        from prometheus_client import make_wsgi_app
        from prometheus_client.exposition import ThreadingWSGIServer

        class Quiet(WSGIRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                """No line on stderr for each scrape."""

        class Server(ThreadingWSGIServer):
            address_family = socket.AF_INET6 if ":" in address else socket.AF_INET

        try:
            server = make_server(address, port, make_wsgi_app(self.registry), Server, handler_class=Quiet)
        except OSError as err:
            raise UsageError(f"--metrics {address}:{port}: cannot listen there: {err.strerror or err}") from None
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": POLL}, daemon=True,
                                  name="crawler-metrics")
        thread.start()
        return Served(server, thread)


class Served:
    """The endpoint's server and thread; ``close`` stops both."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self.server, self.thread = server, thread

    @property
    def url(self) -> str:
        host, port = str(self.server.server_address[0]), int(self.server.server_address[1])
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


class _RunFigures:
    """What ``RunStats`` counts anyway, read at each scrape (in the server's thread: plain ints)."""

    def __init__(self, stats: RunStats, metrics: Metrics) -> None:
        self._stats, self._metrics = stats, metrics

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
        stats = self._stats
        yield CounterMetricFamily("crawler_pages", "Pages stored in this run (errors' records included)",
                                  value=stats.pages)
        yield CounterMetricFamily("crawler_retries", "Requests retried in this run", value=stats.retries)
        yield CounterMetricFamily("crawler_unchanged", "Pages that answered 304 to a conditional recrawl",
                                  value=stats.unchanged)
        yield GaugeMetricFamily("crawler_in_flight", "Visits under way (requests, or bodies being parsed)",
                                value=stats.in_flight)
        yield GaugeMetricFamily("crawler_queued", "URLs queued for this run", value=max(stats.queued, 0))
        hosts = GaugeMetricFamily("crawler_hosts", "Hosts by state: active (a request in flight), backoff "
                                  "(slowed down), parked (no requests for a while)", labels=["state"])
        hosts.add_metric(["active"], stats.hosts_active)
        hosts.add_metric(["backoff"], self._metrics.backoff)
        hosts.add_metric(["parked"], self._metrics.parked)
        yield hosts
