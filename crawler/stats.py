"""What a job file holds: pages, statuses, errors, hosts, queue left. Read-only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crawler.storage.read import JobReader


def job_stats(path: str | Path) -> dict[str, Any]:
    """A summary of one job file, as plain JSON-ready values."""
    with JobReader(path) as job:
        return job.summary()


def render_text(stats: dict[str, Any]) -> str:
    """The stats as aligned plain text, one fact a line."""
    lines = [
        f"job          {stats['db']} ({stats['state']})",
        f"pages        {stats['pages']}",
        "statuses     " + (", ".join(f"{k}: {v}" for k, v in stats["statuses"].items()) or "-"),
        "errors       " + (", ".join(f"{k}: {v}" for k, v in stats["errors"].items()) or "-"),
        f"hosts        {stats['hosts']}",
        f"bytes        {stats['bytes']}",
        f"duplicates   {stats['duplicates']}",
        f"links        {stats['links']}",
        f"queue        {stats['queue']['pending']} pending, {stats['queue']['excluded']} excluded (never fetched)",
        f"fetched      {stats['first_fetch'] or '-'} .. {stats['last_fetch'] or '-'}",
        f"pass {stats['pass']:<7} " + ", ".join(f"{k} {v}" for k, v in stats["this_pass"].items()),
    ]
    return "\n".join(lines)
