"""``crawler crawl``: the command that runs or resumes a job. Its options are settings (crawler.config
reads them from the command's parameters by name); the command checks what it can before the job file
or a request, then runs the crawl with signal handlers and progress."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from crawler import config, run_end, seed_file
from crawler.errors import JobLocked
from crawler.loop import event_loop_factory, raise_open_files_limit
from crawler.printable import say as _say
from crawler.seeding import queue_seeds_line as _queue_seeds

EXIT_OK = 0


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
    due: Annotated[bool, typer.Option("--due", help="With --recrawl: only pages whose next visit is due (each page's "
                                      "interval follows how often it changed).")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="If another process crawls the job, wait for it to end "
                                       "instead of exit 2.")] = False,
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
    header: Annotated[list[str] | None, typer.Option(metavar="'NAME: VALUE'", help="Send this header to the seeds' "
                                                     "origins (repeatable); never to other sites.")] = None,
    auth: Annotated[str | None, typer.Option(metavar="USER", help="HTTP authentication at the seeds' origins; the "
                                             "password from --auth-password-env or a prompt.")] = None,
    auth_password_env: Annotated[str | None, typer.Option(metavar="VAR",
                                                          help="Environment variable holding --auth's password.")] = None,
    auth_scheme: Annotated[str | None, typer.Option(metavar="SCHEME", help="basic (default) or digest.")] = None,
    auth_origin: Annotated[list[str] | None, typer.Option(metavar="URL", help="Also send headers and credentials "
                                                          "to this origin (repeatable).")] = None,
    proxy: Annotated[str | None, typer.Option(metavar="URL", help="Every request through this proxy: http://, "
                                              "https:// or socks5://[user:pass@]host:port.")] = None,
    proxies: Annotated[str | None, typer.Option(metavar="FILE", help="Proxy URLs, one a line: each host keeps one; "
                                                "never a direct connection.")] = None,
    metrics: Annotated[str | None, typer.Option(metavar="HOST:PORT", help="Serve Prometheus metrics there while the "
                                                "crawl runs (127.0.0.1:9108; 0.0.0.0:9108 for every interface).")] = None,
    events: Annotated[str | None, typer.Option(metavar="FILE|-", help="Write one JSON line per event (started, page, "
                                               "host, finished, ...) to FILE, appended, or - for stdout.")] = None,
    login: Annotated[str | None, typer.Option(metavar="FILE", help="A login recipe (TOML): the crawl logs in first "
                                              "and again when a page is served logged out (docs/usage.md).")] = None,
    cookies: Annotated[str | None, typer.Option(metavar="FILE", help="Load this Netscape cookies.txt into the "
                                                "crawl's cookie jar.")] = None,
    accept_type: Annotated[list[str] | None, typer.Option(metavar="TYPE", help="Also fetch and keep this media type "
                                                          "(application/pdf, image/*; repeatable): then only HTML and "
                                                          "these [default: every type].")] = None,
    reject_type: Annotated[list[str] | None, typer.Option(metavar="TYPE", help="Never fetch this media type's body "
                                                          "(image/*; repeatable), judged by extension and headers.")
                           ] = None,
    no_check_references: Annotated[bool, typer.Option("--no-check-references", help="Do not check the stylesheets, "
                                                      "scripts, images and iframes pages use (a HEAD each).")] = False,
    check_external: Annotated[bool, typer.Option("--check-external", help="Check each link to another site once "
                                                 "(not crawled).")] = False,
    page_requisites: Annotated[bool, typer.Option("--page-requisites", help="Also fetch and keep what pages need to "
                                                  "display (CSS, scripts, images, fonts), from any host.")] = False,
) -> None:
    """Run or resume a crawl job."""
    # Every option but the seeds and --config is a setting: config reads them from ctx.params by name.
    err = Console(stderr=True)
    out = Console()
    settings, explicit = config.load_explicit(config_file, config.from_flags(ctx.params))
    from crawler.scope import validate_patterns
    validate_patterns(settings.include, "--include")
    validate_patterns(settings.exclude, "--exclude")
    from crawler.content_types import ContentTypes
    ContentTypes.of(settings.accept_type, settings.reject_type)   # a bad pattern: one line, exit 2
    from crawler.extraction.check import check_extraction
    check_extraction(settings.extract, settings.plugin)   # before the job file or a request: one line, exit 2
    from crawler.access import check, credentials
    check(settings)
    settings = credentials.with_password(settings)   # from the environment or a prompt, before workers fork
    from crawler.session.keeper import check_session
    check_session(settings)   # the login recipe and --cookies' file, likewise

    if settings.render != "never":   # before any job file or worker: one line naming what to install
        from crawler.render.available import check_available
        check_available(settings)
    from crawler.observe import watch
    watch.check(settings)   # --metrics: an IP address (or localhost) and the client library
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
            owned.enter_context(watch.watching(settings, job.stats, seed_urls, _say))
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
        with _printing(settings):
            print(_queue_seeds(settings.db, seed_urls))
        _say(f"crawler: {holder}, which picks them up")
        if note := jobs.ignored_flags_note([p.opts[0] for p in ctx.command.params if p.name not in ("urls", "seeds", "db")
                                            and getattr(ctx.get_parameter_source(p.name or ""), "name", "") == "COMMANDLINE"]):
            _say(f"crawler: {note}")
        return
    with _printing(settings):
        code = run_end.tell(job.settings, stats, explicit, out, _say)
    if code != EXIT_OK:
        raise typer.Exit(code)


def _printing(settings: config.Settings) -> contextlib.AbstractContextManager[object]:
    """Where what the crawl prints goes: stdout, unless ``--events -`` has it (then stderr)."""
    return contextlib.redirect_stdout(sys.stderr) if settings.events == "-" else contextlib.nullcontext()


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
