"""Job files written straight through the schema, as a crawl would have left them, for the tests
that read a job back (export, stats, the report, output) without crawling anything."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from crawler.storage.schema import DONE, EXCLUDED, LEASED, PENDING, SCHEMA


def small_job(path: Path, rows: int = 3) -> Path:
    """A job file written straight through the schema: ``rows`` pages of status 200."""
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    for n in range(rows):
        conn.execute("INSERT INTO urls (id, url, host, depth, state, exclusion) VALUES (?, ?, 'a.test', 0, 2, NULL)", (n + 1, f"http://a.test/{n}"))
        conn.execute("INSERT INTO pages (url_id, status, title, fetched_at) VALUES (?, 200, ?, ?)",
                     (n + 1, f"page {n}", f"2026-11-29T00:00:0{n}Z"))
    conn.commit()
    conn.close()
    return path


# host: (pages as (status, error), pending, leased, excluded as exclusion codes, row of the hosts table)
HOSTS: dict[str, tuple[list[tuple[int | None, str | None]], int, int, list[str], tuple[Any, ...] | None]] = {
    "busy.test": ([(200, None), (200, None), (404, "http_error")], 2, 1, [], ("active", None, None)),
    "done.test": ([(200, None)] * 5, 0, 0, ["nofollow"], ("active", None, None)),
    "dead.test:8080": ([(None, "connect")], 1, 0, [], ("parked", "2026-11-30T10:00:00Z", "connect")),
    "capped.test": ([(200, None)] * 2, 0, 0, ["host_budget"] * 3, ("budget", None, None)),
    "capped-no-row.test": ([(200, None)], 0, 0, ["host_budget"], None),
    "new.test": ([], 2, 0, [], None),
    "elsewhere.test": ([], 0, 0, ["off_host", "off_host"], None),   # only seen in links: not a host of the job
}


def hosts_job(path: Path, hosts: dict[str, Any] = HOSTS) -> Path:
    """A job file written straight through the schema, as a crawl would have left it."""
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    next_id = iter(range(1, 1_000_000))

    def url(host: str, state: int, exclusion: str | None = None) -> int:
        n = next(next_id)
        conn.execute("INSERT INTO urls (id, url, host, depth, state, exclusion) VALUES (?, ?, ?, 0, ?, ?)",
                     (n, f"http://{host}/{n}", host, state, exclusion))
        return n

    for host, (pages, pending, leased, excluded, row) in hosts.items():
        for status, error in pages:
            conn.execute("INSERT INTO pages (url_id, status, error, fetched_at) VALUES (?, ?, ?, '2026-11-29T00:00:00Z')",
                         (url(host, DONE), status, error))
        for _ in range(pending):
            url(host, PENDING)
        for _ in range(leased):
            url(host, LEASED)
        for code in excluded:
            url(host, EXCLUDED, code)
        if row is not None:
            conn.execute("INSERT INTO hosts VALUES (?, ?, ?, ?, ?)", (host, len(pages), *row))
    conn.commit()
    conn.close()
    return path
