"""The crawl's session: cookies kept and sent, a form login with its CSRF token, a session logged in
again when it expires, a login that fails, logout links never followed, a resume after kill -9 that
goes on with the stored session, and no password or cookie value in the job file or the report."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from big_site import wait_until
from session_site import LoginSite

from crawler.session.guard import DEFAULT_GUARD, Guard
from crawler.session.jar import redacted
from crawler.session.store import seal, unseal
from crawler.storage.read import decode_headers

PASSWORD = "correct-horse-" + "7f3a9"
QUICK = ("--timeout", "5", "--retries", "0")


@pytest.fixture(autouse=True)
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The session key goes to this test's own data folder, never the user's."""
    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    return home


@pytest.fixture
def login_site() -> Iterator[LoginSite]:
    with LoginSite(PASSWORD, pages=5) as site:
        yield site


def recipe(tmp_path: Path, site: LoginSite, extra: str = "", password: str = "${SITE_PASSWORD}") -> Path:
    path = tmp_path / "login.toml"
    path.write_text(f'url = "{site.url("/login")}"\nform = "form#login"\n{extra}\n'
                    f'[fields]\nuser = "alice"\npassword = "{password}"\n'
                    '[check]\nlogged_in = "a.me"\nlogged_out_url = "/login"\n')
    return path


def env(password: str = PASSWORD) -> dict[str, str]:
    return {"SITE_PASSWORD": password}


def statuses(cli: Any, db: Path, site: LoginSite) -> dict[str, int | None]:
    prefix = site.url("")
    return {r["url"].removeprefix(prefix): r["status"] for r in cli.export(db)}


PAGES = {"/home": 200, **{f"/p{n}": 200 for n in range(1, 6)}}


@pytest.mark.parametrize("transport", ["aiohttp", "httpcore"])
def test_a_cookie_a_site_set_is_sent_again_by_the_run_that_resumes_the_job(login_site: LoginSite, cli: Any, db: Path,
                                                                           transport: str) -> None:
    args = ("--db", db, *QUICK)
    first = cli.in_process("crawl", login_site.url("/open"), "--max-pages", "1", *args, env={"CRAWLER_TRANSPORT": transport})
    assert first.returncode == 0, first.stderr
    assert statuses(cli, db, login_site) == {"/open": 200}   # /members queued, not fetched yet
    resumed = cli.in_process("crawl", "--max-pages", "0", *args, env={"CRAWLER_TRANSPORT": transport})
    assert resumed.returncode == 0, resumed.stderr
    assert statuses(cli, db, login_site) == {"/open": 200, "/members": 200}


@pytest.mark.parametrize("parse_mode", ["async", "thread", "process"])
def test_a_crawl_logs_in_through_a_form_with_a_csrf_token_before_its_first_request(
        login_site: LoginSite, cli: Any, db: Path, tmp_path: Path, parse_mode: str) -> None:
    done = cli.in_process("crawl", login_site.url("/home"), "--db", db, "--login", recipe(tmp_path, login_site),
                          "--parse-mode", parse_mode, *QUICK, env=env())
    assert done.returncode == 0, done.stderr
    assert login_site.logins == 1
    assert statuses(cli, db, login_site) == PAGES


def test_a_session_that_expires_is_logged_in_again_once_and_the_crawl_goes_on(
        cli: Any, db: Path, tmp_path: Path) -> None:
    with LoginSite(PASSWORD, pages=5, expire_after=4) as site:
        done = cli.in_process("crawl", site.url("/home"), "--db", db, "--login", recipe(tmp_path, site),
                              "--per-host", "1", *QUICK, env=env())
        assert done.returncode == 0, done.stderr
        assert site.logins == 2, site.hits   # the first, and one when the session had served its 4 pages (the landing one too)
        assert statuses(cli, db, site) == PAGES


def test_a_login_that_fails_stops_the_crawl_with_one_line_and_exit_1_and_the_job_intact(
        login_site: LoginSite, cli: Any, db: Path, tmp_path: Path) -> None:
    line = cli.fails(1, "crawl", login_site.url("/home"), "--db", db, "--login", recipe(tmp_path, login_site),
                     *QUICK, env=env("wrong"))
    assert "did not work" in line, line
    assert PASSWORD not in line
    assert login_site.hits["/home"] == 0   # nothing crawled anonymously
    # The job is intact: its seed still pending, and the right password resumes it.
    done = cli.in_process("crawl", "--db", db, *QUICK, env=env())
    assert done.returncode == 0, done.stderr
    assert statuses(cli, db, login_site) == PAGES


def test_a_page_still_served_logged_out_after_logging_in_again_stops_the_crawl(
        login_site: LoginSite, cli: Any, db: Path, tmp_path: Path) -> None:
    # The recipe's logged-out check is every page's (a selector each page has): logging in again cannot help.
    path = recipe(tmp_path, login_site)
    path.write_text(path.read_text().replace('logged_out_url = "/login"', 'logged_out = "a"'))
    line = cli.fails(1, "crawl", login_site.url("/home"), "--db", db, "--login", path, *QUICK, env=env())
    assert "still served logged out after logging in again" in line, line
    assert login_site.logins == 2


def test_logout_and_delete_links_are_never_requested_and_explain_says_why(
        login_site: LoginSite, cli: Any, db: Path, tmp_path: Path) -> None:
    done = cli.in_process("crawl", login_site.url("/home"), "--db", db, "--login", recipe(tmp_path, login_site),
                          *QUICK, env=env())
    assert done.returncode == 0, done.stderr
    assert login_site.hits["/logout"] == login_site.hits["/item/1/delete"] == 0
    explained = cli.in_process("explain", login_site.url("/logout"), "--db", db, "--json")
    assert explained.returncode == 0, explained.stderr
    assert json.loads(explained.stdout)["decision"] == "session_guard"
    assert "logout" in explained.stdout


def test_a_recipe_can_name_its_own_guard_words(login_site: LoginSite, cli: Any, db: Path, tmp_path: Path) -> None:
    done = cli.in_process("crawl", login_site.url("/home"), "--db", db, "--login",
                          recipe(tmp_path, login_site, extra='guard = ["p3"]'), *QUICK, env=env())
    assert done.returncode == 0, done.stderr
    assert login_site.hits["/p3"] == 0
    assert login_site.hits["/logout"] == 1   # the default list is replaced: the user asked for it


def test_neither_the_password_nor_a_cookie_value_is_in_the_job_file_or_the_report(
        login_site: LoginSite, cli: Any, db: Path, tmp_path: Path) -> None:
    done = cli.in_process("crawl", login_site.url("/home"), login_site.url("/open"), "--db", db,
                          "--login", recipe(tmp_path, login_site), *QUICK, env=env())
    assert done.returncode == 0, done.stderr
    report = tmp_path / "report.html"
    assert cli.in_process("report", "--db", db, "--out", report).returncode == 0
    stats = cli.in_process("stats", "--db", db)
    secrets = [PASSWORD, login_site.open_cookie, *login_site.cookie_values]
    assert len(secrets) == 3
    files = [p for p in tmp_path.iterdir() if p.name.startswith(db.name)] + [report]
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{secret} in {path.name}"
    for text in (done.stdout, done.stderr, stats.stdout):
        assert not any(secret in text for secret in secrets)
    # The stored headers are compressed, so a grep alone would not see them: they are read too.
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT headers, request_headers FROM pages").fetchall()
    finally:
        conn.close()
    stored = [pair for blobs in rows for blob in blobs for pair in decode_headers(blob)]
    assert not [pair for pair in stored if any(secret in pair[1] for secret in secrets)]
    # What they keep of the cookies: their names.
    assert ("Set-Cookie", "visitor=<redacted>; Path=/; HttpOnly") in stored
    assert ("Cookie", "sid=<redacted>") in stored


def test_a_resume_after_kill_9_goes_on_with_the_stored_session_without_logging_in_again(
        cli: Any, db: Path, tmp_path: Path) -> None:
    with LoginSite(PASSWORD, pages=40) as site:
        path = recipe(tmp_path, site)
        proc = cli.popen("crawl", site.url("/home"), "--db", db, "--login", path, "--per-host", "1",
                         "--delay", "0.1", *QUICK, env={**env(), "XDG_DATA_HOME": str(tmp_path / "xdg")})

        def some_pages_in() -> bool:
            wait_until(lambda: site.hits["/p5"] > 0 or proc.poll() is not None)
            time.sleep(0.3)   # a moment for the writer to store them
            return proc.poll() is None

        cli.interrupt(proc, some_pages_in, signal.SIGKILL)
        assert site.logins == 1
        done = cli.in_process("crawl", "--db", db, *QUICK, env=env())
        assert done.returncode == 0, done.stderr
        assert site.logins == 1   # the stored session went on: no second login
        assert statuses(cli, db, site) == {"/home": 200, **{f"/p{n}": 200 for n in range(1, 41)}}


def test_a_session_sealed_on_another_machine_is_said_once_and_the_crawl_logs_in_again(
        login_site: LoginSite, cli: Any, db: Path, tmp_path: Path, data_home: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    args = ("--db", db, "--login", recipe(tmp_path, login_site), *QUICK)
    assert cli.in_process("crawl", login_site.url("/home"), *args, env=env()).returncode == 0
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "elsewhere"))
    done = cli.in_process("crawl", "--recrawl", *args, env=env())
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("cannot be read here") == 1, done.stderr
    assert login_site.logins == 2


def test_cookies_file_loads_a_netscape_cookies_txt(login_site: LoginSite, cli: Any, db: Path, tmp_path: Path) -> None:
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n"
                       f"127.0.0.1\tFALSE\t/\tFALSE\t0\tvisitor\t{login_site.open_cookie}\n")
    done = cli.in_process("crawl", login_site.url("/members"), "--db", db, "--cookies", cookies, *QUICK)
    assert done.returncode == 0, done.stderr
    assert statuses(cli, db, login_site) == {"/members": 200}
    assert login_site.open_cookie.encode() not in db.read_bytes()


def test_a_cookies_file_that_is_none_is_one_line_and_exit_2(cli: Any, db: Path, tmp_path: Path) -> None:
    bad = tmp_path / "cookies.txt"
    bad.write_text("these are not cookies\n")
    line = cli.fails(2, "crawl", "http://127.0.0.1:9/", "--db", db, "--cookies", bad)
    assert f"{bad} is not a Netscape cookies.txt" in line, line
    assert "missing.txt" in cli.fails(2, "crawl", "http://127.0.0.1:9/", "--db", db, "--cookies", tmp_path / "missing.txt")
    assert not db.exists()


@pytest.mark.parametrize(("extra", "named"), [
    ('colour = "blue"', "colour"),
    ('guard = "logout"', "guard"),
])
def test_a_recipe_with_a_mistake_is_one_line_naming_file_and_key_and_exit_2(
        login_site: LoginSite, cli: Any, db: Path, tmp_path: Path, extra: str, named: str) -> None:
    path = recipe(tmp_path, login_site, extra=extra)
    line = cli.fails(2, "crawl", login_site.url("/home"), "--db", db, "--login", path, env=env())
    assert line.startswith(f"crawler: error: {path}: {named} "), line
    assert login_site.hits.total() == 0
    assert not db.exists()


def test_a_recipe_naming_a_variable_not_set_is_one_line_and_exit_2(
        login_site: LoginSite, cli: Any, db: Path, tmp_path: Path) -> None:
    path = recipe(tmp_path, login_site, password="${NOT_SET_ANYWHERE}")
    line = cli.fails(2, "crawl", login_site.url("/home"), "--db", db, "--login", path)
    assert line == (f"crawler: error: {path}: fields.password names ${{NOT_SET_ANYWHERE}}, which is not set in "
                    "the environment"), line
    assert login_site.hits.total() == 0


def test_with_worker_processes_the_crawl_logs_in_once_and_every_worker_has_the_session(
        login_site: LoginSite, cli: Any, db: Path, tmp_path: Path) -> None:
    done = cli("crawl", login_site.url("/home"), login_site.url("/open"), "--db", db, "--workers", "2",
               "--login", recipe(tmp_path, login_site), *QUICK,
               env={**env(), "XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert done.returncode == 0, done.stderr
    assert login_site.logins == 1
    assert statuses(cli, db, login_site) == {**PAGES, "/open": 200, "/members": 200}


def test_with_worker_processes_a_session_that_expires_is_logged_in_again_and_the_crawl_goes_on(
        cli: Any, db: Path, tmp_path: Path) -> None:
    with LoginSite(PASSWORD, pages=8, expire_after=5) as site:
        # One request at a time: a session that serves 5 requests, shared by 8 in flight, could be used
        # up by the others between a worker's login and its page (a real session expires by time).
        done = cli("crawl", site.url("/home"), "--db", db, "--workers", "2", "--login", recipe(tmp_path, site),
                   "--per-host", "1", *QUICK, env={**env(), "XDG_DATA_HOME": str(tmp_path / "xdg")})
        assert done.returncode == 0, done.stderr
        # The crawl's login, then one in the worker that met an expired session (the other worker
        # gets its cookies, or, meeting the expiry at the same time, logs in too).
        assert site.logins >= 2, site.hits
        assert statuses(cli, db, site) == {"/home": 200, **{f"/p{n}": 200 for n in range(1, 9)}}


# -- the pure parts ----------------------------------------------------------------------------------

def test_the_guard_takes_words_of_their_own_in_a_path_or_query() -> None:
    detail = Guard(DEFAULT_GUARD).detail
    for url in ("http://h/logout", "http://h/account/sign-out?next=/", "http://h/post/7/delete", "http://h/a?do=remove"):
        assert detail(url) is not None, url
    for url in ("http://logout.example/", "http://h/deleted-scenes", "http://h/removals", "http://h/#logout"):
        assert detail(url) is None, url


def test_stored_headers_keep_cookie_names_not_values() -> None:
    headers = (("Set-Cookie", "sid=abc123; Path=/; Secure"), ("Cookie", "a=1; b=2"), ("Server", "x"))
    assert redacted(headers) == (("Set-Cookie", "sid=<redacted>; Path=/; Secure"),
                                 ("Cookie", "a=<redacted>; b=<redacted>"), ("Server", "x"))


def test_a_sealed_session_opens_with_its_key_only(data_home: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    cookies = (("127.0.0.1", "/", "sid", "v4lue", False, None, False, True, "8080"),)
    sealed = seal(cookies)
    assert "v4lue" not in json.dumps(sealed)
    assert unseal(sealed) == cookies
    key = data_home / "crawler" / "session.key"
    assert key.stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "other"))
    assert unseal(sealed) is None
