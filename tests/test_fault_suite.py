"""The fault suite: one crawl of a site of every fault the issue lists, end to end.

The crawl must end by itself with exit 0, store every good page, record every fault with its code,
fetch nothing robots.txt disallows, request no URL more than ``1 + retries`` times (as the server
counts), and never hold a body whole although it meets a 200 MB body, a 1 GiB gzip bomb, 50,000
links on one page and a server that drips a byte at a time (peak RSS far below the bomb's size).

Everything is on 127.0.0.1: the SSRF guard's "forbidden" addresses here are loopback ones no seed
names (``localhost``, ``127.0.0.2``), so nothing leaves the machine even if the guard were broken.
"""

from __future__ import annotations

import gzip
import json
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from conftest import CLI, cli_env
from site_server import Hit, Raw, Reply, Sequence, Site, html, redirect, reply, robots

# The default. With one retry, /flaky (a 503, then the page) had a single chance left, and on a
# loaded machine the test server sometimes starves past the 2 s deadline: that retry timed out in a
# CI run and in 1 of 8 runs beside 8 busy loops (2026-12-03).
RETRIES = 2
GOOD = [f"/good/{n}" for n in range(40)]   # listed after the faults: they must not wait behind them
MB = 1024 * 1024


class Reset(Raw):
    def serve(self, site: Site, hit: Hit, handler: BaseHTTPRequestHandler) -> None:
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()


class Drip(Raw):
    """Headers, then a byte every 0.2 s: no read ever times out, only the whole-request deadline."""

    def serve(self, site: Site, hit: Hit, handler: BaseHTTPRequestHandler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n")
        while not site.stopping.wait(0.2):
            try:
                handler.wfile.write(b"x")
                handler.wfile.flush()
            except OSError:
                return


class Hang(Raw):
    def serve(self, site: Site, hit: Hit, handler: BaseHTTPRequestHandler) -> None:
        site.stopping.wait(30)


class Truncated(Raw):
    def serve(self, site: Site, hit: Hit, handler: BaseHTTPRequestHandler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5000\r\n\r\n<html><title>cut")
        handler.wfile.flush()


# Bytes of the 200 MB body the server got to send, per request: a client that stops reading at
# --max-bytes leaves most of it unsent (the rest fills socket buffers, then the write fails).
HUGE_SENT: list[int] = []


class Huge(Raw):
    """A 200 MB body, streamed (the server never holds it)."""

    def serve(self, site: Site, hit: Hit, handler: BaseHTTPRequestHandler) -> None:
        handler.wfile.write(f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {200 * MB}\r\n\r\n".encode())
        chunk = b"<p>" + b"x" * (64 * 1024 - 3)
        sent = 0
        try:
            for _ in range(200 * MB // len(chunk)):
                handler.wfile.write(chunk)
                sent += len(chunk)
        except OSError:
            return
        finally:
            HUGE_SENT.append(sent)


def gzip_bomb(size: int = 1024 * MB) -> bytes:
    """``size`` zero bytes, gzip-compressed (about 1 MB for 1 GiB). Each MiB is compressed apart (a full
    flush forgets what came before), so every MiB after the first is the same bytes: compressed once
    and repeated, with the trailer's CRC-32 and length computed here, it takes a second, not four."""
    zeros = bytes(MB)
    z = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)   # raw deflate: the gzip frame is ours
    first = z.compress(zeros) + z.flush(zlib.Z_FULL_FLUSH)
    again = z.compress(zeros) + z.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(size // MB):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"   # gzip, deflate, no name, no time, max compression, unknown OS
    return b"".join([header, first, again * (size // MB - 1), z.flush(), struct.pack("<II", crc, size % 2**32)])


BOMB_SITEMAP = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>&lol3;</loc></url></urlset>"""


def routes(origin: str, port: int) -> dict[str, Any]:
    faults = ["/hang", "/drip", "/reset", "/truncated", "/bomb", "/huge", "/loop", "/chain/0", "/to-file",
              "/to-private", "/to-localhost", "/flaky", "/busy", "/charset", "/binary", "/broken", "/trap/0", "/many"]
    table: dict[str, Any] = {
        "/robots.txt": robots(f"User-agent: *\nDisallow: /private/\nSitemap: {origin}/sitemaps/index.xml\n"),
        "/": html("Faults", *faults, *GOOD, "/ok"),
        "/ok": html("OK"),
        "/hang": Hang(), "/drip": Drip(), "/reset": Reset(), "/truncated": Truncated(), "/huge": Huge(),
        "/bomb": Reply(200, (("Content-Type", "text/html"), ("Content-Encoding", "gzip")), gzip_bomb()),
        "/loop": redirect("/loop2"), "/loop2": redirect("/loop"),
        "/to-file": redirect("file:///etc/passwd"),
        "/to-private": redirect(f"http://127.0.0.2:{port}/secret"),
        "/to-localhost": redirect(f"http://localhost:{port}/secret"),
        "/flaky": Sequence((reply(503, "busy"), html("Flaky, recovered"))),
        "/busy": Sequence((reply(429, "slow down", Retry_After="1"), html("Busy, served"))),
        "/charset": reply(200, "<title>Café</title>".encode("latin-1"), "text/html; charset=utf-8"),
        "/binary": reply(200, bytes(range(256)) * 64, "text/html"),
        "/broken": reply(200, b"<html><title>Broken</title><body><a href='/ok'>x<div><p><table>", "text/html"),
        "/many": html("Many", *(f"/private/{n}" for n in range(50_000))),
        "/sitemaps/index.xml": reply(200, (
            '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"<sitemap><loc>{origin}/sitemaps/pages.xml.gz</loc></sitemap>"
            f"<sitemap><loc>{origin}/sitemaps/lol.xml</loc></sitemap></sitemapindex>"), "application/xml"),
        "/sitemaps/pages.xml.gz": reply(200, gzip.compress(
            f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>{origin}/from-sitemap</loc>'
            "<lastmod>2026-11-01</lastmod></url></urlset>".encode()), "application/x-gzip"),
        "/sitemaps/lol.xml": reply(200, BOMB_SITEMAP, "application/xml"),
        "/from-sitemap": html("From the sitemap"),
    }
    table.update({path: html(f"Good {path}") for path in GOOD})
    for n in range(30):
        table[f"/chain/{n}"] = redirect(f"/chain/{n + 1}")
    table["/chain/30"] = html("End of the chain")
    for n in range(200):
        table[f"/trap/{n}"] = html(f"Day {n}", f"/trap/{n + 1}", f"/trap/{n + 2}?session={n}")
    return table


@pytest.fixture(scope="module")
def fault_crawl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("faults")
    db = folder / "job.db"
    with Site() as site:
        site.routes.update(routes(site.origin, site.port))
        # The crawl in a child that reports its own peak RSS (ru_maxrss, KiB on Linux) when it ends.
        measure = ("import resource, sys; from crawler.cli import main; code = main(sys.argv[1:]); "
                   "print('maxrss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); "
                   "sys.exit(code)")
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-c", measure, "crawl", site.url("/"), "--db", str(db), "--timeout", "2",
             "--retries", str(RETRIES), "--sitemaps", "--max-depth", "60", "--scope", "any"],
            capture_output=True, text=True, cwd=folder, check=False,
            # A guard, not a measurement: it ends in about 10 s; a host parked for its bad URLs waited
            # out park after park (178 s before the fix).
            timeout=90,
            # One host serves every fault among its good pages, with the default politeness: a few
            # bad URLs must neither park it nor hold its good pages back.
            env=cli_env())
        seconds = time.monotonic() - started
        yield {"done": done, "site": site, "db": db, "seconds": seconds, "counts": site.counts(), "folder": folder}


def records(crawl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = CLI(crawl["folder"]).export_by_url(crawl["db"], "--fields", "url,status,error,error_message,title")
    origin = crawl["site"].origin
    return {url.removeprefix(origin): rec for url, rec in found.items()}


def test_the_fault_crawl_ends_by_itself_with_exit_0(fault_crawl: dict[str, Any]) -> None:
    done = fault_crawl["done"]
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


def test_every_good_page_is_stored_and_every_fault_recorded_with_its_code(fault_crawl: dict[str, Any]) -> None:
    found = records(fault_crawl)
    good = {"/": "Faults", "/ok": "OK", "/flaky": "Flaky, recovered", "/busy": "Busy, served",
            "/broken": "Broken", "/from-sitemap": "From the sitemap", "/trap/0": "Day 0"}
    good.update({path: f"Good {path}" for path in GOOD})
    for path, title in good.items():
        assert (found[path]["status"], found[path]["title"]) == (200, title), (path, found[path])
    assert found["/binary"]["status"] == 200
    assert found["/charset"]["title"].startswith("Caf")   # latin-1 sent as utf-8: read, not a crash
    faults = {"/hang": "timeout", "/drip": "timeout", "/reset": "connect", "/truncated": "protocol",
              "/bomb": "too_large", "/huge": "too_large", "/loop": "too_many_redirects",
              "/chain/0": "too_many_redirects", "/to-file": "blocked_scheme", "/to-private": "blocked_address",
              "/to-localhost": "blocked_address"}
    assert {path: found[path]["error"] for path in faults} == faults


def test_nothing_disallowed_is_fetched_and_no_url_more_than_1_plus_retries_times(fault_crawl: dict[str, Any]) -> None:
    counts = fault_crawl["counts"]
    assert not [path for path in counts if path.startswith("/private/")]
    assert max(counts.values()) <= 1 + RETRIES, {p: n for p, n in counts.items() if n > 1 + RETRIES}
    assert "/secret" not in counts


def test_traps_and_disallowed_links_are_exclusions_with_their_reason(fault_crawl: dict[str, Any]) -> None:
    stats = CLI(fault_crawl["folder"]).stats(fault_crawl["db"])
    assert stats["queue"]["excluded"] >= 50_000
    assert stats["queue"]["pending"] == 0
    trap_fetches = sum(1 for path in fault_crawl["counts"] if path.startswith("/trap/"))
    assert trap_fetches < 40   # cut by the pattern-chain rule; Scrapy fetched 75
    answer = CLI(fault_crawl["folder"]).in_process("explain", fault_crawl["site"].url("/private/123"),
                                                   "--db", fault_crawl["db"], "--json")
    assert json.loads(answer.stdout)["decision"] == "robots_disallowed"


def test_the_fault_crawl_never_holds_a_huge_body_or_a_bomb_in_memory(fault_crawl: dict[str, Any]) -> None:
    # The 200 MB body is never read whole: the crawl stops reading at --max-bytes (10 MiB), so the
    # server cannot send most of it.
    assert HUGE_SENT, "the huge body was never asked for"
    assert max(HUGE_SENT) < 100 * MB, [sent // MB for sent in HUGE_SENT]
    # Not a measurement (that is the benchmark's job): a guard against the 1 GiB bomb inflated whole.
    # The crawl peaks at 120 to 250 MB, once 351 MB in CI (2026-12-03, cause not found), depending on
    # what is in flight together; the bomb read whole would push it past 1 GB.
    line = next(line for line in fault_crawl["done"].stderr.splitlines() if line.startswith("maxrss_kb"))
    peak_mb = int(line.split()[1]) / 1024
    assert peak_mb < 600, f"peak RSS {peak_mb:.0f} MB"
