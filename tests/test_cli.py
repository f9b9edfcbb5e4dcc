"""The command line as a user meets it: help for every command, and bad input answered with exit
code 2 and exactly one line on stderr, never a traceback (INTERFACE.md, "Exit codes").

Every test runs ``python -m crawler`` in a subprocess, in a temporary folder, with no CRAWLER_*
variables from the caller's environment.
"""

from __future__ import annotations

import resource
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import FAST
from site_server import Site, Slow, html

from crawler.storage.schema import SCHEMA

CRAWL_OPTIONS = ("--seeds", "--db", "--config", "--max-pages", "--max-depth", "--concurrency", "--per-host",
                 "--delay", "--scope", "--allow-domain", "--include", "--exclude", "--parse-mode",
                 "--parse-workers", "--timeout", "--retries", "--max-bytes", "--user-agent", "--no-robots",
                 "--no-bodies", "--recrawl", "--older-than", "--sitemaps", "--allow-private",
                 "--ca-bundle", "--insecure")
COMMAND_OPTIONS: dict[str, tuple[str, ...]] = {
    "crawl": CRAWL_OPTIONS,
    "export": ("--db", "--format", "--out", "--status", "--fields", "--since"),
    "add": ("--db", "--seeds"),
    "stats": ("--db", "--hosts", "--json"),
    "explain": ("--db", "--json"),
    "version": (),
}


def flat(text: str) -> str:
    """Output with every run of whitespace made one space: what it says, not how it is wrapped."""
    return " ".join(text.split())


def urls_of(cli: Any, db: Path) -> list[str]:
    return sorted(rec["url"] for rec in cli.export(db))


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, make_cli: Any) -> Path:
    """A finished job of one page, crawled once for the module from a short-lived site.
    Tests only read it."""
    folder = tmp_path_factory.mktemp("finished")
    db = folder / "done.db"
    with Site({"/": html("Home")}) as site:
        done = make_cli(folder).in_process("crawl", site.url("/"), "--db", db, *FAST)
    assert done.returncode == 0, done.stderr
    return db


# -- help ---------------------------------------------------------------------------------------


def test_top_level_help_lists_every_command(cli: Any) -> None:
    done = cli.in_process("--help")
    assert done.returncode == 0, done.stderr
    for command in COMMAND_OPTIONS:
        assert command in done.stdout


def test_no_arguments_prints_help(cli: Any) -> None:
    done = cli.in_process()
    assert done.returncode == 0, done.stderr
    assert "crawl" in done.stdout


def listed_commands(cli: Any) -> list[str]:
    """The commands that ``crawler --help`` lists."""
    lines = cli.in_process("--help").stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Commands:")
    return [line.split()[0] for line in lines[start + 1:] if line.startswith("  ") and line.strip()]


@pytest.mark.parametrize("command", sorted(COMMAND_OPTIONS))
def test_every_command_has_help(cli: Any, command: str) -> None:
    done = cli.in_process(command, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert f"crawler {command}" in done.stdout
    for option in COMMAND_OPTIONS[command]:
        assert option in done.stdout, f"{command} --help does not mention {option}"


def test_commands_added_later_have_help_too(cli: Any) -> None:
    """Commands this file does not know yet (INTERFACE.md promises more) still answer --help."""
    listed = listed_commands(cli)
    assert set(COMMAND_OPTIONS) <= set(listed)
    for command in set(listed) - set(COMMAND_OPTIONS):
        done = cli.in_process(command, "--help")
        assert done.returncode == 0, f"{command} --help: {done.stderr}"
        assert f"crawler {command}" in done.stdout


def test_python_dash_m_and_the_console_script_agree(cli: Any) -> None:
    module = cli("--help")
    script = Path(sys.executable).parent / "crawler"
    assert script.exists()
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=30, check=False,
                          cwd=cli.cwd)
    assert (done.returncode, done.stdout) == (0, module.stdout)


def test_version(cli: Any) -> None:
    done = cli.in_process("version")
    assert done.returncode == 0
    assert done.stdout.startswith("crawler ")


# -- bad input: exit 2, one line ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("crawl", "not a url"), "not an absolute http(s) URL"),
        (("crawl", "example.com"), "did you mean"),
        (("crawl", "ftp://host/x"), "unsupported scheme 'ftp'"),
        (("crawl", "--seeds", "/missing/file"), "/missing/file"),
        (("crawl", "--concurrency", "0", "http://127.0.0.1:9/"), "concurrency must be at least 1"),
        (("crawl", "--concurrency", "abc", "http://127.0.0.1:9/"), "--concurrency"),
        (("crawl", "--timeout", "0", "http://127.0.0.1:9/"), "timeout must be positive"),
        (("crawl", "--scope", "planet", "http://127.0.0.1:9/"), "scope must be one of"),
        (("crawl", "--include", "(", "http://127.0.0.1:9/"), "regex '('"),
        (("crawl", "--recrawl", "--older-than", "soon", "http://127.0.0.1:9/"), "bad duration"),
        (("crawl", "--no-such-flag"), "--no-such-flag"),
        (("crawl", "--config", "/missing/config.toml", "http://127.0.0.1:9/"), "config file not found"),
        (("export", "--format", "xml"), "unknown format 'xml'"),
        (("export", "--db", "/missing.db"), "no job file at /missing.db"),
        (("stats", "--db", "/missing.db"), "no job file at /missing.db"),
        (("explode",), "explode"),
    ],
)
def test_bad_input_is_exit_2_with_one_line(cli: Any, args: tuple[str, ...], words: str) -> None:
    line = cli.fails(2, *args)
    assert line.startswith("crawler: ")
    assert words in line


def test_include_bad_regex_creates_no_job(cli: Any) -> None:
    cli.fails(2, "crawl", "--include", "(", "http://127.0.0.1:9/", "--db", "job.db")
    assert not (cli.cwd / "job.db").exists()


def test_export_unknown_field(cli: Any, finished: Path) -> None:
    db = finished
    line = cli.fails(2, "export", "--db", db, "--fields", "url,nope")
    assert "unknown field 'nope'" in line


def test_export_to_a_folder_that_does_not_exist(cli: Any, tmp_path: Path, finished: Path) -> None:
    db = finished
    line = cli.fails(2, "export", "--db", db, "--out", tmp_path / "no" / "such" / "out.jsonl")
    assert "cannot write" in line


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("bogus_key = 1\n", "unknown key 'bogus_key'"),
        ('concurrency = "many"\n', "bad value for concurrency"),
        ("max_depth = 1.5\n", "max_depth"),
        ("include = [1, 2]\n", "include"),
        ("scope = [\n", "not valid TOML"),
    ],
)
def test_bad_config_file(cli: Any, tmp_path: Path, text: str, words: str) -> None:
    config = tmp_path / "crawl.toml"
    config.write_text(text, encoding="utf-8")
    line = cli.fails(2, "crawl", "--config", config, "http://127.0.0.1:9/", "--db", tmp_path / "job.db")
    assert words in line
    assert str(config) in line


def test_out_of_range_value_in_config_file(cli: Any, tmp_path: Path) -> None:
    config = tmp_path / "crawl.toml"
    config.write_text("concurrency = 0\n", encoding="utf-8")
    line = cli.fails(2, "crawl", "--config", config, "http://127.0.0.1:9/", "--db", tmp_path / "job.db")
    assert "concurrency must be at least 1, got 0" in line


@pytest.mark.parametrize("where", ["file", "environment"])
def test_out_of_range_value_names_its_source(cli: Any, tmp_path: Path, where: str) -> None:
    config = tmp_path / "crawl.toml"
    config.write_text("concurrency = 0\n" if where == "file" else "", encoding="utf-8")
    env = {"CRAWLER_CONCURRENCY": "0"} if where == "environment" else {}
    line = cli.fails(2, "crawl", "--config", config, "http://127.0.0.1:9/", "--db", tmp_path / "job.db", env=env)
    assert (str(config) if where == "file" else "CRAWLER_CONCURRENCY") in line


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("CRAWLER_CONCURRENCY", "abc", "CRAWLER_CONCURRENCY"),
        ("CRAWLER_TIMEOUT", "-1", "timeout must be positive"),
        ("CRAWLER_ROBOTS", "maybe", "CRAWLER_ROBOTS"),
        ("CRAWLER_NO_SUCH_THING", "1", "CRAWLER_NO_SUCH_THING"),
    ],
)
def test_bad_environment(cli: Any, tmp_path: Path, name: str, value: str, words: str) -> None:
    line = cli.fails(2, "crawl", "http://127.0.0.1:9/", "--db", tmp_path / "job.db", env={name: value})
    assert words in line


# -- seeds files ---------------------------------------------------------------------------------


def test_seeds_file_with_a_bad_line_reports_it_and_crawls_the_rest(site: Site, cli: Any, tmp_path: Path) -> None:
    site.routes.update({"/a": html("A"), "/b": html("B")})
    seeds = tmp_path / "seeds.txt"
    seeds.write_text(f"# my seeds\n{site.url('/a')}\n\nnot a url\n  {site.url('/b')}  \nftp://x/y\n",
                     encoding="utf-8")
    done = cli.in_process("crawl", "--seeds", "seeds.txt", "--db", "job.db", *FAST)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    reported = done.stderr.splitlines()
    assert "crawler: seeds.txt:4: not an absolute http(s) URL: 'not a url' (skipped)" in reported
    assert any(line.startswith("crawler: seeds.txt:6: unsupported scheme 'ftp' in 'ftp://x/y'") for line in reported)
    assert done.stderr.count("(skipped)") == 2
    assert urls_of(cli, tmp_path / "job.db") == [site.url("/a"), site.url("/b")]


def test_seeds_file_with_no_valid_url(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "seeds.txt").write_text("# nothing here\n\nnot a url\n", encoding="utf-8")
    done = cli.in_process("crawl", "--seeds", "seeds.txt", "--db", "job.db")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    *warnings, error = done.stderr.splitlines()
    assert [w.split(": ")[1] for w in warnings] == ["seeds.txt:3"]
    assert error == "crawler: error: no valid URL in seeds file seeds.txt"
    assert not (tmp_path / "job.db").exists()


def test_empty_seeds_file(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "seeds.txt").write_text("", encoding="utf-8")
    assert "no valid URL" in cli.fails(2, "crawl", "--seeds", "seeds.txt", "--db", "job.db")


def test_seeds_from_stdin(site: Site, cli: Any, tmp_path: Path) -> None:
    site.routes.update({"/a": html("A"), "/b": html("B")})
    done = cli.in_process("crawl", "--seeds", "-", "--db", "job.db", *FAST,
               stdin=f"{site.url('/a')}\nnonsense\n{site.url('/b')}\n")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0].startswith("crawler: stdin:2: ")
    assert urls_of(cli, tmp_path / "job.db") == [site.url("/a"), site.url("/b")]


def test_seeds_file_and_arguments_together(site: Site, cli: Any, tmp_path: Path) -> None:
    site.routes.update({"/a": html("A"), "/b": html("B")})
    (tmp_path / "seeds.txt").write_text(site.url("/a") + "\n", encoding="utf-8")
    done = cli.in_process("crawl", site.url("/b"), "--seeds", "seeds.txt", "--db", "job.db", *FAST)
    assert done.returncode == 0, done.stderr
    assert urls_of(cli, tmp_path / "job.db") == [site.url("/a"), site.url("/b")]


LONG_FOLDER = "a-folder-with-a-long-name-as-temporary-folders-often-have"


def test_seeds_file_warning_is_one_line_however_long(site: Site, cli: Any, tmp_path: Path) -> None:
    site.routes.update({"/a": html("A")})
    folder = tmp_path / LONG_FOLDER
    folder.mkdir()
    seeds = folder / "seeds.txt"
    seeds.write_text(f"{site.url('/a')}\nnot a url\nftp://x/y\n", encoding="utf-8")
    done = cli.in_process("crawl", "--seeds", seeds, "--db", "job.db", *FAST)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"crawler: {seeds}:2: not an absolute http(s) URL: 'not a url' (skipped)",
        f"crawler: {seeds}:3: unsupported scheme 'ftp' in 'ftp://x/y' (only http and https are crawled) (skipped)",
    ]


def test_seeds_file_line_with_square_brackets(site: Site, cli: Any, tmp_path: Path) -> None:
    site.routes.update({"/a": html("A")})
    (tmp_path / "seeds.txt").write_text(f"{site.url('/a')}\n[b]bold[/b]\nx[/i]\n", encoding="utf-8")
    done = cli.in_process("crawl", "--seeds", "seeds.txt", "--db", "job.db", *FAST)
    assert "Traceback" not in done.stderr
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "crawler: seeds.txt:2: not an absolute http(s) URL: '[b]bold[/b]' (skipped)",
        "crawler: seeds.txt:3: not an absolute http(s) URL: 'x[/i]' (skipped)",
    ]


# -- job files -----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["stats", "export", "crawl"])
def test_a_file_that_is_not_sqlite(cli: Any, tmp_path: Path, command: str) -> None:
    bogus = tmp_path / "notes.db"
    bogus.write_text("these are my notes, not a database\n" * 50, encoding="utf-8")
    args = ("crawl", "http://127.0.0.1:9/", "--db", bogus, *FAST) if command == "crawl" else (command, "--db", bogus)
    line = cli.fails((1, 2), *args)
    assert str(bogus) in line
    assert bogus.read_text(encoding="utf-8").startswith("these are my notes")


@pytest.mark.parametrize("command", ["stats", "export", "crawl"])
def test_a_sqlite_file_that_is_not_a_job(cli: Any, tmp_path: Path, command: str) -> None:
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE contacts (name TEXT)")
    conn.commit()
    conn.close()
    args = ("crawl", "http://127.0.0.1:9/", "--db", other, *FAST) if command == "crawl" else (command, "--db", other)
    line = cli.fails(1, *args)
    assert "not a crawler job" in line


def test_a_job_folder_that_cannot_be_made(cli: Any) -> None:
    line = cli.fails(1, "crawl", "http://127.0.0.1:9/", "--db", "/proc/no-such-dir/job.db", *FAST)
    assert line.startswith("crawler: cannot run: ")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc, where no file can be created")
def test_a_job_folder_where_no_file_can_be_created(cli: Any) -> None:
    line = cli.fails(1, "crawl", "http://127.0.0.1:9/", "--db", "/proc/job.db", *FAST)
    assert line.startswith("crawler: cannot run: ")


def test_no_seeds_and_no_job_leaves_no_job_file(cli: Any, tmp_path: Path) -> None:
    cli.fails(2, "crawl", "--db", "typo.db", *FAST)
    assert not (tmp_path / "typo.db").exists()


def test_default_job_file_is_data_crawl_db(cli: Any) -> None:
    with Site({"/": html("Home")}) as site:
        done = cli.in_process("crawl", site.url("/"), *FAST)
    assert done.returncode == 0, done.stderr
    assert (cli.cwd / "data" / "crawl.db").is_file()
    assert [r["title"] for r in cli.export(Path("data/crawl.db"))] == ["Home"]
    assert cli.in_process("stats").returncode == 0
    assert cli.in_process("export").stdout.count("\n") == 1


def test_a_job_crawled_by_another_live_process_is_refused(site: Site, cli: Any, tmp_path: Path) -> None:
    site.routes.update({"/": html("Home", "/slow"), "/slow": Slow(30.0, html("Slow"))})
    db = tmp_path / "job.db"
    first = cli.popen("crawl", site.url("/"), "--db", db, "--timeout", "20", "--retries", "0")
    try:
        assert site.wait_for("/slow"), "the first crawl never got going"
        assert db.exists()
        # Without seeds (with seeds the job takes them: tests/test_seeding.py).
        line = cli.fails(2, "crawl", "--db", db, *FAST)
        assert f"process {first.pid}" in line
        assert str(db) in line
        assert first.poll() is None, "the second crawler disturbed the first"
        # Readers are welcome while a crawl runs.
        assert cli.in_process("stats", "--db", db, "--json").returncode == 0
    finally:
        first.kill()
        first.communicate(timeout=30)
    # A lock held by a dead process is no lock: the job resumes.
    site.routes["/slow"] = html("Slow, but now")
    started = time.monotonic()
    resumed = cli.in_process("crawl", "--db", db, *FAST)
    assert resumed.returncode == 0, resumed.stderr
    assert time.monotonic() - started < 20
    assert {r["title"] for r in cli.export(db)} == {"Home", "Slow, but now"}


# -- settings: file < environment < flags ------------------------------------------------------


def ten_links() -> dict[str, Any]:
    routes: dict[str, Any] = {f"/p{i}": html(f"P{i}") for i in range(10)}
    routes["/"] = html("Home", *(f"/p{i}" for i in range(10)))
    return routes


def test_config_file_is_used(site: Site, cli: Any, tmp_path: Path) -> None:
    site.routes.update(ten_links())
    config = tmp_path / "crawl.toml"
    config.write_text('max_depth = 0\ntimeout = 1.0\nexclude = ["/nothing"]\n', encoding="utf-8")
    done = cli.in_process("crawl", site.url("/"), "--config", config, "--db", "job.db")
    assert done.returncode == 0, done.stderr
    assert urls_of(cli, tmp_path / "job.db") == [site.url("/")]


def test_environment_beats_config_file_and_flags_beat_both(site: Site, cli: Any, tmp_path: Path) -> None:
    site.routes.update(ten_links())
    config = tmp_path / "crawl.toml"
    config.write_text("max_pages = 1\n", encoding="utf-8")
    env = {"CRAWLER_MAX_PAGES": "3"}
    done = cli.in_process("crawl", site.url("/"), "--config", config, "--db", "env.db", *FAST, env=env)
    assert done.returncode == 0, done.stderr
    assert len(cli.export(tmp_path / "env.db")) == 3
    done = cli.in_process("crawl", site.url("/"), "--config", config, "--db", "flag.db", "--max-pages", "5", *FAST, env=env)
    assert done.returncode == 0, done.stderr
    assert len(cli.export(tmp_path / "flag.db")) == 5


def test_export_merges_several_jobs_and_filters_by_time(site: Site, cli: Any, tmp_path: Path) -> None:
    site.routes.update({"/a": html("A"), "/b": html("B")})
    for name in ("a", "b"):
        done = cli.in_process("crawl", site.url(f"/{name}"), "--db", f"{name}.db", *FAST)
        assert done.returncode == 0, done.stderr
    merged = cli.export(tmp_path / "a.db", "--db", tmp_path / "b.db")
    assert sorted(r["title"] for r in merged) == ["A", "B"]
    assert len(cli.export(tmp_path / "a.db", "--since", "2000-01-01T00:00:00Z")) == 1
    assert cli.export(tmp_path / "a.db", "--since", "2999-01-01T00:00:00Z") == []
    done = cli.in_process("export", "--db", tmp_path / "a.db", "--out", "a.jsonl")
    assert done.returncode == 0, done.stderr
    assert flat(done.stderr) == "1 record written to a.jsonl"
    assert (tmp_path / "a.jsonl").read_text(encoding="utf-8").count("\n") == 1


# -- export edge cases ---------------------------------------------------------------------------


@pytest.mark.parametrize("out", ["-", "/dev/stdout"])
def test_export_into_a_closed_pipe_exits_0(cli: Any, tmp_path: Path, out: str) -> None:
    db = tmp_path / "many.db"                  # 5,000 pages, ~1 MB of JSON lines: more than a pipe holds
    conn = sqlite3.connect(db)
    conn.executescript(SCHEMA)
    conn.executemany("INSERT INTO urls (id, url, host, depth, state) VALUES (?, ?, 'a.test', 0, 2)",
                     ((n, f"http://a.test/{n}") for n in range(5000)))
    conn.executemany("INSERT INTO pages (url_id, status, fetched_at) VALUES (?, 200, '2026-11-29T00:00:00Z')",
                     ((n,) for n in range(5000)))
    conn.commit()
    conn.close()
    proc = cli.popen("export", "--db", db, "--format", "jsonl", "--out", out)
    assert proc.stdout is not None
    assert proc.stderr is not None
    assert proc.stdout.readline().startswith("{")
    proc.stdout.close()               # as `| head -1` does
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=30) == 0, err
    assert "Traceback" not in err


def fetched_at(cli: Any, db: Path) -> datetime:
    (rec,) = cli.export(db, "--fields", "fetched_at")
    return datetime.fromisoformat(rec["fetched_at"].replace("Z", "+00:00"))


def test_export_since_in_utc(cli: Any, finished: Path) -> None:
    db = finished
    when = fetched_at(cli, db)
    before, after = when - timedelta(hours=1), when + timedelta(hours=1)
    assert len(cli.export(db, "--since", before.strftime("%Y-%m-%dT%H:%M:%SZ"))) == 1
    assert cli.export(db, "--since", after.strftime("%Y-%m-%dT%H:%M:%SZ")) == []


def test_export_since_with_a_utc_offset(cli: Any, finished: Path) -> None:
    db = finished
    an_hour_before = (fetched_at(cli, db) - timedelta(hours=1)).astimezone(timezone(timedelta(hours=2)))
    assert len(cli.export(db, "--since", an_hour_before.isoformat())) == 1


def test_export_since_that_is_not_a_time(cli: Any, finished: Path) -> None:
    db = finished
    line = cli.fails(2, "export", "--db", db, "--since", "yesterday")
    assert "yesterday" in line


def test_crawl_lifts_the_soft_open_files_limit_to_the_hard_one() -> None:
    script = (
        "import resource\n"
        "hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
        "from crawler.crawl_command import raise_open_files_limit\n"
        "print(*raise_open_files_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    before, after, soft_now, hard = (int(x) for x in done.stdout.split())
    assert before == 256
    assert after == soft_now
    assert soft_now == (256 if hard in (resource.RLIM_INFINITY, 256) else hard)
