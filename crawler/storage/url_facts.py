"""What a job knows of one canonical URL, for ``crawler explain``: its frontier row, the page that
first linked it, its latest fetch and its host's state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from crawler.storage.schema import DONE, EXCLUDED, LEASED, PENDING, stored_time

if TYPE_CHECKING:
    from crawler.storage.read import JobReader


def url_facts(reader: JobReader, url: str) -> dict[str, Any] | None:
    """What the job knows of one canonical URL, for ``crawler explain``; None if it never saw it.

    ``state`` (pending, leased, done, excluded), ``exclusion`` and ``detail``, ``depth``,
    ``first_linked_from`` (the page that first linked it: recorded since schema 5, else the
    earliest stored link to it), ``lastmod`` (from a sitemap), ``page`` (its latest fetch) and
    ``host`` (the frontier's row for its host)."""
    row = reader._all("SELECT id, host, depth, state, exclusion, source, detail, lastmod FROM urls WHERE url = ?",
                    (url,))
    if not row:
        return None
    url_id, host, depth, state, exclusion, source, detail, lastmod = row[0]
    if source is None:
        source = reader._one("SELECT MIN(source_id) FROM links WHERE target = ?", (url,))
    linked_from = reader._all("SELECT u.url, COALESCE(l.kind, 'page') FROM urls u LEFT JOIN links l "
                            "ON l.source_id = u.id AND l.target = ? WHERE u.id = ?", (url, source)) \
        if source is not None else []
    page_row = reader._all(
        "SELECT p.status, p.fetched_at, p.final_url, p.error, p.error_message, p.canonical, p.noindex, "
        "(SELECT url FROM urls d WHERE d.id = p.duplicate_of), p.pass, p.rendered, p.render_blocked, "
        "p.revisit_interval, p.due_at, COALESCE(p.fetched_as, 'page') FROM pages p WHERE p.url_id = ?", (url_id,))
    page = None
    if page_row:
        (status, fetched_at, final_url, error, message, canonical, noindex, duplicate_of, crawl_pass, rendered,
         render_blocked, revisit_interval, due_at, fetched_as) = page_row[0]
        page = {"status": status, "fetched_at": fetched_at, "final_url": final_url, "error": error,
                "error_message": message, "canonical": canonical, "noindex": bool(noindex),
                "duplicate_of": duplicate_of, "pass": crawl_pass, "rendered": rendered,
                "render_blocked": render_blocked or 0, "revisit_interval": revisit_interval,
                "due_at": None if due_at is None else stored_time(datetime.fromtimestamp(due_at, UTC)),
                "fetched_as": fetched_as,
                "earlier_fetches": reader._one("SELECT COUNT(*) FROM history WHERE url_id = ?", (url_id,))}
    host_row = reader._all("SELECT state, fetched, until, error FROM hosts WHERE host = ?", (host,))
    states = {PENDING: "pending", LEASED: "leased", DONE: "done", EXCLUDED: "excluded"}
    return {
        "url": url, "state": states.get(state, str(state)), "depth": depth, "exclusion": exclusion,
        "detail": detail, "lastmod": lastmod, "first_linked_from": linked_from[0][0] if linked_from else None,
        "linked_as": linked_from[0][1] if linked_from else None,
        "page": page,
        "host": None if not host_row else dict(zip(("state", "fetched", "until", "reason"), host_row[0], strict=True))
                | {"name": host},
    }
