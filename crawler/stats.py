"""What a job file holds: pages, statuses, errors, hosts, queue left. Read-only, plain sqlite3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crawler.storage import open_readonly


def job_stats(path: str | Path) -> dict[str, Any]:
    """A summary of one job file, as plain JSON-ready values."""
    conn = open_readonly(path)
    try:
        def one(sql: str) -> Any:
            return conn.execute(sql).fetchone()[0]

        meta = {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM meta")}
        states = dict(conn.execute("SELECT state, COUNT(*) FROM urls GROUP BY state").fetchall())
        crawl_pass = int(meta.get("pass", 1))
        changes = dict(conn.execute(
            "SELECT change, COUNT(*) FROM pages WHERE pass = ? GROUP BY change", (crawl_pass,)).fetchall())
        return {
            "db": str(path),
            "state": meta.get("state", "new"),
            "pages": one("SELECT COUNT(*) FROM pages"),
            "statuses": {str(s): n for s, n in conn.execute(
                "SELECT status, COUNT(*) FROM pages WHERE status IS NOT NULL GROUP BY status ORDER BY status")},
            "errors": dict(conn.execute(
                "SELECT error, COUNT(*) FROM pages WHERE error IS NOT NULL GROUP BY error ORDER BY 2 DESC")),
            "hosts": one("SELECT COUNT(DISTINCT host) FROM urls WHERE state IN (0, 1, 2)"),
            "bytes": one("SELECT COALESCE(SUM(bytes), 0) FROM pages"),
            "duplicates": one("SELECT COUNT(*) FROM pages WHERE duplicate_of IS NOT NULL"),
            "links": one("SELECT COUNT(*) FROM links"),
            "queue": {"pending": states.get(0, 0) + states.get(1, 0), "excluded": states.get(3, 0)},
            "pass": crawl_pass,
            "this_pass": {"fetched": sum(changes.values()),
                          **{k: changes.get(k, 0) for k in ("new", "unchanged", "changed", "gone")}},
            "first_fetch": one("SELECT MIN(fetched_at) FROM pages"),
            "last_fetch": one("SELECT MAX(fetched_at) FROM pages"),
        }
    finally:
        conn.close()


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
