"""``crawler stats --hosts`` (crawler/stats.py): the job's hosts by pages, with errors, queued URLs and state."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from job_files import hosts_job
from site_server import Site, html

from crawler.storage.read import JobReader


def test_hosts_come_most_pages_first_with_errors_queued_and_state(cli: Any, tmp_path: Path) -> None:
    db = hosts_job(tmp_path / "job.db")
    done = cli.in_process("stats", "--db", db, "--hosts", "--json")
    assert done.returncode == 0, done.stderr
    hosts = json.loads(done.stdout)
    assert [(h["host"], h["pages"], h["errors"], h["queued"], h["state"]) for h in hosts] == [
        ("done.test", 5, 0, 0, "done"),
        ("busy.test", 3, 1, 3, "queued"),                 # two pending and one leased
        ("capped.test", 2, 0, 0, "budget_reached"),       # from the hosts table
        ("capped-no-row.test", 1, 0, 0, "budget_reached"),  # from its URLs excluded with host_budget
        ("dead.test:8080", 1, 1, 1, "parked"),            # parked, even with a URL left
        ("new.test", 0, 0, 2, "queued"),                  # nothing fetched yet: no row in the hosts table
    ]
    parked = {h["host"]: (h["parked_until"], h["parked_error"]) for h in hosts}
    assert parked["dead.test:8080"] == ("2026-11-30T10:00:00Z", "connect")
    assert {v for k, v in parked.items() if k != "dead.test:8080"} == {(None, None)}


def test_the_hosts_listed_are_the_hosts_stats_counts(cli: Any, tmp_path: Path) -> None:
    db = hosts_job(tmp_path / "job.db")
    with JobReader(db) as reader:
        assert len(reader.hosts()) == reader.host_count() == reader.summary()["hosts"] == 6
        assert [h["host"] for h in reader.hosts(limit=2)] == ["done.test", "busy.test"]
    assert cli.stats(db)["hosts"] == 6


def test_the_text_table_has_aligned_columns(cli: Any, tmp_path: Path) -> None:
    db = hosts_job(tmp_path / "job.db")
    done = cli.in_process("stats", "--db", db, "--hosts")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["host", "pages", "errors", "queued", "state"]
    assert [line.split()[:4] for line in lines[1:]] == [
        ["done.test", "5", "0", "0"], ["busy.test", "3", "1", "3"], ["capped.test", "2", "0", "0"],
        ["capped-no-row.test", "1", "0", "0"], ["dead.test:8080", "1", "1", "1"], ["new.test", "0", "0", "2"]]
    # Numbers are right-aligned under their heading, and every state starts in one column.
    for heading in ("pages", "errors", "queued"):
        end = lines[0].index(heading) + len(heading)
        assert {line[end - 1] for line in lines[1:]} <= set("0123456789"), heading
        assert {line[end:end + 2] for line in lines[1:]} == {"  "}, heading
    column = lines[0].index("state")
    assert [line[column:] for line in lines[1:]] == [
        "done", "queued", "budget reached", "budget reached", "parked until 2026-11-30T10:00:00Z (connect)", "queued"]


def test_a_long_table_shows_the_top_50_and_says_how_many_were_left_out(cli: Any, tmp_path: Path) -> None:
    many = {f"h{n:02}.test": ([(200, None)] * n, 0, 0, [], ("active", None, None)) for n in range(1, 61)}
    many["big.test"] = ([(200, None)] * 1234, 0, 0, [], ("active", None, None))
    db = hosts_job(tmp_path / "job.db", many)
    text = cli.in_process("stats", "--db", db, "--hosts").stdout.splitlines()
    assert len(text) == 1 + 50 + 1
    assert text[1].split()[:2] == ["big.test", "1,234"]
    assert [line.split()[0] for line in text[2:51]] == [f"h{n:02}.test" for n in range(60, 11, -1)]
    assert text[-1] == "... and 11 more hosts (--json lists all 61)"
    listed = json.loads(cli.in_process("stats", "--db", db, "--hosts", "--json").stdout)
    assert [h["pages"] for h in listed] == [1234, *range(60, 0, -1)]


def test_a_job_with_no_hosts_yet(cli: Any, tmp_path: Path) -> None:
    db = hosts_job(tmp_path / "job.db", {})
    assert cli.in_process("stats", "--db", db, "--hosts").stdout.splitlines() == [
        "host  pages  errors  queued  state", "(no hosts yet)"]
    assert json.loads(cli.in_process("stats", "--db", db, "--hosts", "--json").stdout) == []


def test_a_real_crawl_over_a_live_and_a_dead_host(site: Site, cli: Any, tmp_path: Path) -> None:
    site.routes.update({"/": html("Home", "/a", "/b", "/missing"), "/a": html("A"), "/b": html("B")})
    with socket.socket() as closed:   # a port that was free a moment ago: nothing listens there
        closed.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{closed.getsockname()[1]}"
    done = cli.in_process("crawl", site.url("/"), f"http://{dead}/", "--db", "job.db", "--timeout", "2", "--retries", "0")
    assert done.returncode == 0, done.stderr
    hosts = {h["host"]: h for h in json.loads(cli.in_process("stats", "--db", "job.db", "--hosts", "--json").stdout)}
    live = hosts[f"127.0.0.1:{site.port}"]
    assert (live["pages"], live["errors"], live["queued"], live["state"]) == (4, 1, 0, "done")   # /missing is a 404
    # parked: its error recorded once, its URL left queued for a run after robots_retry_after
    assert (hosts[dead]["pages"], hosts[dead]["errors"], hosts[dead]["queued"], hosts[dead]["state"]) == (1, 1, 1, "parked")
    assert hosts[dead]["parked_error"] == "connect"   # its robots.txt, so the host, was not reached
    assert list(hosts) == [f"127.0.0.1:{site.port}", dead]
