"""The Cookie header kept per origin and matching paths (``crawler.session.cookie_header``) is the
header the jar itself gives (what httpx sent before), whatever the jar holds and whatever the time:
checked request by request against the jar asked anew, over drawn jars, requests, changes and clocks."""

from __future__ import annotations

import http.cookiejar
import time
from unittest import mock

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.session.cookie_header import CookieHeaders, asked, path_matches, request_path
from crawler.session.jar import counting_jar, put

NOW = 2_000_000_000

DOMAINS = ["127.0.0.1", "example.org", ".example.org", "a.example.org", "localhost.local"]
PATHS = ["/", "/docs", "/docs/", "/docs/a", "/d", "/dócs"]
domains, paths = st.sampled_from(DOMAINS), st.sampled_from(PATHS)
cookies = st.tuples(
    domains, paths, st.sampled_from(["sid", "a", "b"]), st.sampled_from(["1", "two", ""]), st.booleans(),
    st.sampled_from([None, NOW - 5, NOW + 1, NOW + 3, NOW + 10**6]), st.booleans(), st.booleans(),
    st.sampled_from([None, "80", "8080", "443"]))
urls = st.builds("{}://{}{}{}".format, st.sampled_from(["http", "https"]),
                 st.sampled_from(["127.0.0.1", "example.org", "a.example.org", "b.example.org", "localhost"]),
                 st.sampled_from(["", ":8080", ":443"]),
                 st.sampled_from(["/", "", "/docs", "/docs/", "/docs/a/b", "/docsx", "/d/e", "/dócs/x", "/a?x=/docs"]))
steps = st.lists(st.one_of(
    st.tuples(st.just("put"), st.lists(cookies, max_size=3)),
    st.tuples(st.just("get"), urls),
    st.tuples(st.just("wait"), st.sampled_from([1, 2, 5])),
    st.tuples(st.just("clear"), st.none()),
), max_size=40)


@settings(max_examples=300, deadline=None)
@given(first=st.lists(cookies, max_size=6), steps=steps)
def test_the_kept_header_is_the_jar_s_own_request_by_request(first: list[tuple], steps: list[tuple]) -> None:
    clock = [float(NOW)]
    with mock.patch("time.time", side_effect=lambda: clock[0]):
        jar = counting_jar(httpx2.Cookies().jar)
        put(jar, first)
        headers = CookieHeaders()
        for kind, arg in steps:
            if kind == "put":
                put(jar, arg)
            elif kind == "wait":
                clock[0] += arg
            elif kind == "clear":
                jar.clear()
            else:
                got = headers.header(jar, arg)
                assert got == asked(jar, arg), arg


def test_every_request_of_a_full_jar_gets_the_jar_s_header_in_any_order() -> None:
    # Every kind of cookie the draws above make (one name each), asked for every kind of URL, in
    # two orders: a header kept for one request and wrongly reused for another shows here.
    jar = counting_jar(httpx2.Cookies().jar)
    kinds = [(d, p, s, e, port) for d in DOMAINS for p in PATHS
             for s in (False, True) for e in (None, NOW + 10**6) for port in (None, "80", "8080", "443")]
    put(jar, [(d, p, f"c{n}", str(n), s, e, False, False, port) for n, (d, p, s, e, port) in enumerate(kinds)])
    every = [f"{scheme}://{host}{port}{path}" for scheme in ("http", "https")
             for host in ("127.0.0.1", "example.org", "a.example.org", "b.example.org", "localhost")
             for port in ("", ":8080", ":443", ":80") for path in ("/", "", "/docs", "/docs/", "/docs/a/b", "/docsx",
                                                                 "/d/e", "/dócs/x", "/a?x=/docs", "/docs/a")]
    for order in (every, every[::-1]):
        headers = CookieHeaders()
        assert [headers.header(jar, url) for url in order] == [asked(jar, url) for url in order]
    assert len({asked(jar, url) for url in every}) > 50   # the URLs get many different headers


def test_a_cookie_set_between_two_requests_goes_with_the_second() -> None:
    jar = counting_jar(httpx2.Cookies().jar)
    headers = CookieHeaders()
    url = "http://127.0.0.1:8080/docs/page"
    assert headers.header(jar, url) is None
    put(jar, [("127.0.0.1", "/", "sid", "s1", False, None, False, False, "8080")])
    assert headers.header(jar, url) == "sid=s1"
    put(jar, [("127.0.0.1", "/docs", "lang", "en", False, None, False, False, "8080")])
    assert headers.header(jar, url) == "lang=en; sid=s1"          # the longer path first, as the jar does
    assert headers.header(jar, "http://127.0.0.1:8080/other") == "sid=s1"
    assert headers.header(jar, "http://127.0.0.1:9090/docs/page") is None   # another port: another origin


def test_a_cookie_that_expires_goes_no_more(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [float(NOW)]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    jar = counting_jar(httpx2.Cookies().jar)
    headers = CookieHeaders()
    put(jar, [("127.0.0.1", "/", "sid", "s1", False, NOW + 2, False, False, None)])
    assert headers.header(jar, "http://127.0.0.1/") == "sid=s1"
    clock[0] += 2
    assert headers.header(jar, "http://127.0.0.1/") is None
    assert not list(jar)   # and the jar dropped it, as it does when httpx asks


def test_a_jar_that_does_not_count_its_changes_is_asked_every_time() -> None:
    jar = http.cookiejar.CookieJar()
    headers = CookieHeaders()
    assert headers.header(jar, "http://127.0.0.1/") is None
    put(jar, [("127.0.0.1", "/", "sid", "s1", False, None, False, False, None)])
    assert headers.header(jar, "http://127.0.0.1/") == "sid=s1"


def test_path_rules_are_the_jar_s() -> None:
    matched = [("/docs", "/docs"), ("/docs", "/docs/a"), ("/docs/", "/docs/a")]
    assert all(path_matches(cookie, path) for cookie, path in matched)
    unmatched = [("/docs", "/docsx"), ("/docs/", "/docs"), ("/docs/a", "/docs")]
    assert not any(path_matches(cookie, path) for cookie, path in unmatched)
    assert [request_path("http://h"), request_path("http://h/a b")] == ["/", "/a%20b"]
