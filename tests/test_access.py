"""Requests as the user needs them (issue 23, the access side): ``--header``, ``--auth``,
``--proxy`` and ``--proxies``, against servers on loopback that the tests start, and the secrets
that must stay out of the job file, the report, the logs and a WARC."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import FAST
from fake_web import stored
from forward_proxy import ForwardProxy, Socks5Proxy, closed_port
from site_server import Behaviour, Hit, Reply, Site, html, redirect, reply
from stub_resolver import NAMES, StubResolver, forbidden

from crawler.config import Settings
from crawler.explain import explain
from crawler.scheduler import Crawl
from crawler.storage.pages import encode_headers
from crawler.storage.read import decode_headers

USER, PASSWORD = "alice", "pw-Zq7-never-stored"
TOKEN = "tok-Kx9-never-stored"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
ENV = {"CRAWL_PASSWORD": PASSWORD}
AUTH = ("--auth", USER, "--auth-password-env", "CRAWL_PASSWORD")


class NeedsAuth(Behaviour):
    """``page`` to a request with alice's Basic credentials, else 401."""

    def __init__(self, page: Reply) -> None:
        self.page = page

    def respond(self, site: Site, hit: Hit) -> Reply:
        if hit.header("Authorization") == BASIC:
            return self.page
        return Reply(401, (("WWW-Authenticate", 'Basic realm="staging"'), ("Content-Length", "0")))


def protected(site: Site, pages: int = 4) -> None:
    """A site whose every page (and robots.txt) answers 401 without alice's password."""
    site.routes.update({"/": NeedsAuth(html("Home", *(f"/p{n}" for n in range(pages)))),
                        "/robots.txt": NeedsAuth(reply(200, "User-agent: *\nAllow: /\n", "text/plain"))})
    site.routes.update({f"/p{n}": NeedsAuth(html(f"Page {n}")) for n in range(pages)})


def statuses(cli: Any, db: Path) -> dict[str, int]:
    return {rec["url"].rsplit("/", 1)[1]: rec["status"] for rec in cli.export(db)}


# -- credentials and headers -----------------------------------------------------------------------

def test_a_site_behind_basic_auth_is_crawled_with_the_password_from_the_environment(
        site: Site, cli: Any, db: Path) -> None:
    protected(site)
    done = cli.in_process("crawl", site.url("/"), "--db", db, *FAST, *AUTH, env=ENV)
    assert done.returncode == 0, done.stderr
    assert statuses(cli, db) == {"": 200, "p0": 200, "p1": 200, "p2": 200, "p3": 200}


def test_the_jar_s_cookie_goes_with_every_request_and_a_cookie_header_given_replaces_it(
        site: Site, cli: Any, tmp_path: Path) -> None:
    site.routes.update({"/": html("Home", "/a", "/b"), "/a": html("A", "/b"), "/b": html("B")})
    jar = tmp_path / "cookies.txt"
    jar.write_text("# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsid\tfrom-the-jar\n")
    for name, extra, expected in (("jar.db", (), "sid=from-the-jar"),
                                  ("given.db", ("--header", "Cookie: sid=given"), "sid=given")):
        before = len(site.hits)
        done = cli.in_process("crawl", site.url("/"), "--db", tmp_path / name, *FAST, "--cookies", jar, *extra)
        assert done.returncode == 0, done.stderr
        sent = {(hit.path, hit.header("Cookie")) for hit in site.hits[before:] if hit.path != "/robots.txt"}
        assert sent == {("/", expected), ("/a", expected), ("/b", expected)}


def test_digest_auth_answers_the_servers_challenge(cli: Any, db: Path) -> None:
    import httpx2

    # The server is httpx2's own digest test double: it answers 401 with a challenge, then 200 to
    # a request that computed its response from the password.
    seen: list[str | None] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        auth = request.headers.get("authorization")
        seen.append(auth)
        if auth is None or not auth.startswith("Digest "):
            return httpx2.Response(401, headers={"WWW-Authenticate": 'Digest realm="r", nonce="abc", qop="auth"'})
        return httpx2.Response(200, headers={"Content-Type": "text/html"}, content=b"<title>in</title>")

    from crawler.access import Access
    from crawler.config import Settings

    access = Access(Settings(auth=USER, auth_password=PASSWORD, auth_scheme="digest",
                             auth_origin=("http://127.0.0.1:9",)))
    _, auth = access.for_url("http://127.0.0.1:9/x")

    async def fetch() -> int:
        async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler)) as client:
            return (await client.get("http://127.0.0.1:9/x", auth=auth)).status_code

    import asyncio
    assert asyncio.run(fetch()) == 200
    assert seen[0] is None
    assert seen[-1] is not None
    assert f'username="{USER}"' in seen[-1]
    assert PASSWORD not in seen[-1]
    assert access.for_url("http://127.0.0.1:10/x") == (None, None)


def test_credentials_secret_headers_and_cookies_never_follow_a_redirect_to_another_origin(
        site: Site, cli: Any, db: Path) -> None:
    with Site() as other:   # another loopback port: another origin, the same host
        other.routes.update({"/landing": html("Landed"), "/robots.txt": reply(404)})
        protected(site, pages=0)
        home = html("Home", "/away")   # which sets a session cookie, as a login would
        site.routes["/"] = NeedsAuth(Reply(home.status, (*home.headers, ("Set-Cookie", "sid=s3cr3t; Path=/")), home.body))
        site.routes["/away"] = NeedsAuth(redirect(other.url("/landing")))
        done = cli.in_process("crawl", site.url("/"), "--db", db, *FAST, *AUTH, "--header", f"X-Api-Token: {TOKEN}",
                              "--header", "X-Team: docs", env=ENV)
        assert done.returncode == 0, done.stderr
        assert other.count("/landing") == 1
        for hit in other.hits:   # the landing page and its robots.txt
            assert hit.header("Authorization") is None, hit
            assert hit.header("X-Api-Token") is None, hit
            assert hit.header("X-Team") is None, hit
            assert hit.header("Cookie") is None, hit   # cookies are the origin's that set them, port included
        assert [hit.header("Cookie") for hit in site.requests("/away")] == ["sid=s3cr3t"]
        for hit in site.hits:
            assert hit.header("X-Api-Token") == TOKEN
            assert hit.header("X-Team") == "docs"
    assert statuses(cli, db)[""] == 200


def test_auth_origin_adds_an_origin_that_gets_the_credentials(site: Site, cli: Any, db: Path) -> None:
    with Site() as other:
        protected(other, pages=0)
        other.routes["/landing"] = NeedsAuth(html("Landed"))
        site.routes.update({"/": html("Home", "/away"), "/away": redirect(other.url("/landing"))})
        done = cli.in_process("crawl", site.url("/"), "--db", db, *FAST, *AUTH, "--auth-origin", other.origin, env=ENV)
        assert done.returncode == 0, done.stderr
        assert [hit.header("Authorization") for hit in other.requests("/landing")] == [BASIC]


@pytest.mark.parametrize(("args", "env", "says"), [
    (("--header", "no colon here"), {}, '--header must be "Name: value"'),
    (("--header", "X-Bad Name: v"), {}, '--header must be "Name: value"'),
    (("--header", "Host: elsewhere"), {}, "--header Host: the crawler sets this header itself"),
    (AUTH, {}, "--auth-password-env CRAWL_PASSWORD: no such environment variable"),
    (("--auth", USER), {}, "--auth needs a password: give --auth-password-env VAR (no terminal to ask on)"),
    (("--auth-password-env", "CRAWL_PASSWORD"), ENV, "--auth-password-env needs --auth USER"),
    (("--proxy", "ftp://127.0.0.1:21"), {}, "--proxy must be an http://, https:// or socks5:// URL"),
    (("--proxies", "missing.txt"), {}, "--proxies missing.txt: cannot read it"),
])
def test_an_access_option_that_cannot_be_used_is_one_line_and_exit_2(
        site: Site, cli: Any, db: Path, args: tuple[str, ...], env: dict[str, str], says: str) -> None:
    line = cli.fails(2, "crawl", site.url("/"), "--db", db, *FAST, *args, env=env)
    assert says in line
    assert not db.exists()
    assert site.hits == []


def test_a_password_is_never_taken_from_the_command_line_or_a_config_file(site: Site, cli: Any, tmp_path: Path) -> None:
    config = tmp_path / "crawl.toml"
    config.write_text(f'auth = "{USER}"\nauth_password = "{PASSWORD}"\n', encoding="utf-8")
    assert "auth_password" in cli.fails(2, "crawl", site.url("/"), "--config", config)
    assert "--auth-password" in cli.fails(2, "crawl", site.url("/"), "--auth", USER, "--auth-password", PASSWORD)


# -- secrets stay secret ---------------------------------------------------------------------------

def test_the_password_and_secret_headers_are_in_no_job_file_report_log_or_default_warc(
        site: Site, cli: Any, db: Path, tmp_path: Path) -> None:
    protected(site)
    done = cli.in_process("crawl", site.url("/"), "--db", db, *FAST, *AUTH, "--header", f"X-Api-Token: {TOKEN}",
                          env=ENV)
    assert done.returncode == 0, done.stderr
    report, warc = tmp_path / "report.html", tmp_path / "job.warc"
    assert cli.in_process("report", "--db", db, "--out", report).returncode == 0
    assert cli.in_process("export", "--db", db, "--format", "warc", "--out", warc).returncode == 0
    said = [done.stdout, done.stderr, cli.in_process("stats", "--db", db, "--json").stdout,
            cli.in_process("explain", "--db", db, site.url("/p1"), "--json").stdout]
    with sqlite3.connect(db) as job:   # the job file keeps the request headers compressed: read them
        sent = [decode_headers(row[0]) for row in job.execute("SELECT request_headers FROM pages")]
    assert len(sent) == 5
    assert all(("Authorization", "Basic [redacted]") in headers and ("X-Api-Token", "[redacted]") in headers
               for headers in sent)
    secrets = [PASSWORD, TOKEN, BASIC.split()[1]]   # the Basic header's base64 gives the password away
    for blob in [db.read_bytes(), repr(sent).encode(), report.read_bytes(), warc.read_bytes(),
                 *(s.encode() for s in said)]:
        for secret in secrets:
            assert secret.encode() not in blob
    assert b"Authorization: Basic [redacted]" in warc.read_bytes()


def test_a_warc_redacts_cookies_and_credentials_unless_asked_to_keep_them(
        site: Site, cli: Any, db: Path, tmp_path: Path) -> None:
    site.routes.update({"/": html("Home"), "/robots.txt": reply(404)})
    assert cli.in_process("crawl", site.url("/"), "--db", db, *FAST).returncode == 0
    # The request as the job keeps it once a session cookie went with it (the cookie jar's part).
    sent = [("Host", f"127.0.0.1:{site.port}"), ("Cookie", "sid=c00kie-v4lue"), ("Authorization", "Bearer b34rer"),
            ("Accept", "*/*")]
    with sqlite3.connect(db) as job:
        job.execute("UPDATE pages SET request_headers = ?", (encode_headers(sent),))
    shared, kept = tmp_path / "shared.warc", tmp_path / "kept.warc"
    assert cli.in_process("export", "--db", db, "--format", "warc", "--out", shared).returncode == 0
    assert cli.in_process("export", "--db", db, "--format", "warc", "--out", kept, "--warc-keep-secrets").returncode == 0
    assert b"Cookie: [redacted]\r\nAuthorization: Bearer [redacted]\r\nAccept: */*" in shared.read_bytes()
    assert b"c00kie-v4lue" not in shared.read_bytes()
    assert b"b34rer" not in shared.read_bytes()
    assert b"Cookie: sid=c00kie-v4lue\r\nAuthorization: Bearer b34rer" in kept.read_bytes()
    line = cli.fails(2, "export", "--db", db, "--format", "jsonl", "--warc-keep-secrets")
    assert "--warc-keep-secrets is for --format warc" in line


# -- proxies -------------------------------------------------------------------------------------

def site_of(site: Site, pages: int) -> None:
    site.routes.update({"/": html("Home", *(f"/p{n}" for n in range(pages))), "/robots.txt": reply(404)})
    site.routes.update({f"/p{n}": html(f"Page {n}") for n in range(pages)})


@pytest.mark.parametrize("transport", ["aiohttp", "httpcore"])
def test_every_request_goes_through_the_proxy_and_the_site_sees_only_the_proxy(
        site: Site, cli: Any, db: Path, transport: str) -> None:
    site_of(site, 6)
    with ForwardProxy("p1", user="bob", password="proxy-secret-9") as proxy:
        done = cli.in_process("crawl", site.url("/"), "--db", db, *FAST,
                              "--proxy", f"http://bob:proxy-secret-9@127.0.0.1:{proxy.port}",
                              env={"CRAWLER_TRANSPORT": transport})
        assert done.returncode == 0, done.stderr
        assert proxy.refused == 0
        assert proxy.carried == len(site.hits) == 8   # robots.txt, the home page, six pages
    assert all(hit.header("Via") == "1.1 p1" for hit in site.hits)
    assert set(statuses(cli, db).values()) == {200}
    assert b"proxy-secret-9" not in db.read_bytes()
    assert "proxy-secret-9" not in done.stdout + done.stderr


def test_a_proxy_that_dies_mid_crawl_hands_its_hosts_to_another_and_the_crawl_finishes(
        cli: Any, db: Path, tmp_path: Path) -> None:
    with Site() as first, Site() as second, ForwardProxy("p1", die_after=4) as dying, ForwardProxy("p2") as lasting:
        site_of(first, 12)
        site_of(second, 12)
        listed = tmp_path / "proxies.txt"
        listed.write_text(f"# our proxies\n{dying.url}\n\n{lasting.url}\n", encoding="utf-8")
        done = cli.in_process("crawl", first.url("/"), second.url("/"), "--db", db, "--timeout", "2",
                              "--retries", "3", "--concurrency", "2", "--per-host", "1", "--proxies", listed,
                              env={"CRAWLER_PROXY_REST": "30", "CRAWLER_RETRY_BACKOFF": "0.05"})
        assert done.returncode == 0, done.stderr
        assert dying.dead
        assert dying.carried == 4
        pages = cli.export(db)
        assert len(pages) == 26
        assert {p["status"] for p in pages} == {200}
        for hit in first.hits + second.hits:
            assert hit.header("Via") in ("1.1 p1", "1.1 p2"), hit   # never a direct connection
        assert dying.carried + lasting.carried == len(first.hits) + len(second.hits)
        # Each site had a proxy of its own; the dying one's site went on through the other.
        went_through = [[hit.header("Via") for hit in site.hits] for site in (first, second)]
        assert sorted(len(set(vias)) for vias in went_through) == [1, 2]
        moved = next(vias for vias in went_through if len(set(vias)) == 2)
        assert moved[0] == "1.1 p1"
        assert moved[-1] == "1.1 p2"


def test_with_no_proxy_left_the_crawl_stops_with_one_line_and_never_connects_directly(
        site: Site, cli: Any, db: Path) -> None:
    site_of(site, 2)
    line = cli.fails(1, "crawl", site.url("/"), "--db", db, "--timeout", "1", "--retries", "2",
                     "--proxy", f"http://127.0.0.1:{closed_port()}", env={"CRAWLER_PROXY_REST": "0.05",
                                                                           "CRAWLER_RETRY_BACKOFF": "0.01"})
    assert "every proxy failed" in line
    assert "directly" in line
    assert site.hits == []
    assert db.exists()   # the job is intact: a run with a working proxy resumes it
    with ForwardProxy("p1") as proxy:
        assert cli.in_process("crawl", "--db", db, "--proxy", proxy.url, *FAST).returncode == 0
    assert set(statuses(cli, db).values()) == {200}
    assert all(hit.header("Via") == "1.1 p1" for hit in site.hits)


@pytest.mark.parametrize("transport", ["aiohttp", "httpcore"])
def test_the_ssrf_guard_still_judges_the_target_behind_a_proxy(tmp_path: Path, transport: str) -> None:
    # The test's "private" address is 127.0.0.2 (test_hostile_net's rule): internal.test resolves to
    # it and is refused before its request reaches the proxy; the proxy itself listens on 127.0.0.2,
    # which is allowed: the user named it.
    with Site() as site, ForwardProxy("p1", host="127.0.0.2", names=NAMES) as proxy:
        public, internal = f"http://public.test:{site.port}", f"http://internal.test:{site.port}"
        site.routes.update({"/": html("Home", f"{internal}/secret", "/to-name"), "/robots.txt": reply(404),
                            "/to-name": redirect(f"{internal}/secret2")})
        config = replace(Settings(), db=str(tmp_path / "job.db"), timeout=5.0, retry_backoff=0.01, scope="any", retries=0,
                         transport=transport, proxy=proxy.url).validated()
        job = Crawl(config, [public + "/"], resolver=StubResolver(), forbidden=forbidden)

        async def go() -> None:
            async with asyncio.timeout(30):
                await job.run()
        asyncio.run(go())
        assert site.counts().keys() == {"/robots.txt", "/", "/to-name"}
        assert proxy.carried == 3
    db = Path(config.db)
    assert stored(config)[public + "/"] == 200
    for url in (f"{internal}/secret", public + "/to-name"):
        assert explain(db, url)["decision"] == "blocked_address", url


@pytest.mark.parametrize("transport", ["aiohttp", "httpcore"])
def test_a_socks5_proxy_carries_every_connection(site: Site, cli: Any, db: Path, transport: str) -> None:
    site_of(site, 3)
    with Socks5Proxy() as proxy:
        done = cli.in_process("crawl", site.url("/"), "--db", db, *FAST, "--proxy", proxy.url,
                              env={"CRAWLER_TRANSPORT": transport})
        assert done.returncode == 0, done.stderr
        assert proxy.carried >= 1
    assert set(statuses(cli, db).values()) == {200}
    assert len(site.hits) == 5
