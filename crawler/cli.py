"""The command line: a thin layer over the library. ``crawler crawl | add | stats | explain | export | report |
extract | bench``.

Errors a user can fix are one line on stderr and exit code 2; a job that cannot run is exit 1; a
crawl that could fetch no seed at all (a typo'd host or port) is exit 4, as wget's network failure;
Ctrl-C or SIGTERM is exit 130 and the same command resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import traceback
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any

import typer
from rich.console import Console

from crawler import __version__, bench_command, config, extract_command, run_end, seed_file
from crawler.errors import CrawlError, InternalError, JobLocked, StorageError, UsageError
from crawler.help_panels import CrawlHelp, PlainHelp
from crawler.loop import event_loop_factory, raise_open_files_limit
from crawler.printable import printable
from crawler.run_end import EXIT_STOPPED
from crawler.wording import plural

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]})   # -h too, inherited by every command

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


@app.command(cls=CrawlHelp, epilog=run_end.EXIT_CODES)
def crawl(
    ctx: typer.Context,
    urls: Annotated[list[str] | None, typer.Argument(metavar="URL",
                                                     help="Seed URLs (http and https only).", show_default=False)] = None,
    seeds: Annotated[str | None, typer.Option("--seeds", metavar="FILE",
                                              help="File of seed URLs, one a line; - reads stdin.")] = None,
    db: Annotated[str | None, typer.Option(metavar="FILE", help="The job's SQLite file [default: data/crawl.db].")] = None,
    config_file: Annotated[Path | None, typer.Option("--config", metavar="FILE",
                                                     help="TOML file with keys of config/default.toml.")] = None,
    max_pages: Annotated[int | None, typer.Option(metavar="N", help="Stop after N fetched pages (0: no limit).")] = None,
    max_pages_per_host: Annotated[int | None, typer.Option(metavar="N",
                                                           help="Stop each host after N fetched pages (0: no limit).")] = None,
    max_depth: Annotated[int | None, typer.Option(metavar="N",
                                                  help="Link hops from a seed (0: seeds only; -1: no limit).")] = None,
    concurrency: Annotated[int | None, typer.Option(metavar="N", help="Requests in flight in total [default: 32].")] = None,
    per_host: Annotated[int | None, typer.Option(metavar="N", help="Requests in flight to one host [default: 8].")] = None,
    delay: Annotated[float | None, typer.Option(metavar="SECONDS",
                                                help="Least seconds between two requests to one host.")] = None,
    scope: Annotated[str | None, typer.Option(metavar="SCOPE", help="host (default), domain or any.")] = None,
    allow_domain: Annotated[list[str] | None, typer.Option(metavar="DOMAIN", help="Also allow this domain (repeatable).")] = None,
    include: Annotated[list[str] | None, typer.Option(metavar="REGEX",
                                                      help="Only URLs matching this regex (repeatable).")] = None,
    exclude: Annotated[list[str] | None, typer.Option(metavar="REGEX",
                                                      help="Never URLs matching this regex (repeatable).")] = None,
    parse_mode: Annotated[str | None, typer.Option(metavar="MODE", help="async (default), thread or process.")] = None,
    parse_workers: Annotated[int | None, typer.Option(metavar="N", help="Parse workers (0: one per core).")] = None,
    extract: Annotated[str | None, typer.Option(metavar="FILE", help="Extraction rules (TOML): each page's fields, "
                                                "exported as data (docs/extraction.md).")] = None,
    plugin: Annotated[str | None, typer.Option(metavar="MODULE:FUNCTION", help="A Python function called with each "
                                               "HTML page; its dict is merged into data.")] = None,
    no_structured_data: Annotated[bool, typer.Option("--no-structured-data", help="Do not read JSON-LD, OpenGraph "
                                                     "and Twitter meta.")] = False,
    workers: Annotated[str | None, typer.Option(metavar="N|auto",
                                                help="Processes that fetch and parse: N, or auto (one per core).")] = None,
    frontier: Annotated[str | None, typer.Option(metavar="URL",
                                                 help="A frontier shared by crawls on many machines: redis://H:P/N.")] = None,
    job_name: Annotated[str | None, typer.Option("--job", metavar="NAME",
                                                 help="The job's name in the shared --frontier.")] = None,
    lease: Annotated[float | None, typer.Option(metavar="SECONDS",
                                                help="Seconds a shared lease lasts unless renewed [default: 60].")] = None,
    timeout: Annotated[float | None, typer.Option(metavar="SECONDS",
                                                  help="Deadline for one whole request, seconds [default: 30].")] = None,
    retries: Annotated[int | None, typer.Option(metavar="N",
                                                help="Retries for connection errors, timeouts, 429, 5xx [default: 2].")] = None,
    max_bytes: Annotated[int | None, typer.Option(metavar="BYTES",
                                                  help="Largest body kept, after decompression [default: 10 MiB].")] = None,
    user_agent: Annotated[str | None, typer.Option(metavar="TEXT",
                                                   help="User-Agent header (default names crawler and version).")] = None,
    no_robots: Annotated[bool, typer.Option("--no-robots", help="Do not obey robots.txt.")] = False,
    no_bodies: Annotated[bool, typer.Option("--no-bodies", help="Do not keep response bodies.")] = False,
    recrawl: Annotated[bool, typer.Option("--recrawl", help="Start a new pass over a job's stored pages.")] = False,
    older_than: Annotated[str | None, typer.Option(metavar="AGE",
                                                   help="With --recrawl: only pages fetched longer ago (7d, 12h).")] = None,
    sitemaps: Annotated[bool, typer.Option("--sitemaps", help="Also seed from robots.txt Sitemap: lines and "
                                           "/sitemap.xml.")] = False,
    allow_private: Annotated[bool, typer.Option("--allow-private", help="Allow private and loopback addresses that "
                                                "the seeds did not name (the SSRF guard refuses them).")] = False,
    ca_bundle: Annotated[str | None, typer.Option(metavar="FILE",
                                                  help="Also trust the certificate authorities of this PEM file.")] = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="Do not verify TLS certificates (the summary says so).")
                        ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress; without a terminal a progress line is "
                                        "printed about once a minute.")] = False,
    render: Annotated[str | None, typer.Option(metavar="WHEN", help="never (default), auto "
                                               "(pages that look built by script) or always: a browser renders them.")] = None,
    browser: Annotated[str | None, typer.Option(metavar="PATH",
                                                help="Chromium to render with [default: chromium on PATH].")] = None,
    render_concurrency: Annotated[int | None, typer.Option(
        metavar="N", help="Pages open in the browser at once [default: one per core].")] = None,
    render_block: Annotated[str | None, typer.Option(metavar="KINDS",
                                                     help="Resource types not loaded [default: image,media,font].")] = None,
) -> None:
    """Run or resume a crawl job."""
    # Every option but the seeds and --config is a setting: config reads them from ctx.params by name.
    err = Console(stderr=True)
    out = Console()
    settings, explicit = config.load_explicit(config_file, config.from_flags(ctx.params))
    from crawler.scope import validate_patterns
    validate_patterns(settings.include, "--include")
    validate_patterns(settings.exclude, "--exclude")
    from crawler.extraction.check import check_extraction
    check_extraction(settings.extract, settings.plugin)   # before the job file or a request: one line, exit 2

    if settings.render != "never":   # before any job file or worker: one line naming what to install
        from crawler.render.available import check_available
        check_available(settings)
    seed_urls = seed_file.seed_urls(urls, seeds, _say)
    from crawler import job as jobs
    if "db" not in explicit and (note := jobs.new_site_note(settings.db, seed_urls)):
        _say(f"crawler: {note}")   # the default job file holds another site: before the crawl, not lost in its output

    from crawler.scheduler import Crawl
    raise_open_files_limit()
    processes = settings.processes
    forked = []
    if processes > 1:   # forked now, while this process has no event loop and no thread
        from crawler.workers import fork_workers
        forked = fork_workers(processes)
    job = Crawl(settings, seed_urls, explicit=explicit, forked=forked)
    try:
        with contextlib.ExitStack() as owned:
            for worker in forked:   # a crawl that fails before its worker pool takes them: they exit on EOF
                owned.callback(worker.sock.close)
            with asyncio.Runner(loop_factory=event_loop_factory(settings.event_loop)) as runner:
                stats = runner.run(_run(job, err))
    except JobLocked:
        # Another live process crawls this job: new seeds are not refused but queued for it, as
        # ``crawler add`` does. (JobLocked may also be SQLite's busy timeout: then nobody holds the
        # job lock now, and the error stands.)
        from crawler.seeding import crawled_by_another
        holder = crawled_by_another(settings.db) if seed_urls else None
        if holder is None:
            raise
        print(_queue_seeds(settings.db, seed_urls))
        _say(f"crawler: {holder}, which picks them up")
        if note := jobs.ignored_flags_note([p.opts[0] for p in ctx.command.params if p.name not in ("urls", "seeds", "db")
                                            and getattr(ctx.get_parameter_source(p.name or ""), "name", "") == "COMMANDLINE"]):
            _say(f"crawler: {note}")
        return
    code = run_end.tell(job.settings, stats, explicit, out, _say)
    if code != EXIT_OK:
        raise typer.Exit(code)


def _say(message: str) -> None:
    """One plain line on stderr: no markup, no wrapping, no control character, whatever the message holds."""
    print(printable(message), file=sys.stderr, flush=True)


async def _run(job: Any, err: Console) -> Any:
    """Run the crawl with signal handlers, showing its progress (unless quiet)."""
    from crawler.progress import shown
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, job.request_stop)
    try:
        crawl_task = asyncio.create_task(job.run())
        async with shown(job.stats, err, quiet=job.settings.quiet, period=job.settings.progress_every):
            return await crawl_task
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


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


def _queue_seeds(db: str, seed_urls: list[str]) -> str:
    """Queue the seeds in the job ``db``; the one line that says how many were new."""
    from crawler.seeding import add_seeds
    added = asyncio.run(add_seeds(db, seed_urls))
    return f"{plural(added.queued, 'new URL')} queued in {db} ({added.known:,} already known)"


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
                                                      "(warc.gz with --out NAME.gz) or markdown (JSON lines; "
                                                      "a .md file a page with --out DIR/).")] = "jsonl",
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
) -> None:
    """Export what a job crawled."""
    from crawler import export as exporter
    exporter.check_format(fmt, to_stdout=out == "-", fields_given=bool(fields), target_status_given=bool(target_status),
                          raw_cells=raw_cells)
    chosen = exporter.check_fields([f.strip() for f in fields.split(",") if f.strip()] if fields else None)
    selection = exporter.Selection(chosen, exporter.parse_statuses(status or ()),
                                   exporter.parse_since(since) if since else None,
                                   exporter.parse_statuses(target_status or (), "--target-status"), raw_cells,
                                   chosen=bool(fields))
    dbs = [_existing(d) for d in (db or ["data/crawl.db"])]
    try:
        if out != "-":
            n = exporter.write_file(out, fmt, dbs, selection)
            what = ("link", "links") if fmt == "links" else ("fetch", "fetches") if fmt.startswith("warc") else \
                ("page", None) if fmt == "markdown" else ("record", None)
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
