"""The hostile web over real sockets on loopback: one request is one request, and the SSRF guard.

The guard is tested with a resolver stub that maps public-looking names to loopback addresses, and
a policy that forbids 127.0.0.2 in place of a private range: no packet leaves 127.0.0.0/8 even if
the guard were broken (and the session guard in conftest.py would refuse it anyway).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import socket
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest_fetch import local_server
from fake_web import stored
from site_server import Site, Wire, html, redirect, robots
from stub_resolver import StubResolver, forbidden

from crawler.config import Settings
from crawler.errors import ConnectFailed
from crawler.explain import explain
from crawler.fetcher import Fetcher
from crawler.scheduler import Crawl
from crawler.storage.read import JobReader


def settings(tmp_path: Path, **changes: Any) -> Settings:
    base = {"db": str(tmp_path / "job.db"), "timeout": 5.0, "retry_backoff": 0.01}
    return replace(Settings(), **(base | changes)).validated()


# -- one request is one request -----------------------------------------------------------------------

class ResetCounter:
    """A server that reads each request and resets the connection; counts the requests."""

    def __init__(self) -> None:
        self.requests = 0

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        self.requests += 1
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close
        writer.transport.abort()


def test_a_fetch_of_a_resetting_server_is_one_request() -> None:
    server = ResetCounter()

    async def go() -> None:
        async with local_server(server) as port, Fetcher(settings(Path("."))) as fetcher:
            with pytest.raises(ConnectFailed):
                await fetcher.fetch(f"http://127.0.0.1:{port}/")
    asyncio.run(go())
    assert server.requests == 1   # aiohttp alone would have sent it twice


def test_a_url_whose_server_resets_every_connection_is_requested_1_plus_retries_times(tmp_path: Path) -> None:
    server = ResetCounter()

    async def go() -> None:
        async with local_server(server) as port:
            job = Crawl(settings(tmp_path, retries=2, robots=False), [f"http://127.0.0.1:{port}/"],
                        rng=random.Random(3))
            async with asyncio.timeout(30):
                await job.run()
    asyncio.run(go())
    assert server.requests == 3   # was 6: every attempt doubled by the client's silent retry


# -- bytes on the wire that a browser copes with ------------------------------------------------------

def crawl_site(config: Settings, seed: str) -> dict[str, dict[str, Any]]:
    """Crawl ``seed`` in-process; every stored page by its URL."""
    async def go() -> None:
        async with asyncio.timeout(30):
            await Crawl(config, [seed], rng=random.Random(1)).run()
    asyncio.run(go())
    with JobReader(config.db) as job:
        return {r["url"]: r for r in job.records(("url", "final_url", "status", "title", "error", "error_message"))}


@pytest.mark.parametrize("transport", ["aiohttp", "httpcore"])
def test_a_raw_utf8_location_is_followed_as_a_browser_follows_it(tmp_path: Path, transport: str) -> None:
    # /café sent as its raw UTF-8 bytes: browsers and curl ask for /caf%C3%A9, not /caf%C3%83%C2%A9.
    moved = b"HTTP/1.1 301 Moved Permanently\r\nLocation: /caf\xc3\xa9\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    with Site({"/": Wire(moved), "/caf%C3%A9": html("Caf\u00e9")}) as site:
        origin = site.origin
        pages = crawl_site(settings(tmp_path, robots=False, retries=0, transport=transport), origin + "/")
    assert site.counts() == {"/": 1, "/caf%C3%A9": 1}
    home = pages[origin + "/"]
    assert (home["final_url"], home["status"], home["title"]) == (origin + "/caf%C3%A9", 200, "Caf\u00e9")


@pytest.mark.parametrize("transport", ["aiohttp", "httpcore"])
def test_an_oversized_response_header_is_recorded_as_header_too_large_not_as_a_status(tmp_path: Path,
                                                                                      transport: str) -> None:
    huge = b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 200_000 + b"\r\nContent-Length: 0\r\n\r\n"
    with Site({"/": Wire(huge)}) as site:
        origin = site.origin
        pages = crawl_site(settings(tmp_path, robots=False, retries=0, transport=transport), origin + "/")
    home = pages[origin + "/"]
    assert (home["status"], home["error"]) == (None, "header_too_large")
    assert re.fullmatch(r"response header too large \((a line )?over \d+ bytes\)", home["error_message"])


# -- the SSRF guard -----------------------------------------------------------------------------------

@pytest.mark.parametrize("transport", ["aiohttp", "httpcore"])
def test_the_ssrf_guard_refuses_names_literals_and_redirect_hops_to_a_forbidden_address(tmp_path: Path,
                                                                                       transport: str) -> None:
    with Site() as site:
        port = site.port
        public, internal = f"http://public.test:{port}", f"http://internal.test:{port}"
        site.routes.update({
            "/": html("Home", f"{internal}/secret", f"http://127.0.0.2:{port}/literal", "/to-name", "/to-literal"),
            "/to-name": redirect(f"{internal}/secret2"),
            "/to-literal": redirect(f"http://127.0.0.2:{port}/x"),
        })
        config = settings(tmp_path, scope="any", retries=0, transport=transport)
        job = Crawl(config, [public + "/"], resolver=StubResolver(), forbidden=forbidden, rng=random.Random(1))

        async def go() -> None:
            async with asyncio.timeout(30):
                await job.run()
        asyncio.run(go())
        paths = site.counts()
    assert paths.keys() <= {"/robots.txt", "/", "/to-name", "/to-literal"}
    errors = {url: status for url, status in stored(config).items()}
    assert errors[public + "/"] == 200
    db = Path(config.db)
    for url in (f"{internal}/secret", public + "/to-name", public + "/to-literal"):
        answer = explain(db, url)
        assert answer["decision"] == "blocked_address", (url, answer)
    literal = explain(db, f"http://127.0.0.2:{port}/literal")   # decided when found: never queued
    assert (literal["state"], literal["decision"], literal["fetched"]) == ("excluded", "blocked_address", False)


def test_allow_private_lets_the_same_crawl_through(tmp_path: Path) -> None:
    with Site() as site:
        public, internal = f"http://public.test:{site.port}", f"http://internal.test:{site.port}"
        site.routes.update({"/": html("Home", "/to-name"), "/to-name": redirect(f"{public}/ok"), "/ok": html("ok")})
        config = settings(tmp_path, scope="any", retries=0, allow_private=True)
        job = Crawl(config, [internal + "/"], resolver=StubResolver(), forbidden=forbidden)

        async def go() -> None:
            async with asyncio.timeout(30):
                await job.run()
        asyncio.run(go())
    # internal.test resolves to 127.0.0.2, where nothing listens: the guard let it through, so the
    # failure is the connection's, not the guard's.
    answer = explain(Path(config.db), internal + "/")
    assert answer["decision"] in ("connect", "robots_unavailable"), answer


@pytest.mark.parametrize("transport", ["aiohttp", "httpcore"])
@pytest.mark.parametrize("robots", [True, False])
def test_a_seed_whose_name_does_not_resolve_is_recorded_as_dns(tmp_path: Path, transport: str, robots: bool) -> None:
    # nowhere.test is unknown to the stub resolver: no name is ever sent to DNS.
    config = settings(tmp_path, retries=0, transport=transport, robots=robots)
    job = Crawl(config, ["http://nowhere.test/"], resolver=StubResolver(), forbidden=forbidden)

    async def go() -> None:
        async with asyncio.timeout(30):
            await job.run()
    asyncio.run(go())
    with JobReader(config.db) as reader:
        (page,) = reader.records(("url", "status", "error", "error_message"))
        assert (page["status"], page["error"]) == (None, "dns")
        assert "no such test name: nowhere.test" in page["error_message"]
        # what makes `crawler crawl` exit 4
        assert reader.seeds_unreached() == [("dns", 1, "http://nowhere.test/", page["error_message"])]


# -- crawler explain ----------------------------------------------------------------------------------

def test_explain_answers_for_each_kind_of_url(tmp_path: Path, cli: Any) -> None:
    with Site() as site:
        site.routes.update({
            "/robots.txt": robots("User-agent: *\nDisallow: /private/\n"),
            "/": html("Home", "/a", "/copy", "/private/x", "/r/s/r/s/r/s", "http://other.test/x", "/gone"),
            "/a": html("Same"), "/copy": html("Same"),
        })
        # one request at a time: /a is stored before /copy, which is then its duplicate
        done = cli.in_process("crawl", site.url("/"), "--db", tmp_path / "job.db", "--timeout", "2", "--retries", "0",
                   "--concurrency", "1")
        assert done.returncode == 0, done.stderr
        origin = site.origin

    def why(url: str) -> dict[str, Any]:
        answer = cli.in_process("explain", url, "--db", tmp_path / "job.db", "--json")
        assert answer.returncode == 0, answer.stderr
        result: dict[str, Any] = json.loads(answer.stdout)
        return result

    home = why(origin + "/")
    assert (home["fetched"], home["page"]["status"], home["depth"]) == (True, 200, 0)
    assert why(origin + "/a")["first_linked_from"] == origin + "/"
    copy = why(origin + "/copy")
    assert copy["page"]["duplicate_of"] == origin + "/a"
    assert "the same content as" in copy["reason"]
    private = why(origin + "/private/x")
    assert (private["decision"], private["fetched"]) == ("robots_disallowed", False)
    assert private["reason"].endswith("Disallow: /private/")
    assert why(origin + "/r/s/r/s/r/s")["decision"] == "trap_repeated_segment"
    assert why("http://other.test/x")["decision"] == "off_host"
    assert why(origin + "/gone")["page"]["status"] == 404
    unseen = why(origin + "/never")
    assert (unseen["seen"], unseen["decision"]) == (False, None)
    assert why("http://elsewhere.test/")["decision"] == "off_host"
    assert why(f"{origin}/p?jsessionid=1")["url"] == origin + "/p"     # as the job would have seen it
    text = cli.in_process("explain", origin + "/private/x", "--db", tmp_path / "job.db")
    assert text.returncode == 0
    assert text.stdout.splitlines()[0].startswith("url      ")
    assert "first linked from " + origin + "/" in text.stdout


def test_explain_refuses_bad_input_in_one_line(tmp_path: Path, cli: Any) -> None:
    assert "no job file" in cli.fails(2, "explain", "http://a.test/", "--db", tmp_path / "none.db")
    done = cli.in_process("explain", "ftp://a.test/", "--db", tmp_path / "none.db")
    assert done.returncode == 2
