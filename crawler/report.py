"""``crawler report``: one self-contained HTML page of what a crawl found.

    gather(reader) -> Report       the numbers, through ``storage.report_queries`` (the one reader)
    render(report) -> str chunks   pure: numbers in, HTML out; every text from the crawl escaped
    write_report(dbs, path)        both, into ``--out`` (``crawler.output``: a regular file atomically)

The page needs nothing from the network. Its CSS, SVG charts (``report_svg``) and a small script
that sorts tables are inline, and its Content-Security-Policy allows only those two blocks (by
hash) and nothing else: no image, font, frame or connection, so even markup that slipped past the
escaping could fetch nothing. Titles, URLs, anchors and error messages are hostile input: each is
escaped where it is written, and only http(s) URLs become links.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from crawler import report_svg as svg
from crawler.export import command
from crawler.output import open_output
from crawler.storage.report_queries import (
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
    ReportReader,
    Timeline,
    Totals,
)
from crawler.wording import plural, size

# How much of each list the page shows; the rest is counted ("... and N more").
HOSTS, BROKEN, REFERRERS, REDIRECTS, DESTINATIONS = 50, 2_000, 5, 200, 20
DUPLICATE_GROUPS, DUPLICATE_URLS, NEAR_DUPLICATES, EXAMPLES, OUTLIERS, SEEDS = 50, 5, 100, 3, 25, 20
TIMELINE_BUCKETS = 120

# The page's sections in order, as (id, heading); the charts by id. The browser test checks both.
SECTIONS = (("job", "The job"), ("timeline", "Timeline"), ("statuses", "Statuses and errors"), ("depth", "Depth"),
            ("hosts", "Hosts"), ("broken", "Broken links"), ("redirects", "Redirects"), ("duplicates", "Duplicates"),
            ("excluded", "Excluded URLs"), ("slowest", "Slowest pages"), ("largest", "Largest pages"))
CHARTS = ("chart-timeline", "chart-statuses", "chart-depth")


@dataclass(frozen=True, slots=True)
class Report:
    """Everything the page shows, as plain values."""

    generated: str
    jobs: list[JobInfo]
    seeds: Listing[str]
    totals: Totals
    timeline: Timeline
    statuses: list[tuple[int | None, int]]
    errors: list[ErrorRow]
    depths: list[DepthRow]
    hosts: Listing[HostRow]
    broken: Listing[BrokenLink]
    broken_links: int
    redirects: Listing[Redirect]
    destinations: Listing[Destination]
    duplicates: Listing[DuplicateGroup]
    duplicate_pages: int
    near_duplicates: Listing[tuple[str, str]]
    exclusions: list[Exclusion]
    slowest: list[PageRow]
    largest: list[PageRow]


def gather(reader: ReportReader, generated: datetime | None = None) -> Report:
    """Run every query the page needs, each returning at most what the page shows."""
    when = (generated or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return Report(
        when, reader.jobs(), reader.seeds(SEEDS), reader.totals(), reader.timeline(TIMELINE_BUCKETS),
        reader.statuses(), reader.errors(), reader.depths(), reader.hosts(HOSTS),
        reader.broken_links(BROKEN, REFERRERS), reader.broken_link_count(), reader.redirects(REDIRECTS),
        reader.destinations(DESTINATIONS), reader.duplicates(DUPLICATE_GROUPS, DUPLICATE_URLS),
        reader.duplicate_pages(), reader.near_duplicates(NEAR_DUPLICATES), reader.exclusions(EXAMPLES),
        reader.slowest(OUTLIERS), reader.largest(OUTLIERS))


def write_report(dbs: Sequence[str | Path], path: str | Path) -> Report:
    """The report of the jobs ``dbs`` (merged) written to ``path``, all or nothing. The output file
    is opened first, so an unwritable ``path`` fails before any job is read."""
    with open_output(path) as out, ReportReader(dbs) as reader:
        report = gather(reader)
        for chunk in render(report):
            out.write(chunk.encode("utf-8"))
    return report


# -- the page --------------------------------------------------------------------------------------

CSS = """
:root{color-scheme:light dark;--bg:#fdfdfc;--fg:#1d2126;--muted:#5b6470;--line:#d9dde3;--head:#f1f3f5;
--link:#0b57d0;--ok:#2e7d32;--redirect:#1565c0;--client:#c62828;--server:#8e24aa;--failed:#6d4c41;--area:.18}
@media (prefers-color-scheme:dark){:root{--bg:#15181c;--fg:#e3e6ea;--muted:#9aa3ae;--line:#333a42;--head:#1f242a;
--link:#8ab4f8;--ok:#66bb6a;--redirect:#64b5f6;--client:#ef5350;--server:#ce93d8;--failed:#bcaaa4;--area:.25}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:1200px;padding:1rem 1.5rem 4rem;background:var(--bg);color:var(--fg);
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
h1{font-size:1.6rem;margin:.5rem 0 .2rem}h2{font-size:1.25rem;margin:2.2rem 0 .6rem;padding-top:.4rem;
border-top:1px solid var(--line)}h3{font-size:1rem;margin:1.2rem 0 .4rem}
a{color:var(--link)}.muted,.cut,.note{color:var(--muted)}.cut{font-style:italic}
nav{position:sticky;top:0;background:var(--bg);padding:.4rem 0;border-bottom:1px solid var(--line);z-index:1}
nav a{margin-right:.9rem;white-space:nowrap;font-size:.9rem}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:.6rem;margin:1rem 0}
.card{border:1px solid var(--line);border-radius:6px;padding:.5rem .7rem}.card b{display:block;font-size:1.3rem}
.card span{color:var(--muted);font-size:.85rem}
table{border-collapse:collapse;width:100%;margin:.4rem 0;font-size:.9rem}
th,td{border-bottom:1px solid var(--line);padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:var(--head);position:relative}td{overflow-wrap:break-word}td.u{overflow-wrap:anywhere}
td.n,th.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
table.sortable th{cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
ul.refs{margin:0;padding-left:1.1rem}q{color:var(--muted)}
.chart{width:100%;height:auto;display:block;margin:.4rem 0}
.chart text{fill:var(--muted);font-size:12px}.chart .grid{stroke:var(--line)}
.chart .line{fill:none;stroke-width:2}.chart .area{stroke:none;fill-opacity:var(--area)}
.chart .hit{fill:transparent}.chart .hit:hover{fill:var(--line);fill-opacity:.35}
.s-ok{fill:var(--ok);stroke:var(--ok);color:var(--ok)}.s-redirect{fill:var(--redirect);stroke:var(--redirect)}
.s-client{fill:var(--client);stroke:var(--client);color:var(--client)}.s-server{fill:var(--server);stroke:var(--server)}
.s-failed{fill:var(--failed);stroke:var(--failed)}.chart text.legend{font-weight:600}
.chart text.s-ok{fill:var(--ok);stroke:none}.chart text.s-client{fill:var(--client);stroke:none}
p.legend .key{margin-right:1rem;white-space:nowrap}.bar{stroke:none}
code{font-size:.85rem}
dl.settings{display:grid;grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:.1rem 1.2rem;margin:.3rem 0}
dl.settings div{display:flex;gap:.6rem;border-bottom:1px solid var(--line);padding:.15rem 0}
dt{color:var(--muted);min-width:9.5rem}dd{margin:0;overflow-wrap:anywhere}
@media print{:root{--bg:#fff;--fg:#000;--muted:#444;--line:#bbb;--head:#eee;--link:#000;color-scheme:light}
nav{display:none}body{max-width:none;padding:0;font-size:11px}a{text-decoration:none}
h2{break-after:avoid}tr,.chart,.card{break-inside:avoid}th{position:static}}
"""

# Sortable tables: a click on a heading sorts by that column (numbers by their data-v value), a
# second click reverses; then the page says it is ready (what the browser test waits for).
SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, column) {
    th.tabIndex = 0;
    th.addEventListener("click", function () {
      var body = table.tBodies[0], numeric = th.classList.contains("n");
      var current = th.getAttribute("aria-sort");
      var up = current ? (current === "ascending" ? -1 : 1) : (numeric ? -1 : 1);
      function key(row) {
        var cell = row.cells[column];
        return numeric ? parseFloat(cell.dataset.v) : cell.textContent.toLowerCase();
      }
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) { var x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * up; });
      table.querySelectorAll("th").forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", up > 0 ? "ascending" : "descending");
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
document.documentElement.setAttribute("data-ready", "yes");
"""


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


# Only the inline style and script above, by hash; nothing from anywhere, not even this file's folder.
CSP = (f"default-src 'none'; style-src {_hash(CSS)}; script-src {_hash(SCRIPT)}; img-src 'none'; "
       "base-uri 'none'; form-action 'none'")


def render(report: Report) -> Iterator[str]:
    """The page, in chunks (a section each)."""
    name = ", ".join(Path(job.path).name for job in report.jobs)
    yield (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
           f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
           '<meta name="referrer" content="no-referrer"><meta name="viewport" content="width=device-width,initial-scale=1">'
           f"<title>Crawl report: {escape(name)}</title><style>{CSS}</style></head><body>\n"
           f"<h1>Crawl report</h1><p class=\"muted\">{escape(name)}, made {escape(report.generated)}</p>\n<nav>"
           + "".join(f'<a href="#{sid}">{escape(title)}</a>' for sid, title in SECTIONS) + "</nav>\n")
    for section in (_job, _timeline, _statuses, _depth, _hosts, _broken, _redirects, _duplicates, _excluded,
                    _slowest, _largest):
        yield section(report) + "\n"
    yield f"<script>{SCRIPT}</script></body></html>\n"


def _section(sid: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{escape(dict(SECTIONS)[sid])}</h2>{body}</section>'


# -- cells and tables ------------------------------------------------------------------------------

def link(url: str | None) -> str:
    """A URL as text, and as a link where it is http(s) (never javascript:, data: or the like)."""
    if not url:
        return '<span class="muted">-</span>'
    text = escape(url)
    if url.startswith(("http://", "https://")):
        return f'<a href="{text}" rel="noreferrer noopener">{text}</a>'
    return text


def num(value: int | float | None, suffix: str = "") -> str:
    """A numeric cell, sortable by ``data-v``; '-' for None (sorted first)."""
    if value is None:
        return '<td class="n" data-v="-1">-</td>'
    shown = f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"
    return f'<td class="n" data-v="{value}">{shown}{escape(suffix)}</td>'


def cell(content: str) -> str:
    """A cell of markup already made safe (by ``link``, ``escape``, ...), that may break anywhere (URLs)."""
    return f'<td class="u">{content}</td>'


def text(value: object) -> str:
    """A cell of plain text, escaped; '-' for nothing."""
    return "<td>" + ('<span class="muted">-</span>' if value is None or value == "" else escape(str(value))) + "</td>"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, left_out: int = 0, what: str = "rows",
          numeric: Iterable[int] = ()) -> str:
    """A sortable table; ``numeric`` the indexes of number columns; a closing line for what was left out."""
    right = set(numeric)
    head = "".join(f'<th{" class=n" if i in right else ""} scope="col">{escape(h)}</th>' for i, h in enumerate(headers))
    body = "".join(f"<tr>{''.join(r)}</tr>" for r in rows)
    cut = f'<p class="cut">... and {left_out:,} more {escape(what)} not shown</p>' if left_out > 0 else ""
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{cut}'


def _none(message: str) -> str:
    return f'<p class="note">{escape(message)}</p>'


def answer(status: int | None, error: str | None) -> str:
    """What a URL answered, in words: '404', '503', 'timeout'."""
    return str(status) if status is not None else (error or "no answer")


def when(epoch: int | None) -> str:
    return "-" if epoch is None else datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def settings_text(value: Any) -> str:
    """A job setting as the page prints it: lists comma-separated, booleans yes or no."""
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) or "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


# -- sections --------------------------------------------------------------------------------------

def _job(r: Report) -> str:
    t = r.totals
    duration = 0 if t.first is None or t.last is None else t.last - t.first + 1
    rate = t.pages / duration if duration else 0.0
    cards = [("pages", f"{t.pages:,}"), ("pages/s", f"{rate:,.1f}"), ("duration", svg.duration_text(duration)),
             ("errors", f"{t.errors:,}"), ("broken links", f"{r.broken_links:,}"), ("hosts", f"{t.hosts:,}"),
             ("downloaded", size(t.bytes)), ("queued", f"{t.queued:,}"), ("excluded", f"{t.excluded:,}")]
    parts = ['<div class="cards">' + "".join(f"<div class=card><b>{escape(v)}</b><span>{escape(k)}</span></div>"
                                            for k, v in cards) + "</div>"]
    running = [job for job in r.jobs if job.state == "running"]
    if running:
        parts.append(_none(f"{'This job was' if len(r.jobs) == 1 else 'Some jobs were'} still being crawled: the report "
                           "shows what had been committed when it was made."))
    parts.append(f"<p>Fetches from {escape(when(t.first))} to {escape(when(t.last))}"
                 + (f", {len(r.jobs)} job files merged (one record per URL, the latest fetch winning)" if len(r.jobs) > 1 else "")
                 + ".</p>")
    parts.append(table(["job file", "state", "pass", "pages", "queued", "excluded", "links", "first fetch", "last fetch",
                        "this pass"],
                       ([text(j.path), text(j.state), num(j.crawl_pass), num(j.pages), num(j.queued), num(j.excluded),
                         num(j.links), text(j.first_fetch), text(j.last_fetch),
                         text(", ".join(f"{k} {v:,}" for k, v in j.this_pass.items()))] for j in r.jobs),
                       numeric=(2, 3, 4, 5, 6)))
    parts.append(f"<h3>Seeds ({r.seeds.total:,})</h3>")
    parts.append(f'<ul>{"".join(f"<li>{link(u)}</li>" for u in r.seeds.rows)}</ul>' if r.seeds.rows else _none("none stored"))
    if r.seeds.left_out:
        parts.append(f'<p class="cut">... and {r.seeds.left_out:,} more seeds not shown</p>')
    keys = list(dict.fromkeys(k for j in r.jobs for k in j.settings))
    if keys:
        parts.append("<h3>Settings</h3>")
        if len(r.jobs) == 1:
            parts.append('<dl class="settings">' + "".join(
                f"<div><dt>{escape(k)}</dt><dd>{escape(settings_text(v))}</dd></div>" for k, v in r.jobs[0].settings.items())
                + "</dl>")
        else:
            parts.append(table(["setting"] + [Path(j.path).name for j in r.jobs],
                               ([text(k)] + [text(settings_text(j.settings.get(k, "-"))) for j in r.jobs] for k in keys)))
    return _section("job", "".join(parts))


def _timeline(r: Report) -> str:
    tl = r.timeline
    if not tl.buckets:
        return _section("timeline", svg.timeline([], 1) + _none("No page has been fetched yet."))
    peak = max(range(len(tl.buckets)), key=lambda i: tl.buckets[i][0])
    note = (f"Each point is {tl.width} s; the busiest started {svg.duration_text(peak * tl.width)} in, at "
            f"{tl.buckets[peak][0] / tl.width:,.1f} pages/s. Times are those of each URL's latest fetch.")
    return _section("timeline", svg.timeline(tl.buckets, tl.width) + f'<p class="note">{escape(note)}</p>')


def _status_class(status: int | None) -> str:
    """The CSS class (and chart series) of a status: ok (1xx, 2xx), redirect, client, server, failed."""
    if status is None:
        return "failed"
    return "server" if status >= 500 else "client" if status >= 400 else "redirect" if status >= 300 else "ok"


def _statuses(r: Report) -> str:
    counts = dict.fromkeys((css for css, _ in svg.CLASSES), 0)
    for status, n in r.statuses:
        counts[_status_class(status)] += n
    chart = svg.bars([(label, counts[css], css) for css, label in svg.CLASSES], "chart-statuses", "pages by status class")
    codes = table(["status", "pages"], ([text(answer(s, "no response")), num(n)] for s, n in r.statuses), numeric=(1,))
    errors = (table(["error", "pages", "for example", "message"],
                    ([text(e.code), num(e.pages), cell(link(e.example_url)), text(e.example_message)] for e in r.errors),
                    numeric=(1,)) if r.errors else _none("No page has an error code."))
    return _section("statuses", chart + "<h3>By status</h3>" + codes + "<h3>Error codes</h3>" + errors)


def _depth(r: Report) -> str:
    columns = [(f"{d.depth}+" if d.depth == DEPTH_CAP else str(d.depth), (d.ok, d.redirect, d.client, d.server, d.failed))
               for d in r.depths]
    if not columns:
        return _section("depth", svg.stacked([], "chart-depth", "no pages yet") + _none("No page has been fetched yet."))
    return _section("depth", svg.stacked(columns, "chart-depth", "pages by link depth from the seeds, by status class")
                    + svg.legend() + '<p class="note">Link hops from a seed, pages stacked by status class.</p>')


def _hosts(r: Report) -> str:
    rows = []
    for h in r.hosts.rows:
        state = h.state.replace("_", " ")
        if h.state == "parked":
            state = f"parked until {h.parked_until or '-'} ({h.parked_error or 'no error recorded'})"
        rows.append([text(h.host), num(h.pages), num(h.errors), num(h.median_ms), num(h.p95_ms), num(h.queued), text(state)])
    body = (table(["host", "pages", "errors", "median ms", "p95 ms", "queued", "state"], rows, left_out=r.hosts.left_out,
                  what="hosts", numeric=(1, 2, 3, 4, 5))
            + '<p class="note">Most pages first. Latency is each fetch\'s time from request to last byte, '
              "redirects included; percentiles by nearest rank.</p>") if rows else _none("No host yet.")
    return _section("hosts", body)


def _broken(r: Report) -> str:
    if not r.broken.total:
        return _section("broken", _none("No link leads to a page that answered 4xx or 5xx or failed."))
    rows = []
    for b in r.broken.rows:
        refs = "".join(f"<li>{link(src)}" + (f" <q>{escape(anchor)}</q>" if anchor else "") + "</li>"
                       for src, anchor in b.linked_from)
        more = b.referrers - len(b.linked_from)
        every = command([j.path for j in r.jobs], "links", *(("--target-status", str(b.status)) if b.status else ()))
        refs += (f'<li class="cut">... and {plural(more, "more page")}: <code>{escape(every)}</code>'
                 + ("" if b.status else " (the rows with this target)") + "</li>" if more > 0 else "")
        linked = f'<ul class="refs">{refs}</ul>' if refs else '<span class="muted">no stored page links here (a seed?)</span>'
        rows.append([cell(link(b.url)), text(answer(b.status, b.error)), num(b.referrers), cell(linked)])
    intro = (f"<p>{plural(r.broken.total, 'broken URL')}, linked {plural(r.broken_links, 'time')}: "
             "every link whose target answered 4xx or 5xx or got no answer, with the pages that link to it and the link's "
             "text. Most linked first.</p>")
    return _section("broken", intro + table(["broken URL", "answer", "linked from (pages)", "linked from, with anchor text"],
                                            rows, left_out=r.broken.left_out, what="broken URLs", numeric=(2,)))


def _redirects(r: Report) -> str:
    if not r.redirects.total:
        return _section("redirects", _none("No URL redirected."))
    ends = table(["ends at", "URLs redirected there", "final answer"],
                 ([cell(link(d.final_url)), num(d.urls), text(answer(d.status, None))] for d in r.destinations.rows),
                 left_out=r.destinations.left_out, what="destinations", numeric=(1,))
    each = table(["URL", "redirected to", "final answer"],
                 ([cell(link(x.url)), cell(link(x.final_url)), text(answer(x.status, None))] for x in r.redirects.rows),
                 left_out=r.redirects.left_out, what="redirects")
    return _section("redirects", f"<p>{plural(r.redirects.total, 'URL')} redirected, "
                                 f"to {plural(r.destinations.total, 'final URL')} "
                                 "(the crawler follows each chain to its end and keeps where it began and where it ended)."
                                 "</p><h3>Where they end</h3>" + ends + "<h3>Each redirect</h3>" + each)


def _duplicates(r: Report) -> str:
    parts = []
    if r.duplicates.total:
        parts.append(f"<p>{plural(r.duplicate_pages, 'successful page')} share their content with another: "
                     f"{plural(r.duplicates.total, 'group')} of identical bodies, largest first.</p>")
        parts.append(table(["pages", "content hash", "URLs"],
                           ([num(g.pages), cell(f"<code>{escape(g.content_hash[:16])}</code>"),
                             cell('<ul class="refs">' + "".join(f"<li>{link(u)}</li>" for u in g.urls)
                                  + (f'<li class="cut">... and {g.pages - len(g.urls):,} more</li>' if g.pages > len(g.urls)
                                     else "") + "</ul>")] for g in r.duplicates.rows),
                           left_out=r.duplicates.left_out, what="groups", numeric=(0,)))
    else:
        parts.append(_none("No two successful pages have the same content."))
    parts.append("<h3>Near-duplicates</h3>")
    near = r.near_duplicates
    if near.total < 0:
        parts.append(_none("Not computed: main-text extraction (the extract_text setting) was off for these jobs."))
    elif not near.total:
        parts.append(_none("No page's text is within 3 bits (simhash) of an earlier page's."))
    else:
        parts.append(table(["page", "near-duplicate of"], ([cell(link(u)), cell(link(o))] for u, o in near.rows),
                           left_out=near.left_out, what="pairs"))
    return _section("duplicates", "".join(parts))


def _excluded(r: Report) -> str:
    if not r.exclusions:
        return _section("excluded", _none("No URL was excluded."))
    rows = ([text(e.reason), num(e.urls), cell("<br>".join(link(u) for u in e.examples)
                                                  + ("<br>..." if e.urls > len(e.examples) else ""))]
            for e in r.exclusions)
    return _section("excluded", "<p>URLs found in links and never fetched, by the rule that excluded them.</p>"
                    + table(["reason", "URLs", "for example"], rows, numeric=(1,)))


def _outliers(pages: list[PageRow]) -> str:
    return table(["URL", "status", "ms", "bytes", "type", "title"],
                 ([cell(link(p.url)), text(p.status), num(p.elapsed_ms), num(p.bytes), text(p.content_type),
                   text(p.title)] for p in pages), numeric=(2, 3)) if pages else _none("No page yet.")


def _slowest(r: Report) -> str:
    return _section("slowest", _outliers(r.slowest))


def _largest(r: Report) -> str:
    return _section("largest", _outliers(r.largest))
