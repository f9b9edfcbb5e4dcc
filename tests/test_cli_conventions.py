"""The conventions a command-line user expects: ``-h`` and ``--version``, a refused ``--workers 0``,
counts that agree in number (``1 page``) and read alike in every command, and no lock file left
beside a job after a run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from conftest import FAST
from site_server import Site, html

QUICK = (*FAST, "--no-robots")
COMMANDS = ("crawl", "add", "stats", "explain", "export", "report", "bench", "version")


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_dash_h_is_help_for_the_app_and_every_command(cli: Any, command: str) -> None:
    done = cli.in_process(*[command] * bool(command), "-h")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith(f"Usage: crawler {command}".rstrip())
    assert done.stdout == cli.in_process(*[command] * bool(command), "--help").stdout


def test_dash_dash_version_prints_what_the_version_command_prints(cli: Any) -> None:
    done = cli.in_process("--version")
    assert (done.returncode, done.stderr) == (0, "")
    assert re.fullmatch(r"crawler \d+\.\d+\S*\n", done.stdout)
    assert done.stdout == cli.in_process("version").stdout


@pytest.mark.parametrize("value", ["0", "00"])
def test_workers_0_is_refused_in_one_line(cli: Any, tmp_path: Path, value: str) -> None:
    done = cli.in_process("crawl", "http://127.0.0.1:9/", "--db", "job.db", "--workers", value)
    assert done.returncode == 2
    assert done.stderr == f"crawler: error: --workers must be a number of processes (1 or more) or auto, got '{value}'\n"
    assert not (tmp_path / "job.db").exists()


def test_one_of_a_thing_is_singular_in_the_summary_the_export_and_the_report(site: Site, cli: Any,
                                                                           tmp_path: Path) -> None:
    site.routes.update({"/": html("Home", "/gone")})
    done = cli.in_process("crawl", site.url("/"), "--db", "job.db", "--max-depth", "0", *QUICK)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "this run  1 page in " in lines[1]
    assert lines[1].endswith(", 0 errors, 0 retries")
    assert lines[2] == "job       job.db: 1 page, state finished"
    done = cli.in_process("export", "--db", "job.db", "--out", "pages.jsonl")
    assert done.stderr == "1 record written to pages.jsonl\n"

    done = cli.in_process("crawl", site.url("/"), "--db", "two.db", *QUICK)
    assert done.returncode == 0, done.stderr
    done = cli.in_process("report", "--db", "two.db", "--out", "r.html")
    assert done.stderr == "report of 2 pages (1 broken URL) written to r.html\n"
    assert "1 broken URL, linked 1 time: " in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_stats_prints_counts_and_bytes_as_the_crawl_summary_does(site: Site, cli: Any, tmp_path: Path) -> None:
    site.routes.update({"/": html("Many links", *(f"/p{i}" for i in range(1_200)))})
    done = cli.in_process("crawl", site.url("/"), "--db", "job.db", "--max-pages", "1", *QUICK)
    assert done.returncode == 0, done.stderr
    assert "queue     1,200 pending, 0 excluded" in done.stdout

    text = dict(line.split(maxsplit=1) for line in cli.in_process("stats", "--db", "job.db").stdout.splitlines()
                if not line.startswith("pass "))
    assert text["links"] == "1,200"
    assert text["queue"] == "1,200 pending, 0 excluded (never fetched)"
    assert re.fullmatch(r"\d+\.\d KB", text["bytes"]), text["bytes"]
    raw = cli.stats(tmp_path / "job.db")
    assert (raw["links"], raw["queue"]["pending"]) == (1_200, 1_200)
    assert raw["bytes"] > 1024


def test_no_lock_file_is_left_beside_a_job_after_a_run(site: Site, cli: Any, tmp_path: Path) -> None:
    site.routes.update({"/": html("Home")})
    assert cli.in_process("crawl", site.url("/"), "--db", "job.db", *QUICK).returncode == 0
    assert cli.in_process("add", "--db", "job.db", site.url("/more")).returncode == 0
    assert cli.in_process("crawl", "--db", "job.db", *QUICK).returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("job.db")) == ["job.db"]


def test_no_lock_file_is_left_beside_a_file_refused_as_no_job(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("my notes\n", encoding="utf-8")
    done = cli.in_process("crawl", "http://127.0.0.1:9/", "--db", "notes.db", *QUICK)
    assert done.returncode == 1, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_names_values_as_a_user_types_them_not_as_python_types(cli: Any, command: str) -> None:
    text = cli.in_process(command, "--help").stdout
    assert not re.search(r"<\w+(\[\w+\])?>", text), text


def test_crawl_help_says_what_each_value_is(cli: Any) -> None:
    text = " ".join(cli.in_process("crawl", "--help").stdout.split())
    for shown in ("[URL]...", "URL... Seed URLs", "--seeds FILE", "--db FILE", "--max-pages N", "--delay SECONDS",
                  "--include REGEX", "--workers N|auto", "--older-than AGE", "--frontier URL"):
        assert shown in text


def test_crawl_help_groups_its_options_in_panels_as_wget_does(cli: Any) -> None:
    text = cli.in_process("crawl", "--help").stdout
    panels = {title: re.findall(r"^  (-[-\w]+)", body, re.MULTILINE)
              for title, body in re.findall(r"^(\S[^\n]*):\n((?:  [^\n]*\n|\n(?=  ))+)", text, re.MULTILINE)}
    assert list(panels) == ["Arguments", "Job", "Scope", "Politeness", "Requests", "Parsing", "Rendering", "Access",
                            "References", "Workers & sharing", "Output", "Options"]
    assert panels["Options"] == ["-h"]
    assert "--delay" in panels["Politeness"]
    assert "--include" in panels["Scope"]
    assert "--workers" in panels["Workers & sharing"]
    assert panels["Parsing"][-3:] == ["--extract", "--plugin", "--no-structured-data"]
    assert panels["Output"][-2:] == ["--metrics", "--events"]
    assert sum(map(len, panels.values())) == 57 + 1   # each of the 57 options once, and -h
