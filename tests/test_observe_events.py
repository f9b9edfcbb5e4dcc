"""``--events FILE|-``: one JSON object a line (crawler.observe.events; docs/events.md), read by
``jq`` through a pipe, by a reader that goes away, and from a file; the run's start, its pages, its
hosts parked, and its end (finished, stopped, failed)."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from big_site import wait_until
from conftest import cli_command, cli_env
from redis_server import free_port
from site_server import Reply, Site, Slow, html, reply
from site_server import Sequence as SequenceOf

from crawler.observe.events import VERSION, shown

DOCS = Path(__file__).resolve().parent.parent / "docs" / "events.md"


def chain_site(site: Site, pages: int, delay: float = 0.0) -> set[str]:
    """Home, then a chain of ``pages`` pages, each after ``delay`` seconds; their URLs."""
    site.routes["/"] = html("Home", "/p/0")
    for i in range(pages):
        site.routes[f"/p/{i}"] = Slow(delay, html(f"Page {i}", f"/p/{i + 1}" if i + 1 < pages else "/"))
    return {site.url("/")} | {site.url(f"/p/{i}") for i in range(pages)}


def read_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def jq() -> str:
    found = shutil.which("jq")
    if found is None:
        pytest.skip("jq is not installed (apt-get install jq): the events are read through it as a script would")
    return found


def test_events_piped_through_jq_say_started_a_page_per_stored_page_and_finished(
        site: Site, cli: Any, db: Path) -> None:
    urls = chain_site(site, 6)
    site.routes["/p/5"] = reply(404, "gone")
    crawl = subprocess.Popen(cli_command("crawl", site.url("/"), "--db", db, "--events", "-", "--workers", 2),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cli.cwd, env=cli_env())
    assert crawl.stdout is not None
    reader = subprocess.run([jq(), "-c", "[.v, .event, .url, .status, .error, .outcome]"], stdin=crawl.stdout,
                            capture_output=True, text=True, timeout=60, check=False)
    crawl.stdout.close()
    err = crawl.communicate(timeout=60)[1].decode()
    assert crawl.returncode == 0, err
    assert reader.returncode == 0, reader.stderr   # every line of stdout is JSON: the summary went to stderr
    assert "crawl finished" in err
    events = [json.loads(line) for line in reader.stdout.splitlines()]
    assert {v for v, *_ in events} == {VERSION}
    kinds = [kind for _, kind, *_ in events]
    assert kinds[0] == "started"
    assert kinds[-1] == "finished"
    assert kinds.count("started") == kinds.count("finished") == 1
    pages = {url: (status, error) for _, kind, url, status, error, _ in events if kind == "page"}
    assert kinds.count("page") == len(pages) == len(cli.export_by_url(db))
    assert set(pages) == urls
    assert pages[site.url("/p/5")] == (404, "http_error")
    assert events[-1][-1] == "finished"


def test_a_reader_that_goes_away_stops_the_events_not_the_crawl(site: Site, cli: Any, db: Path) -> None:
    urls = chain_site(site, 12, delay=0.05)
    crawl = subprocess.Popen(cli_command("crawl", site.url("/"), "--db", db, "--events", "-"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cli.cwd, env=cli_env())
    assert crawl.stdout is not None
    try:
        first = crawl.stdout.readline()   # as `| head -1` does: one line, then the pipe is closed
        crawl.stdout.close()
        err = crawl.communicate(timeout=60)[1].decode()
    finally:
        cli.stop(crawl)
    assert json.loads(first)["event"] == "started"
    assert crawl.returncode == 0, err
    assert [line for line in err.splitlines() if "--events" in line] == [
        "crawler: --events: the reader went away; the crawl goes on without events"]
    assert set(cli.export_by_url(db)) == urls
    assert cli.stats(db)["state"] == "finished"


def test_a_stopped_crawl_ends_its_events_with_stopped(site: Site, cli: Any, db: Path, tmp_path: Path) -> None:
    chain_site(site, 40, delay=0.1)
    events = tmp_path / "events.jsonl"
    crawl = cli.popen("crawl", site.url("/"), "--db", db, "--events", events, "--workers", 1)

    def a_page_written() -> bool:
        wait_until(lambda: events.exists() and '"page"' in events.read_text())
        return True

    cli.interrupt(crawl, a_page_written, signal.SIGINT)
    assert crawl.returncode == 130
    found = read_events(events)
    assert [e["event"] for e in found if e["event"] != "page"] == ["started", "stopped"]
    assert found[-1]["outcome"] == "stopped"
    assert found[-1]["pages"] == sum(e["event"] == "page" for e in found) == len(cli.export_by_url(db))


def test_parked_hosts_and_the_summary_are_events_and_no_header_value_is(
        site: Site, cli: Any, db: Path, tmp_path: Path) -> None:
    secret = "s3cr3t-session-value"
    site.routes["/"] = Reply(200, (("Content-Type", "text/html"), ("Set-Cookie", f"session={secret}")),
                             html("Home", "/a").body)
    site.routes["/a"] = html("A")
    closed = f"http://127.0.0.1:{free_port()}/"   # nothing listens there: its host is parked
    events = tmp_path / "events.jsonl"
    done = cli.in_process("crawl", site.url("/"), closed, "--db", db, "--events", events, "--retries", 0,
                          "--allow-private", env={"CRAWLER_USER_AGENT": f"bot (token {secret})"})
    assert done.returncode == 0, done.stderr
    text = events.read_text(encoding="utf-8")
    assert secret not in text
    found = [json.loads(line) for line in text.splitlines()]
    parked = [e for e in found if e["event"] == "host_parked"]
    assert [(e["host"], e["reason"]) for e in parked] == [(closed.removeprefix("http://").rstrip("/"), "connect")]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", parked[0]["until"])
    end = found[-1]
    assert (end["event"], end["outcome"], end["pages"], end["errors"]) == ("finished", "finished", 3, 1)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["time"]) for e in found)


def test_a_crawl_that_cannot_run_ends_its_events_with_failed(cli: Any, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    done = cli.in_process("crawl", "http://127.0.0.1:9/", "--db", tmp_path, "--events", events)   # a folder
    assert done.returncode == 1
    found = read_events(events)
    assert [e["event"] for e in found] == ["started", "failed"]
    assert found[1]["error"] in done.stderr


def test_runs_append_to_the_events_file(site: Site, cli: Any, db: Path, tmp_path: Path) -> None:
    site.routes["/"] = html("Home")
    events = tmp_path / "events.jsonl"
    for _ in range(2):
        assert cli.in_process("crawl", site.url("/"), "--db", db, "--events", events, "--recrawl").returncode == 0
    assert [e["event"] for e in read_events(events)] == ["started", "page", "finished"] * 2


def test_an_events_file_that_cannot_be_written_is_one_line_and_exit_2(site: Site, cli: Any, db: Path,
                                                                       tmp_path: Path) -> None:
    site.routes["/"] = html("Home")
    line = cli.fails(2, "crawl", site.url("/"), "--db", db, "--events", tmp_path / "no" / "such" / "dir.jsonl")
    assert line.startswith(f"crawler: error: --events {tmp_path}/no/such/dir.jsonl: cannot write there: ")
    assert site.count("/") == 0


def test_a_urls_user_and_password_never_appear() -> None:
    assert shown("http://user:pw@example.com:8080/a?b=c") == "http://example.com:8080/a?b=c"
    assert shown("http://example.com/@home") == "http://example.com/@home"


def test_every_event_and_field_written_is_documented() -> None:
    doc = DOCS.read_text(encoding="utf-8")
    source = (Path(__file__).resolve().parent.parent / "crawler" / "observe").glob("*.py")
    code = "\n".join(path.read_text(encoding="utf-8") for path in source)
    for event in ("started", "page", "host_parked", "host_backed_off", "host_recovered", "finished", "stopped",
                  "failed"):
        assert f"`{event}`" in doc, event
        assert f'"{event}"' in code, event
    for field in ("v", "event", "time", "db", "seeds", "workers", "pid", "url", "status", "error", "depth", "bytes",
                  "ms", "host", "reason", "until", "outcome", "pages", "errors", "retries", "unchanged", "seconds",
                  "parked", "kind"):
        assert f"`{field}`" in doc, field


def test_a_host_slowed_down_by_a_429_is_a_host_backed_off_event(site: Site, cli: Any, db: Path, tmp_path: Path) -> None:
    site.routes.update({"/": html("Home", "/busy"), "/busy": SequenceOf((reply(429, "slow down"), html("Busy")))})
    events = tmp_path / "events.jsonl"
    done = cli.in_process("crawl", site.url("/"), "--db", db, "--events", events, "--retries", 1,
                          env={"CRAWLER_RETRY_BACKOFF": "0.01", "CRAWLER_RETRY_AFTER_MAX": "0.1"})
    assert done.returncode == 0, done.stderr
    backed_off = [e for e in read_events(events) if e["event"] == "host_backed_off"]
    assert [e["host"] for e in backed_off] == [site.url("/").removeprefix("http://").rstrip("/")]
    assert backed_off[0]["reason"].startswith("429: ")
    assert [e["status"] for e in read_events(events) if e["event"] == "page"] == [200, 200]   # the retry's answer
