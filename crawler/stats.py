"""What a job file holds: pages, statuses, errors, hosts, queue left. Read-only; in text, whatever a
server may have written (host names, error messages) has its control characters escaped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crawler.printable import printable
from crawler.storage.read import JobReader
from crawler.wording import plural, size


def job_stats(path: str | Path) -> dict[str, Any]:
    """A summary of one job file, as plain JSON-ready values."""
    with JobReader(path) as job:
        return job.summary()


def nothing_reached(path: str | Path) -> str | None:
    """The line that says why a crawl exits 4: no seed could be fetched at all (``seeds_unreached``);
    None when one was, or some seed is still to try."""
    with JobReader(path) as job:
        failed = job.seeds_unreached()
    if failed is None:
        return None
    counts = ", ".join(f"{n:,} {error}" for error, n, _, _ in failed)
    _, _, url, message = failed[0]
    return printable(f"no seed could be fetched ({counts}): {url}: {message or failed[0][0]}")


def render_text(stats: dict[str, Any]) -> str:
    """The stats as aligned plain text, one fact a line: counts with thousands separators and the bytes
    in KB, MB or GB, as the crawl's summary and the report print them (``--json`` keeps raw numbers)."""
    queue = stats["queue"]
    lines = [
        f"job          {stats['db']} ({stats['state']})",
        f"pages        {stats['pages']:,}",
        "statuses     " + (", ".join(f"{k}: {v:,}" for k, v in stats["statuses"].items()) or "-"),
        "errors       " + (", ".join(f"{k}: {v:,}" for k, v in stats["errors"].items()) or "-"),
        f"hosts        {stats['hosts']:,}",
        f"bytes        {size(stats['bytes'])}",
        f"duplicates   {stats['duplicates']:,}",
        f"links        {stats['links']:,}",
        f"queue        {queue['pending']:,} pending, {queue['excluded']:,} excluded (never fetched)",
        f"fetched      {stats['first_fetch'] or '-'} .. {stats['last_fetch'] or '-'}",
        f"pass {stats['pass']:<7} " + ", ".join(f"{k} {v:,}" for k, v in stats["this_pass"].items()),
    ]
    if (rendered := stats.get("rendered")) and rendered["pages"]:   # --render
        lines.insert(8, f"rendered     {plural(rendered['pages'], 'page')} by a browser, "
                        f"{plural(rendered['blocked'], 'request')} of theirs blocked")
    if references := references_text(stats.get("references") or {}):   # checks and requisites, apart from pages
        lines.insert(2, f"references   {references}")
    return "\n".join(printable(line) for line in lines)


def references_text(references: dict[str, dict[str, int]]) -> str:
    """``12 checked (2 broken), 30 requisites (0 broken)``: link targets checked and page requisites
    fetched, apart from pages; empty when there are none."""
    words = {"check": "checked", "requisite": "requisites"}
    return ", ".join(f"{counts['fetched']:,} {words.get(kind, kind)} ({counts['broken']:,} broken)"
                     for kind, counts in references.items())


# The text table shows this many hosts, most pages first; --json lists them all.
HOSTS_SHOWN = 50


def job_hosts(path: str | Path, limit: int | None = None) -> tuple[list[dict[str, Any]], int]:
    """The job's hosts, most pages first (the first ``limit`` of them), and how many it has in all."""
    with JobReader(path) as job:
        return job.hosts(limit), job.host_count()


def render_hosts(hosts: list[dict[str, Any]], total: int) -> str:
    """The hosts as a table with aligned columns, and a closing line for the hosts left out."""
    rows = [("host", "pages", "errors", "queued", "state")]
    rows += [(printable(h["host"]), f"{h['pages']:,}", f"{h['errors']:,}", f"{h['queued']:,}", printable(_state_text(h)))
             for h in hosts]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}  {r[4]}" for r in rows]
    if not hosts:
        lines.append("(no hosts yet)")
    if total > len(hosts):
        lines.append(f"... and {total - len(hosts):,} more hosts (--json lists all {total:,})")
    return "\n".join(lines)


def _state_text(host: dict[str, Any]) -> str:
    if host["state"] == "parked":
        return f"parked until {host['parked_until'] or '-'} ({host['parked_error'] or 'no error recorded'})"
    if host["state"] == "backed_off":
        return f"backed off ({host['parked_error'] or 'no reason recorded'})"
    return "budget reached" if host["state"] == "budget_reached" else str(host["state"])


def shared_stats(url: str, job: str, *, as_json: bool) -> str:
    """A shared frontier's view of job ``job``: queued, leased, done, workers alive, every host."""
    import asyncio
    import dataclasses
    import json

    from crawler.errors import UsageError
    from crawler.frontier.redis import RedisFrontier
    from crawler.frontier.redis_stats import JobStats

    if not job:
        raise UsageError("--frontier needs the job's name: --job NAME")

    async def read() -> JobStats:
        async with RedisFrontier(url, job, "stats") as frontier:
            if not await frontier.started():
                raise UsageError(f"no job {job!r} at {frontier.address}")
            return await frontier.stats()

    found = asyncio.run(read())
    if as_json:
        return json.dumps(dataclasses.asdict(found), indent=2)
    lines = [f"job          {job} at {url}",
             f"queue        {found.queued:,} queued, {found.leased:,} leased, {found.done:,} done",
             f"leases       {found.reclaimed:,} expired and taken back, {found.refused:,} late results refused",
             f"workers      {found.workers_alive} alive"]
    rows = [("host", "queued", "in flight", "fetched", "state")]
    rows += [(printable(h.host), f"{h.queued:,}", f"{h.in_flight:,}", f"{h.fetched:,}",
              printable(h.state + (f" until {h.until} ({h.error})" if h.state == "parked" else "")))
             for h in sorted(found.hosts, key=lambda h: -h.fetched)[:HOSTS_SHOWN]]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines += [f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}  {r[4]}" for r in rows]
    if len(found.hosts) > HOSTS_SHOWN:
        lines.append(f"... and {len(found.hosts) - HOSTS_SHOWN:,} more hosts (--json lists all)")
    return "\n".join(lines)
