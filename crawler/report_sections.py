"""The report page's sections, one function each (``SECTIONS`` in order), and the cells and tables
they are made of. Pure: a ``Report`` in, markup out; every text from the crawl is escaped where it
is written, and only http(s) URLs become links."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawler import coverage
from crawler import report_svg as svg
from crawler.export import command
from crawler.storage.report_rows import DEPTH_CAP, PageRow
from crawler.wording import plural, size

if TYPE_CHECKING:
    from crawler.report import Report

# The page's sections in order, as (id, heading); the charts by id. The browser test checks both.
SECTIONS = (("job", "The job"), ("timeline", "Timeline"), ("statuses", "Statuses and errors"), ("depth", "Depth"),
            ("hosts", "Hosts"), ("broken", "Broken links"), ("redirects", "Redirects"), ("duplicates", "Duplicates"),
            ("extraction", "Extraction"), ("excluded", "Excluded URLs"), ("slowest", "Slowest pages"),
            ("largest", "Largest pages"))
CHARTS = ("chart-timeline", "chart-statuses", "chart-depth")
# Sections shown only where the jobs have something for them, after the section named.
RENDERING = ("rendering", "Rendering")   # a page rendered by a browser (--render), or one whose rendering failed


def _section(sid: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{escape(dict((*SECTIONS, RENDERING))[sid])}</h2>{body}</section>'


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
        rows.append([cell(link(b.url)), text(b.kind), text(answer(b.status, b.error)), num(b.referrers), cell(linked)])
    intro = (f"<p>{plural(r.broken.total, 'broken URL')}, linked {plural(r.broken_links, 'time')}: "
             "every link whose target answered 4xx or 5xx or got no answer, with what the pages use it as (a page, "
             "a stylesheet, a script, an image, an iframe...), the pages that link to it and the link's "
             "text. Most linked first.</p>")
    return _section("broken", intro + table(["broken URL", "kind", "answer", "linked from (pages)",
                                             "linked from, with anchor text"],
                                            rows, left_out=r.broken.left_out, what="broken URLs", numeric=(3,)))


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


def _extraction(r: Report) -> str:
    """For each page type and field: on how many pages it matched, matched nothing, failed its type."""
    if not r.extraction:
        return _section("extraction", _none("No extraction: crawl with --extract RULES (or --plugin) to read your own "
                                            "fields out of every page."))
    unmatched = coverage.warnings(r.extraction)
    parts = [f"<ul>{''.join(f'<li><b>{escape(w)}</b></li>' for w in unmatched)}</ul>"] if unmatched else []
    for t in r.extraction:
        kind = f"Page type {t.page_type}" if t.page_type is not None else "No page type (the plugin's data alone)"
        errors = [f"{n:,} {code}" for code, n in (("extract_missing", t.extract_missing),
                                                   ("extract_failed", t.extract_failed)) if n]
        parts.append(f"<h3>{escape(kind)}: {escape(plural(t.pages, 'page'))}"
                     + (f" ({escape(', '.join(errors))})" if errors else "") + "</h3>")
        parts.append(table(["field", "matched", "empty", "bad type", "matched %"],
                           ([text(f.field), num(f.matched), num(f.empty), num(f.bad_type),
                             num(round(100 * f.matched / f.pages, 1) if f.pages else None)] for f in t.fields),
                           numeric=(1, 2, 3, 4)))
    parts.append(_none("Empty: the field's selector (or regex) matched nothing on the page, its default (if any) "
                       "standing in; bad type: its value did not convert to the field's type and is null. "
                       "extract_missing: a required field had no value; extract_failed: the plugin failed."))
    return _section("extraction", "".join(parts))


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


# Why a browser refused a request (``models.RenderBlock``), in words.
REFUSED = {"scheme": "not http or https (file:, data:, ...)", "navigation": "the page's script sending the browser away",
           "method": "not a GET (a crawler reads, it does not submit)", "scope": "a frame out of the job's scope",
           "robots.txt": "a frame robots.txt disallows", "address": "a private or loopback address (the SSRF guard)",
           "websocket": "a WebSocket"}


def _rendering(r: Report) -> str:
    """Pages rendered by a browser: how many, by mode and reason, their refused requests, failures."""
    g = r.rendering
    if g is None:
        return ""
    parts = [f"<p>{plural(g.pages, 'page')} rendered by a browser"
             + (f", {g.unsettled:,} of them taken as they were at their deadline (they did not settle)" if g.unsettled else "")
             + f"; {plural(g.failed.total, 'page')} failed to render (render_failed).</p>"]
    if g.reasons:
        parts.append(table(["mode", "why", "pages"], ([text(x.mode), text(x.reason), num(x.pages)] for x in g.reasons),
                           numeric=(2,)))
    parts.append("<h3>Requests refused</h3>")
    if not g.blocked:
        parts.append(_none("No request of a rendered page was refused."))
    else:
        rows = [[text(REFUSED.get(x.why, x.why)), num(x.requests), num(x.pages), cell(link(x.example_url))]
                for x in g.refusals]
        unknown = g.blocked - sum(x.requests for x in g.refusals)
        if unknown > 0:   # pages rendered by a crawler that counted refusals without saying why
            rows.append([text("not recorded (rendered before the crawler kept why)"), num(unknown), num(None), cell(link(None))])
        parts.append(f"<p>{plural(g.blocked, 'request')} of rendered pages refused by the crawler's rules: counted, "
                     "never an error of the page.</p>"
                     + table(["why", "requests", "pages", "for example"], rows, numeric=(1, 2)))
    if g.failed.total:
        parts.append("<h3>Failed to render</h3>" + table(
            ["URL", "message"], ([cell(link(u)), text(m)] for u, m in g.failed.rows), left_out=g.failed.left_out,
            what="pages") + _none("render_failed is retried like a timeout; these failed every try."))
    return _section("rendering", "".join(parts))


# Each section's markup, in the order of SECTIONS.
RENDERERS: tuple[Callable[[Report], str], ...] = (_job, _timeline, _statuses, _depth, _hosts, _broken, _redirects,
                                                   _duplicates, _extraction, _excluded, _slowest, _largest)


def shown(r: Report) -> list[tuple[str, str, Callable[[Report], str]]]:
    """The sections of ``r``'s page in order, as (id, heading, markup): every one of ``SECTIONS``, and
    Rendering after Statuses and errors where a page was rendered or failed to render."""
    sections = [(sid, title, fn) for (sid, title), fn in zip(SECTIONS, RENDERERS, strict=True)]
    if r.rendering is not None:
        after = [sid for sid, _, _ in sections].index("statuses") + 1
        sections.insert(after, (*RENDERING, _rendering))
    return sections
