"""What a crawl run says when it ends, and the exit status it ends with.

The summary (this run, then the job as stored, then what extraction matched: ``coverage``; a field
that matched nothing on any page named on stderr), then whatever the user must not miss: URLs left on
parked hosts and when a resume tries them, a job-wide ``--max-pages`` an earlier run set, TLS not
verified, a stop (resumable), or a job none of whose seeds could be fetched (exit 4).
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from rich.console import Console

from crawler import job as jobs
from crawler.config import Settings
from crawler.run_stats import RunStats
from crawler.wording import plural

EXIT_OK, EXIT_UNREACHED, EXIT_STOPPED = 0, 4, 130
# "\b" keeps click from rewrapping the lines.
EXIT_CODES = """\b
Exit status:
  0    the crawl ran (pages that failed are recorded: crawler stats)
  1    the job could not run
  2    a usage error
  4    no seed could be fetched: nothing answered (no page of the job has a
       status) and every seed failed (connect, dns, tls, timeout, ...)
  130  stopped; the same command resumes"""


def parked_work(parked: tuple[int, int, str | None]) -> str:
    urls, hosts, until = parked
    return (f"{plural(urls, 'URL')} on {plural(hosts, 'parked host')} wait{'s' * (urls == 1)} for a later run: "
            f"run the same command after {until} to try them")


def tell(settings: Settings, stats: RunStats, explicit: Collection[str], out: Console,
         say: Callable[[str], None]) -> int:
    """Print the end of a run (stdout; ``say`` writes one line on stderr) and return its exit status."""
    db = settings.db
    if stats.outcome == "already_finished":
        if stats.parked[0]:
            print(f"job {db} has nothing to fetch now: {parked_work(stats.parked)}")
        else:
            print(f"job {db} is already finished; use --recrawl to crawl it again")
        return EXIT_OK
    remembered = "max_pages" not in explicit   # the limit came from the job, not from this run
    if stats.outcome == "already_at_limit":
        print(jobs.limit_note(db, settings.max_pages, remembered=remembered, before=True))
        return EXIT_OK
    from crawler.progress import summary, summary_lines
    from crawler.stats import job_stats, nothing_reached
    if out.is_terminal:
        out.print(summary(stats, job_stats(db)))
    else:
        print("\n".join(summary_lines(stats, job_stats(db))))
    from crawler import coverage
    coverage.tell(db, say, settings.extract)   # for each page type and field: matched, empty, failed its type
    if stats.parked[0]:
        print(parked_work(stats.parked))
    if stats.outcome == "limit" and (note := jobs.limit_note(db, settings.max_pages, remembered=remembered,
                                                             before=False)):
        print(note)
    if settings.insecure:
        print("TLS certificates were not verified (--insecure)")
    if stats.outcome == "stopped":
        say(f"stopped; run the same command again to resume {db}")
        return EXIT_STOPPED
    if (why := nothing_reached(db)) is not None:
        say(f"crawler: {why}")
        return EXIT_UNREACHED
    return EXIT_OK
