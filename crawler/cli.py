"""The command line: a thin layer over the library. ``crawler crawl | add | stats | explain | export | report |
extract | bench``.

Errors a user can fix are one line on stderr and exit code 2; a job that cannot run is exit 1; a
crawl that could fetch no seed at all (a typo'd host or port) is exit 4, as wget's network failure;
Ctrl-C or SIGTERM is exit 130 and the same command resumes.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from pathlib import Path
from types import TracebackType
from typing import Annotated

import typer

from crawler import __version__, bench_command, crawl_command, extract_command, run_end, seed_file
from crawler.errors import CrawlError, InternalError, StorageError, UsageError
from crawler.help_panels import CrawlHelp, PlainHelp
from crawler.printable import say as _say
from crawler.run_end import EXIT_STOPPED
from crawler.seeding import queue_seeds_line as _queue_seeds
from crawler.wording import plural

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]})   # -h too, inherited by every command

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


app.command(cls=CrawlHelp, epilog=run_end.EXIT_CODES, name="crawl")(crawl_command.crawl)   # run or resume a job


@app.command(cls=PlainHelp)
def add(
    urls: Annotated[list[str] | None, typer.Argument(metavar="URL",
                                                     help="Seed URLs (http and https only).", show_default=False)] = None,
    seeds: Annotated[str | None, typer.Option("--seeds", metavar="FILE",
                                              help="File of seed URLs, one a line; - reads stdin.")] = None,
    db: Annotated[str, typer.Option(metavar="FILE", help="The job's SQLite file.")] = "data/crawl.db",
) -> None:
    """Queue more seeds in a job, even while it is being crawled."""
    _existing(db)
    seed_urls = seed_file.seed_urls(urls, seeds, _say)
    if not seed_urls:
        raise UsageError("no seed URLs given: crawler add --db PATH URL ... or --seeds FILE")
    print(_queue_seeds(db, seed_urls))


@app.command(cls=PlainHelp)
def stats(
    db: Annotated[str, typer.Option(metavar="FILE", help="The job's SQLite file.")] = "data/crawl.db",
    hosts: Annotated[bool, typer.Option("--hosts", help="A table of hosts by pages: errors, queued URLs, state.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    frontier: Annotated[str | None, typer.Option(metavar="URL", help="A shared frontier (redis://HOST:PORT/N): its queue, "
                                                       "leases, workers and hosts, with --job.")] = None,
    job: Annotated[str | None, typer.Option(metavar="NAME", help="The job's name in the shared --frontier.")] = None,
) -> None:
    """What a job holds: pages, statuses, errors, hosts, queue left, and what extraction matched."""
    from crawler.stats import HOSTS_SHOWN, job_hosts, job_stats, render_hosts, render_text
    if frontier is not None:
        from crawler.stats import shared_stats
        print(shared_stats(frontier, job or "", as_json=as_json))
        return
    if hosts:
        table, total = job_hosts(_existing(db), None if as_json else HOSTS_SHOWN)
        print(json.dumps(table, indent=2) if as_json else render_hosts(table, total))
        return
    result = job_stats(_existing(db))
    from crawler import coverage
    found = coverage.job_coverage(db)   # what extraction matched: nothing said of a job without it
    if as_json:
        print(json.dumps(result | ({"extraction": coverage.as_json(found)} if found else {}), indent=2))
        return
    print("\n".join([render_text(result), *coverage.lines(found)]))
    for line in coverage.warnings(found):
        _say(f"crawler: {line}")


@app.command(cls=PlainHelp)
def explain(
    url: Annotated[str, typer.Argument(metavar="URL", help="The URL to explain.", show_default=False)],
    db: Annotated[str, typer.Option(metavar="FILE", help="The job's SQLite file.")] = "data/crawl.db",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Whether a job fetched URL, and if not, which rule decided (scope, robots.txt, trap, budget, SSRF guard)."""
    from crawler import explain as why
    answer = why.explain(_existing(db), url)
    print(json.dumps(answer, indent=2) if as_json else why.render(answer))


@app.command(cls=PlainHelp)
def export(
    db: Annotated[list[str] | None, typer.Option(metavar="FILE", help="Job file (repeatable: merged, one record per URL, "
                                                      "the latest fetch winning).")] = None,
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="jsonl, csv, parquet, links (the link graph), warc "
                                                      "(warc.gz with --out NAME.gz), markdown (JSON lines; "
                                                      "a .md file a page with --out DIR/), or mirror (a copy to open "
                                                      "from disk, links rewritten: --out DIR).")] = "jsonl",
    out: Annotated[str, typer.Option(metavar="FILE",
                                     help="Output file, replaced only once complete; - for stdout (not for parquet). "
                                          "A symlink is followed (the file it names is replaced, the link stays); "
                                          "a FIFO, a device or /dev/fd/N is written in place.")] = "-",
    status: Annotated[list[str] | None, typer.Option(metavar="STATUS", help="Only pages with this HTTP status or class, "
                                                          "e.g. 404 or 4xx (repeatable).")] = None,
    fields: Annotated[str | None, typer.Option(metavar="FIELDS",
                                               help="Comma-separated fields, in order (jsonl, csv, parquet).")] = None,
    since: Annotated[str | None, typer.Option(metavar="TIME", help="Only pages fetched at or after this ISO time.")] = None,
    target_status: Annotated[list[str] | None, typer.Option(metavar="CODE", help="links: only links whose target "
                                                                 "answered this status or class, e.g. 404 (repeatable).")] = None,
    raw_cells: Annotated[bool, typer.Option("--raw-cells", help="csv, links: write text as stored, without the ' "
                                                                "that keeps spreadsheets from running = + - @.")] = False,
    warc_keep_secrets: Annotated[bool, typer.Option("--warc-keep-secrets", help="warc: keep Cookie and Authorization "
                                                    "values in request records (redacted by default).")] = False,
) -> None:
    """Export what a job crawled."""
    from crawler import export as exporter
    exporter.check_format(fmt, to_stdout=out == "-", fields_given=bool(fields), target_status_given=bool(target_status),
                          raw_cells=raw_cells)
    chosen = exporter.check_fields([f.strip() for f in fields.split(",") if f.strip()] if fields else None)
    selection = exporter.Selection(chosen, exporter.parse_statuses(status or ()),
                                   exporter.parse_since(since) if since else None,
                                   exporter.parse_statuses(target_status or (), "--target-status"), raw_cells,
                                   chosen=bool(fields), warc_keep_secrets=warc_keep_secrets)
    if warc_keep_secrets and not fmt.startswith("warc"):
        raise UsageError(f"--warc-keep-secrets is for --format warc, not {fmt}")
    dbs = [_existing(d) for d in (db or ["data/crawl.db"])]
    try:
        if out != "-":
            n = exporter.write_file(out, fmt, dbs, selection)
            what = ("link", "links") if fmt == "links" else ("fetch", "fetches") if fmt.startswith("warc") else \
                ("page", None) if fmt == "markdown" else ("file", None) if fmt == "mirror" else ("record", None)
            _say(f"{plural(n, *what)} written to {out}")
            return
        sys.stdout.flush()   # anything printed before goes first: the export writes under it, as bytes
        exporter.write(sys.stdout.buffer, fmt, dbs, selection)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        # The reader went away (``| head``, also through ``--out /dev/stdout`` or a FIFO): that is not
        # an error. Point stdout at /dev/null so that the interpreter's own flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


@app.command(cls=PlainHelp)
def report(
    out: Annotated[str, typer.Option(metavar="FILE",
                                     help="The HTML file to write (one self-contained page), as export --out writes "
                                          "its file.", show_default=False)],
    db: Annotated[list[str] | None, typer.Option(metavar="FILE", help="Job file (repeatable: merged, one record per URL, "
                                                      "the latest fetch winning).")] = None,
    open_it: Annotated[bool, typer.Option("--open", help="Open the page in a web browser, where there is one.")] = False,
) -> None:
    """One self-contained HTML page of what a crawl found: timeline, statuses, hosts, broken links, ..."""
    from crawler.report import write_report
    dbs = [_existing(d) for d in (db or ["data/crawl.db"])]
    done = write_report(dbs, out)
    broken = done.broken.total
    _say(f"report of {plural(done.totals.pages, 'page')} ({plural(broken, 'broken URL')}) written to {out}")
    if open_it:
        _open_in_browser(Path(out))


app.command(cls=PlainHelp, name="extract")(extract_command.extract)   # try rules on one page


def _open_in_browser(path: Path) -> None:
    """Open ``path`` in the user's browser where one is known; say nothing where none is."""
    import webbrowser
    with contextlib.suppress(webbrowser.Error):
        webbrowser.get().open(path.resolve().as_uri())


def _existing(db: str) -> str:
    if not Path(db).is_file():
        raise UsageError(f"no job file at {db}")
    return db


app.command(cls=PlainHelp, name="bench")(bench_command.bench)   # the concurrency lesson


@app.command(cls=PlainHelp)
def version() -> None:
    """Print the crawler's version."""
    print(f"crawler {__version__}")


def _print_version(given: bool) -> None:
    if given:
        version()
        raise typer.Exit(EXIT_OK)


@app.callback()
def _app_options(
    show_version: Annotated[bool, typer.Option("--version", help="Print the crawler's version and exit.",
                                               is_eager=True, callback=_print_version)] = False,
) -> None:
    """An asynchronous web crawler: resumable SQLite jobs."""


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning every expected failure into one line and an exit code."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        code = app(args=argv or ["--help"], prog_name="crawler", standalone_mode=False)
    # A bad command line. typer vendors click as the private typer._click (click is no dependency);
    # typer.TyperException is the public base of its ClickException and UsageError.
    except typer.TyperException as exc:
        _say(f"crawler: error: {exc.format_message()}")
        return EXIT_USAGE
    except typer.Abort:
        return EXIT_STOPPED
    except UsageError as exc:
        _say(f"crawler: error: {exc}")
        return EXIT_USAGE
    except StorageError as exc:
        _say(f"crawler: cannot run: {exc}")
        return EXIT_FAILED
    except InternalError as exc:
        cause = exc.__cause__
        where = "" if cause is None or cause.__traceback__ is None else _innermost(cause.__traceback__)
        _say(f"crawler: failed: {exc}{where} (a bug; the job file is intact)")
        return EXIT_FAILED
    except CrawlError as exc:
        _say(f"crawler: failed: {exc}")   # a page's error carries its URL, a server's redirect target
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_STOPPED
    except BrokenPipeError:
        return EXIT_OK
    return code if isinstance(code, int) else EXIT_OK


def _innermost(tb: TracebackType) -> str:
    """' at file:line' of the frame that raised, so a one-line report still says where."""
    frame = traceback.extract_tb(tb)[-1]
    return f" at {Path(frame.filename).name}:{frame.lineno}"


def run() -> None:
    sys.exit(main())
