"""Named queries behind ``crawler report``, over one job file or several merged (``report_scratch``
builds the merge: one winning fetch per URL). Each query returns at most its limit of rows (the
row types in ``report_rows``); SQLite sorts and groups on disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crawler.storage.extracted_read import Coverage, PageTypeCount
from crawler.storage.read import _host_state
from crawler.storage.report_rows import (
    DEPTH_CAP,
    BrokenLink,
    DepthRow,
    Destination,
    DuplicateGroup,
    ErrorRow,
    Exclusion,
    HostRow,
    JobInfo,
    Listing,
    PageRow,
    Redirect,
    Rendering,
    RenderReason,
    RenderRefusal,
    Timeline,
    Totals,
)
from crawler.storage.report_scratch import MergedJobs
from crawler.storage.schema import HOST_BUDGET

# Hosts: those with a URL fetched or to fetch (as ``JobReader.hosts`` counts them), most pages first.
_HOSTS = f"""
WITH fetched AS (SELECT host, COUNT(*) AS pages, COUNT(error) AS errors FROM page GROUP BY host),
     waiting AS (SELECT host, COUNT(*) AS queued FROM queued GROUP BY host),
     budget AS (SELECT host, COUNT(*) AS over FROM excluded WHERE reason = '{HOST_BUDGET}' GROUP BY host),
     hosts AS (SELECT host FROM fetched UNION SELECT host FROM waiting)
SELECT h.host, COALESCE(f.pages, 0), COALESCE(f.errors, 0), COALESCE(w.queued, 0), COALESCE(b.over, 0),
       s.state, s.until, s.error
  FROM hosts h LEFT JOIN fetched f ON f.host = h.host LEFT JOIN waiting w ON w.host = h.host
  LEFT JOIN budget b ON b.host = h.host LEFT JOIN host_state s ON s.host = h.host
 ORDER BY 2 DESC, h.host LIMIT ?
"""
# Rendered pages by mode and reason: ``rendered`` is "always; ..." or "auto: <reason>; ..." (``render.heuristic``).
_RENDER_REASONS = """
SELECT CASE WHEN rendered LIKE 'auto: %' THEN 'auto' ELSE 'always' END AS mode,
       CASE WHEN rendered LIKE 'auto: %' THEN substr(rendered, 7, instr(rendered, ';') - 7) ELSE 'every HTML page' END
       AS reason, COUNT(*)
  FROM page WHERE rendered IS NOT NULL GROUP BY mode, reason ORDER BY 3 DESC, 1, 2
"""
# Refused requests by why, over the rendered pages (``render_blocks``: why -> [how many, first URL]).
_RENDER_REFUSALS = """
SELECT j.key, SUM(j.value ->> 0), COUNT(*), MIN(j.value ->> 1)
  FROM page, json_each(page.render_blocks) j WHERE page.render_blocks IS NOT NULL
 GROUP BY j.key ORDER BY 2 DESC, 1
"""
# Latency percentiles by nearest rank: the p-th of n sorted values is the one at rank ceil(p * n / 100).
_PERCENTILES = """
WITH ranked AS (
    SELECT host, elapsed_ms, ROW_NUMBER() OVER (PARTITION BY host ORDER BY elapsed_ms) AS r,
           COUNT(*) OVER (PARTITION BY host) AS n
      FROM page WHERE elapsed_ms IS NOT NULL AND host IN ({})
)
SELECT host, MAX(CASE WHEN r = (n * 50 + 99) / 100 THEN elapsed_ms END),
             MAX(CASE WHEN r = (n * 95 + 99) / 100 THEN elapsed_ms END)
  FROM ranked GROUP BY host
"""


class ReportReader:
    """The report's named queries over the jobs at ``paths`` merged (a path named twice is read once):
    ``with ReportReader([a, b]) as r: r.totals()``. StorageError if a job file is missing or broken."""

    def __init__(self, paths: Sequence[str | Path]) -> None:
        self._merged = MergedJobs(paths)

    def __enter__(self) -> ReportReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._merged.close()

    def _all(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        return self._merged.all(sql, args)

    def _one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self._merged.one(sql, args)

    # -- the job ---------------------------------------------------------------------------------

    def jobs(self) -> list[JobInfo]:
        """Each job file: its state, pass, counts, fetch times and settings."""
        found = []
        for job in self._merged.jobs:
            summary, meta = job.summary(), job.meta()
            found.append(JobInfo(str(job.path), summary["state"], summary["pass"], summary["pages"],
                                 summary["queue"]["pending"], summary["queue"]["excluded"], summary["links"],
                                 summary["first_fetch"], summary["last_fetch"], dict(meta.get("job_settings") or {}),
                                 summary["this_pass"]))
        return found

    def seeds(self, limit: int) -> Listing[str]:
        """The URLs at depth 0 (the seeds, and those a ``crawler add`` queued), by URL."""
        return Listing([u for (u,) in self._all("SELECT url FROM seed ORDER BY url LIMIT ?", (limit,))],
                       self._one("SELECT COUNT(*) FROM seed"))

    def totals(self) -> Totals:
        pages, errors, size, first, last = self._all(
            "SELECT COUNT(*), COUNT(error), COALESCE(SUM(bytes), 0), MIN(at), MAX(at) FROM page")[0]
        hosts = self._one("SELECT COUNT(*) FROM (SELECT host FROM page UNION SELECT host FROM queued)")
        return Totals(pages, errors, size, hosts, first, last, self._one("SELECT COUNT(*) FROM queued"),
                      self._one("SELECT COUNT(*) FROM excluded"))

    def timeline(self, max_buckets: int = 120) -> Timeline:
        """Pages and errors (pages with an error code) per bucket, the buckets as narrow as whole
        seconds allow with at most ``max_buckets`` of them."""
        first, last = self._all("SELECT MIN(at), MAX(at) FROM page")[0]
        if first is None:
            return Timeline(0, 1, [])
        span = last - first + 1
        width = -(-span // max_buckets)
        buckets = [(0, 0)] * -(-span // width)
        for bucket, pages, errors in self._all(
                "SELECT (at - ?) / ? AS bucket, COUNT(*), COUNT(error) FROM page GROUP BY bucket", (first, width)):
            buckets[bucket] = (pages, errors)
        return Timeline(first, width, buckets)

    # -- what came back --------------------------------------------------------------------------

    def statuses(self) -> list[tuple[int | None, int]]:
        """``(status, pages)``, by status; None for pages that got no response."""
        return [(s, n) for s, n in self._all("SELECT status, COUNT(*) FROM page GROUP BY status ORDER BY status")]

    def errors(self) -> list[ErrorRow]:
        """Error codes, most frequent first, each with the first URL (by URL) that had it and its message."""
        return [ErrorRow(*row) for row in self._all(
            "SELECT error, COUNT(*), MIN(url), error_message FROM page WHERE error IS NOT NULL "
            "GROUP BY error ORDER BY 2 DESC, error")]

    def depths(self) -> list[DepthRow]:
        return [DepthRow(*row) for row in self._all(
            "SELECT MIN(depth, ?) AS d, SUM(IFNULL(status < 300, 0)), SUM(IFNULL(status BETWEEN 300 AND 399, 0)), "
            "SUM(IFNULL(status BETWEEN 400 AND 499, 0)), SUM(IFNULL(status >= 500, 0)), SUM(status IS NULL) "
            "FROM page GROUP BY d ORDER BY d", (DEPTH_CAP,))]

    def hosts(self, limit: int) -> Listing[HostRow]:
        """The hosts with most pages, with errors, median and 95th-percentile latency, queue and state."""
        rows = self._all(_HOSTS, (limit,))
        names = [row[0] for row in rows]
        latency: dict[str, tuple[int | None, int | None]] = {}
        if names:
            latency = {h: (m, p) for h, m, p in self._all(_PERCENTILES.format(", ".join("?" * len(names))), names)}
        listed = []
        for host, pages, errors, queued, over_budget, table_state, until, error in rows:
            median, p95 = latency.get(host, (None, None))
            parked = table_state == "parked"
            listed.append(HostRow(host, pages, errors, queued, median, p95, _host_state(queued, over_budget, table_state),
                                  until if parked else None, error if parked else None))
        return Listing(listed, self._one("SELECT COUNT(*) FROM (SELECT host FROM page UNION SELECT host FROM queued)"))

    # -- what broke ------------------------------------------------------------------------------

    def broken_links(self, limit: int, referrers: int) -> Listing[BrokenLink]:
        """Broken targets, most linked first (then by URL), each with its first ``referrers`` linking
        pages by URL and their anchor texts."""
        rows = self._all(
            "SELECT b.url, p.status, p.error, (SELECT COUNT(*) FROM ref r WHERE r.target = b.url) AS n, "
            "(SELECT COALESCE(MAX(r.kind), 'page') FROM ref r WHERE r.target = b.url) "
            "FROM broken b JOIN fetch p ON p.url = b.url ORDER BY n DESC, b.url LIMIT ?", (limit,))
        listed = [BrokenLink(url, status, error, n, [(s, a) for s, a in self._all(
                      "SELECT source, anchor FROM ref WHERE target = ? ORDER BY source LIMIT ?", (url, referrers))], kind)
                  for url, status, error, n, kind in rows]
        return Listing(listed, self._one("SELECT COUNT(*) FROM broken"))

    def broken_link_count(self) -> int:
        """Links to broken targets (a page linking to two broken targets counts twice)."""
        count: int = self._one("SELECT COUNT(*) FROM ref")
        return count

    def redirects(self, limit: int) -> Listing[Redirect]:
        """URLs that redirected, with where they ended, by final URL and then URL."""
        return Listing([Redirect(*r) for r in self._all(
            "SELECT url, final_url, status FROM page WHERE final_url != url ORDER BY final_url, url LIMIT ?", (limit,))],
            self._one("SELECT COUNT(*) FROM page WHERE final_url != url"))

    def destinations(self, limit: int) -> Listing[Destination]:
        """Where redirects end, most redirected-to first."""
        return Listing([Destination(*r) for r in self._all(
            "SELECT final_url, COUNT(*), MAX(status) FROM page WHERE final_url != url "
            "GROUP BY final_url ORDER BY 2 DESC, final_url LIMIT ?", (limit,))],
            self._one("SELECT COUNT(DISTINCT final_url) FROM page WHERE final_url != url"))

    # -- duplicates, exclusions, outliers --------------------------------------------------------

    def duplicates(self, limit: int, urls: int) -> Listing[DuplicateGroup]:
        """Successful pages (2xx) with the same content hash, largest groups first, each with its first
        ``urls`` URLs. (Error pages sharing a body, such as a site's one 404 page, are not duplicates.)"""
        grouped = ("SELECT content_hash, COUNT(*) AS n FROM page WHERE content_hash IS NOT NULL "
                   "AND status BETWEEN 200 AND 299 GROUP BY content_hash HAVING n > 1")
        rows = self._all(f"SELECT content_hash, n FROM ({grouped}) ORDER BY n DESC, content_hash LIMIT ?", (limit,))
        listed = [DuplicateGroup(h, n, [u for (u,) in self._all(
                      "SELECT url FROM page WHERE content_hash = ? AND status BETWEEN 200 AND 299 ORDER BY url LIMIT ?",
                      (h, urls))]) for h, n in rows]
        return Listing(listed, self._one(f"SELECT COUNT(*) FROM ({grouped})"))

    def duplicate_pages(self) -> int:
        """Pages in a group of exact duplicates, the first of each group included."""
        count: int = self._one("SELECT COALESCE(SUM(n), 0) FROM (SELECT COUNT(*) AS n FROM page WHERE content_hash "
                               "IS NOT NULL AND status BETWEEN 200 AND 299 GROUP BY content_hash HAVING n > 1)")
        return count

    def near_duplicates(self, limit: int) -> Listing[tuple[str, str]]:
        """``(url, near duplicate of)`` pairs by simhash, by the earlier page; the total is -1 when no
        page of the jobs has a simhash (``extract_text`` was off)."""
        if self._one("SELECT COUNT(simhash) FROM page") == 0:
            return Listing([], -1)
        return Listing([(u, n) for u, n in self._all(
            "SELECT url, near_duplicate_of FROM page WHERE near_duplicate_of IS NOT NULL "
            "ORDER BY near_duplicate_of, url LIMIT ?", (limit,))],
            self._one("SELECT COUNT(*) FROM page WHERE near_duplicate_of IS NOT NULL"))

    def exclusions(self, examples: int) -> list[Exclusion]:
        """URLs never fetched by exclusion code, most first, each with its first ``examples`` URLs."""
        return [Exclusion(reason, n, [u for (u,) in self._all(
                    "SELECT url FROM excluded WHERE reason = ? ORDER BY url LIMIT ?", (reason, examples))])
                for reason, n in self._all("SELECT reason, COUNT(*) FROM excluded GROUP BY reason ORDER BY 2 DESC, reason")]

    def slowest(self, limit: int) -> list[PageRow]:
        return self._pages("elapsed_ms", limit)

    def largest(self, limit: int) -> list[PageRow]:
        return self._pages("bytes", limit)

    def _pages(self, column: str, limit: int) -> list[PageRow]:
        return [PageRow(*r) for r in self._all(
            f"SELECT url, status, elapsed_ms, bytes, content_type, title FROM page WHERE {column} IS NOT NULL "
            f"ORDER BY {column} DESC, url LIMIT ?", (limit,))]

    # -- rendering -------------------------------------------------------------------------------

    def rendering(self, failed: int) -> Rendering | None:
        """What browsers did (``--render``), with the first ``failed`` render_failed pages by URL;
        None when no page was rendered or failed to render."""
        pages, unsettled, blocked = self._all(
            "SELECT COUNT(rendered), COUNT(CASE WHEN rendered LIKE '%did not settle%' THEN 1 END), "
            "COALESCE(SUM(render_blocked), 0) FROM page")[0]
        failures = self._one("SELECT COUNT(*) FROM page WHERE error = 'render_failed'")
        if not pages and not failures:
            return None
        return Rendering(pages, [RenderReason(*r) for r in self._all(_RENDER_REASONS)], unsettled, blocked,
                         [RenderRefusal(*r) for r in self._all(_RENDER_REFUSALS)],
                         Listing([(u, m) for u, m in self._all(
                             "SELECT url, error_message FROM page WHERE error = 'render_failed' ORDER BY url LIMIT ?",
                             (failed,))], failures))

    # -- extraction ------------------------------------------------------------------------------

    def page_types(self) -> list[PageTypeCount]:
        """Extraction's page types over the winning fetches, most pages first (empty: no extraction)."""
        return [PageTypeCount(*r) for r in self._all(
            "SELECT page_type, SUM(pages), SUM(extract_missing), SUM(extract_failed) FROM coverage_types "
            "GROUP BY page_type ORDER BY 2 DESC, 1")]

    def coverage(self) -> list[Coverage]:
        """Each page type's fields, in the rules' order: pages, matched nothing, failed their type."""
        return [Coverage(*r) for r in self._all(
            "SELECT page_type, field, SUM(pages), SUM(empty), SUM(bad_type) FROM coverage_fields "
            "GROUP BY page_type, field ORDER BY page_type, MIN(place)")]
