"""crawler.fetcher: responses, decoding, the size cap, redirects, the retry policy and the deadline.

Logic is tested through ``httpx2.MockTransport`` and respx (the ``httpx2_mock`` fixture, which patches
the httpcore transport); the deadline and connection failures against real local servers.
"""

from __future__ import annotations

import asyncio
import gzip
import random
import socket
import tracemalloc
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

import aiohttp
import httpx2
import pytest
import respx
from aiohttp.http_exceptions import LineTooLong
from conftest_fetch import (
    Chunks,
    StreamHandler,
    drip,
    fetch_httpcore,
    fetch_mocked,
    fetch_real,
    hang_up,
    refusing_port,
    reply,
    settings,
)

from crawler.errors import (
    BlockedScheme,
    ConnectFailed,
    DnsFailed,
    FetchError,
    HeaderTooLarge,
    OutOfScope,
    ProtocolFailed,
    ServerBusy,
    Timeout,
    TooLarge,
    TooManyRedirects,
)
from crawler.fetcher import Fetcher, parse_retry_after, retry_delay, translate_transport_error

TRANSPORTS = ["aiohttp", "httpcore"]
TEXT = b"<html>" + b"hello, world " * 500 + b"</html>"


def raw_deflate(data: bytes) -> bytes:
    z = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return z.compress(data) + z.flush()


# --- one response ---------------------------------------------------------------------------------


def test_ok_response_has_body_headers_final_url_and_elapsed() -> None:
    sent: list[httpx2.Request] = []

    async def handler(request: httpx2.Request) -> httpx2.Response:
        sent.append(request)
        await asyncio.sleep(0.05)
        return reply(200, TEXT, {"X-Test": "yes", "Content-Type": "text/html"})

    r = fetch_mocked(handler, "http://t/a", user_agent="testbot/1.0")
    assert (r.status, r.reason_phrase, r.body) == (200, "OK", TEXT)
    assert (r.header("x-test"), r.header("CONTENT-TYPE")) == ("yes", "text/html")
    assert r.url == r.final_url == "http://t/a"
    assert 40 <= r.elapsed_ms < 5000
    assert sent[0].headers["user-agent"] == "testbot/1.0"


@pytest.mark.parametrize(("encoding", "encode"), [
    ("gzip", gzip.compress), ("x-gzip", gzip.compress), ("deflate", zlib.compress), ("deflate", raw_deflate),
], ids=["gzip", "x-gzip", "deflate-zlib", "deflate-raw"])
def test_compressed_bodies_are_inflated(encoding: str, encode: Callable[[bytes], bytes]) -> None:
    payload = encode(TEXT)
    r = fetch_mocked(lambda _: reply(200, payload, {"Content-Encoding": encoding}))
    assert r.body == TEXT


@pytest.mark.parametrize(("encoding", "body"), [("br", b"\x0b\x02\x80hi\x03"), ("gzip", b"not gzip at all")])
def test_unknown_encoding_or_corrupt_body_is_protocol_failure(encoding: str, body: bytes) -> None:
    with pytest.raises(ProtocolFailed) as info:
        fetch_mocked(lambda _: reply(200, body, {"Content-Encoding": encoding}))
    assert (info.value.code, info.value.url) == ("protocol", "http://t/a")


def test_plain_body_over_max_bytes_is_too_large_and_at_max_bytes_is_fine() -> None:
    assert fetch_mocked(lambda _: reply(200, b"x" * 1000), max_bytes=1000).body == b"x" * 1000
    with pytest.raises(TooLarge) as info:
        fetch_mocked(lambda _: reply(200, b"x" * 1001), max_bytes=1000)
    assert (info.value.code, info.value.retryable) == ("too_large", False)


def test_cap_applies_to_the_bytes_on_the_wire_too() -> None:
    noise = random.Random(0).randbytes(1000)  # incompressible: gzip makes it larger
    payload = gzip.compress(noise)
    assert len(payload) > 1010
    with pytest.raises(TooLarge):
        fetch_mocked(lambda _: reply(200, payload, {"Content-Encoding": "gzip"}), max_bytes=1010)


def test_gzip_bomb_stops_at_the_cap_without_being_inflated() -> None:
    bomb = gzip.compress(bytes(50 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 100_000  # small on the wire: only the inflated size can trip the cap
    body = Chunks(bomb)
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge):
            fetch_mocked(lambda _: httpx2.Response(200, headers={"Content-Encoding": "gzip"}, stream=body),
                         max_bytes=1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 * 1024 * 1024, f"peak allocation {peak / 1e6:.1f} MB"
    assert body.closed  # the response was closed, not left to the garbage collector


# --- redirects (respx on the httpcore transport) --------------------------------------------------


def test_redirects_are_followed_hop_by_hop_and_checked(httpx2_mock: respx.Router) -> None:
    httpx2_mock.get("http://t/a").respond(301, headers={"Location": "/dir/b"})
    httpx2_mock.get("http://t/dir/b").respond(302, headers={"Location": "../c?x=1"})
    httpx2_mock.get("http://t/c?x=1").respond(307, headers={"Location": "http://u/d"})
    httpx2_mock.get("http://u/d").respond(200, text="done")
    checked: list[str] = []

    async def check(url: str) -> None:
        checked.append(url)

    r = fetch_httpcore("http://t/a", check=check)
    assert (r.status, r.body, r.url, r.final_url) == (200, b"done", "http://t/a", "http://u/d")
    assert checked == ["http://t/dir/b", "http://t/c?x=1", "http://u/d"]


def test_redirect_loop_is_too_many_redirects(httpx2_mock: respx.Router) -> None:
    httpx2_mock.get("http://t/a").respond(302, headers={"Location": "/b"})
    httpx2_mock.get("http://t/b").respond(302, headers={"Location": "/a"})
    with pytest.raises(TooManyRedirects, match="loop"):
        fetch_httpcore("http://t/a")


# (The ``httpx2`` marker that would relax respx's assert_all_called is not registered by
# pytest-httpx2 1.0.0, so these tests register only the routes they expect to be called.)
def redirect_chain(router: respx.Router, hops: int) -> None:
    for i in range(hops):
        router.get(f"http://t/{i}").respond(302, headers={"Location": f"/{i + 1}"})


def test_max_redirects_hops_are_allowed(httpx2_mock: respx.Router) -> None:
    redirect_chain(httpx2_mock, 3)
    httpx2_mock.get("http://t/3").respond(200, text="end")
    assert fetch_httpcore("http://t/0", max_redirects=3).final_url == "http://t/3"


def test_more_than_max_redirects_is_too_many_redirects(httpx2_mock: respx.Router) -> None:
    redirect_chain(httpx2_mock, 4)
    with pytest.raises(TooManyRedirects) as info:
        fetch_httpcore("http://t/0", max_redirects=3)
    assert info.value.code == "too_many_redirects"
    assert len(httpx2_mock.calls) == 4


@pytest.mark.parametrize("location", ["ftp://t/file", "javascript:alert(1)", "mailto:a@t"])
def test_redirect_to_another_scheme_is_blocked(httpx2_mock: respx.Router, location: str) -> None:
    httpx2_mock.get("http://t/a").respond(301, headers={"Location": location})
    checked: list[str] = []

    async def check(url: str) -> None:
        checked.append(url)

    with pytest.raises(BlockedScheme) as info:
        fetch_httpcore("http://t/a", check=check)
    assert info.value.code == "blocked_scheme"
    assert checked == []


def test_redirect_without_location_is_protocol_failure(httpx2_mock: respx.Router) -> None:
    httpx2_mock.get("http://t/a").respond(302)
    with pytest.raises(ProtocolFailed, match="without Location"):
        fetch_httpcore("http://t/a")


@pytest.mark.parametrize(("location", "followed"), [
    (b"/caf\xc3\xa9", "http://t/caf%C3%A9"),                   # UTF-8: read as UTF-8, encoded once
    (b"/caf\xe9", "http://t/caf%E9"),                           # not UTF-8: its bytes, as curl sends them
    (b"http://b\xc3\xbccher.test/x", "http://xn--bcher-kva.test/x"),
], ids=["utf-8", "latin-1", "utf-8-host"])
def test_a_location_of_raw_non_ascii_bytes_is_followed_as_a_browser_reads_it(location: bytes, followed: str) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/a":
            return reply(301, headers=[(b"Location", location)])
        return reply(200, b"here")

    assert fetch_mocked(handler).final_url == followed


def test_check_raising_stops_the_fetch_before_the_hop(httpx2_mock: respx.Router) -> None:
    httpx2_mock.get("http://t/a").respond(301, headers={"Location": "http://elsewhere/b"})

    async def check(url: str) -> None:
        raise OutOfScope(url, "other host")

    with pytest.raises(OutOfScope, match="elsewhere"):
        fetch_httpcore("http://t/a", check=check)
    assert [str(call.request.url) for call in httpx2_mock.calls] == ["http://t/a"]


# --- busy servers and the retry policy ------------------------------------------------------------


def test_503_is_server_busy_with_retry_after_then_200(httpx2_mock: respx.Router) -> None:
    httpx2_mock.get("http://t/a").mock(side_effect=[
        respx.MockResponse(503, headers={"Retry-After": "2"}, text="later"),
        respx.MockResponse(200, text="ok"),
    ])

    async def go() -> bytes:
        async with Fetcher(settings(transport="httpcore")) as fetcher:
            with pytest.raises(ServerBusy) as info:
                await fetcher.fetch("http://t/a")
            busy = info.value
            assert (busy.retryable, busy.code, busy.status, busy.retry_after) == (True, "http_error", 503, 2.0)
            assert busy.response is not None
            assert (busy.response.status, busy.response.body) == (503, b"later")
            return (await fetcher.fetch("http://t/a")).body

    assert asyncio.run(go()) == b"ok"


def test_429_retry_after_as_http_date(httpx2_mock: respx.Router) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    httpx2_mock.get("http://t/a").respond(429, headers={"Retry-After": when})
    with pytest.raises(ServerBusy) as info:
        fetch_httpcore("http://t/a")
    assert info.value.status == 429
    assert info.value.retry_after is not None
    assert 100 < info.value.retry_after <= 121


def test_404_is_a_response_not_an_error(httpx2_mock: respx.Router) -> None:
    httpx2_mock.get("http://t/a").respond(404, text="gone")
    r = fetch_httpcore("http://t/a")
    assert (r.status, r.body) == (404, b"gone")


def test_non_ascii_digit_retry_after_is_ignored_not_a_crash() -> None:
    # Header bytes are decoded as latin-1, so a server can send b"\xb2" ("²").
    with pytest.raises(ServerBusy) as info:
        fetch_mocked(lambda _: reply(503, b"", [(b"Retry-After", b"\xb2")]))
    assert info.value.retry_after is None


def test_retry_delay_is_none_when_not_retryable_or_out_of_attempts() -> None:
    s = settings(retries=2)
    assert retry_delay(TooLarge("http://t/"), 0, s) is None
    assert retry_delay(Timeout("http://t/"), 1, s) is not None
    assert retry_delay(Timeout("http://t/"), 2, s) is None
    assert retry_delay(ConnectFailed("http://t/"), 0, settings(retries=0)) is None


def test_retry_delay_grows_exponentially_with_jitter() -> None:
    s = settings(retries=10, retry_backoff=0.5)
    for attempt in range(6):
        base = 0.5 * 2**attempt
        delay = retry_delay(ConnectFailed("http://t/"), attempt, s, random.Random(attempt))
        assert delay == pytest.approx(base * random.Random(attempt).uniform(0.5, 1.5))
        assert 0.5 * base <= delay <= 1.5 * base


def test_retry_after_raises_the_delay_up_to_retry_after_max() -> None:
    s = settings(retries=3, retry_backoff=0.5, retry_after_max=60.0)
    assert retry_delay(ServerBusy("http://t/", 503, retry_after=30), 0, s, random.Random(0)) == 30
    assert retry_delay(ServerBusy("http://t/", 503, retry_after=3600), 0, s, random.Random(0)) == 60
    low = retry_delay(ServerBusy("http://t/", 503, retry_after=0.01), 2, s, random.Random(0))
    assert low is not None
    assert 1.0 <= low <= 3.0


@pytest.mark.parametrize(("value", "expected"), [
    ("2", 2.0), (" 120 ", 120.0), ("0", 0.0),
    ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0), ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
    (None, None), ("", None), ("soon", None), ("-5", None), ("1.5", None), ("Wed, 99 Foo 2015", None),
    ("\u00b2", None),
])
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = parsedate_to_datetime("Wed, 21 Oct 2015 07:28:00 GMT").timestamp()
    assert parse_retry_after(value, now=now) == expected


# --- real servers: the deadline and broken connections --------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_dripping_server_hits_the_whole_request_deadline(transport: str) -> None:
    exc, elapsed = fetch_real(drip, transport)
    assert isinstance(exc, Timeout), repr(exc)
    assert exc.code == "timeout"
    assert 0.9 <= elapsed < 5


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_server_hanging_up_is_a_fetch_error(transport: str) -> None:
    exc, _ = fetch_real(hang_up, transport)
    assert isinstance(exc, ConnectFailed | ProtocolFailed), repr(exc)
    assert exc.code in ("connect", "protocol")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_connection_refused_is_connect_failed(transport: str) -> None:
    async def go(port: int) -> None:
        async with Fetcher(settings(transport=transport, timeout=5.0)) as fetcher:
            await fetcher.fetch(f"http://127.0.0.1:{port}/")

    with refusing_port() as port, pytest.raises(ConnectFailed) as info:
        asyncio.run(go(port))
    assert (info.value.code, info.value.retryable) == ("connect", True)


def answer(data: bytes) -> StreamHandler:
    """A server that reads a request and writes ``data`` back, whatever it holds."""
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(data)
        await writer.drain()
    return handler


LONG_LINE = b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 200_000 + b"\r\nContent-Length: 0\r\n\r\n"
MANY_FIELDS = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: a\r\n" % n for n in range(200)) + b"Content-Length: 0\r\n\r\n"


@pytest.mark.parametrize(("transport", "sent", "why"), [
    ("aiohttp", LONG_LINE, "a line over 8190 bytes"),
    ("aiohttp", MANY_FIELDS, "too many fields"),
    ("httpcore", LONG_LINE, "over 102400 bytes"),
], ids=["aiohttp-line", "aiohttp-fields", "httpcore"])
def test_an_oversized_response_header_is_header_too_large_with_the_limit_it_passed(transport: str, sent: bytes,
                                                                                   why: str) -> None:
    exc, _ = fetch_real(answer(sent), transport)
    assert isinstance(exc, HeaderTooLarge), repr(exc)
    assert (exc.code, exc.retryable) == ("header_too_large", False)
    assert exc.message == f"response header too large ({why})"


# --- the error boundary ---------------------------------------------------------------------------


def chained(exc: BaseException, cause: BaseException) -> BaseException:
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize(("exc", "expected"), [
    (httpx2.ConnectError("refused"), ConnectFailed),
    (httpx2.ReadError("reset"), ConnectFailed),
    (httpx2.ReadTimeout("slow"), Timeout),
    (httpx2.ConnectTimeout("slow"), Timeout),
    (TimeoutError(), Timeout),
    (ConnectionResetError(104, "reset"), ConnectFailed),
    (httpx2.RemoteProtocolError("bad status line"), ProtocolFailed),
    (Exception("anything else"), ProtocolFailed),
    # httpx-aiohttp reports a reset as ConnectTimeout: the aiohttp cause decides.
    (chained(httpx2.ConnectTimeout("x"), aiohttp.ClientConnectionError("reset")), ConnectFailed),
    (chained(httpx2.ReadTimeout("x"), aiohttp.ServerTimeoutError("slow")), Timeout),
    # a name that does not resolve, under httpcore: getaddrinfo's error is the cause
    (chained(httpx2.ConnectError("x"), socket.gaierror(socket.EAI_NONAME, "Name or service not known")), DnsFailed),
    (chained(httpx2.ReadError("x"), aiohttp.ClientPayloadError("truncated")), ProtocolFailed),
    # a chunk-size line too long is the body's fault, not an oversized header
    (chained(httpx2.ReadError("x"), chained(aiohttp.ClientPayloadError("chunk"), LineTooLong(b"f" * 100, 8190))),
     ProtocolFailed),
], ids=lambda v: v.__name__ if isinstance(v, type) else type(v).__name__)
def test_translate_transport_error(exc: BaseException, expected: type[FetchError]) -> None:
    error = translate_transport_error(exc, "http://t/a")
    assert (type(error), error.url) == (expected, "http://t/a")


@pytest.mark.parametrize(("raised", "expected"), [
    (httpx2.ConnectError("refused"), ConnectFailed), (ValueError("a bug in a transport"), ProtocolFailed),
])
def test_transport_exceptions_leave_fetch_as_fetch_errors(raised: Exception, expected: type) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise raised

    with pytest.raises(expected) as info:
        fetch_mocked(handler)
    assert info.value.__cause__ is raised
