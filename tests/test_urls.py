"""crawler.urls: the canonical form, seed validation and the keys derived from URLs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.errors import InvalidURL
from crawler.urls import canonicalize, host_key, hostname, parse_seed, registrable_domain

BASE = "http://example.com/a/b/c.html?x=1#top"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # three spellings of one resource
        ("http://Example.COM:80/ok/%33", "http://example.com/ok/3"),
        ("http://example.com/ok/./3", "http://example.com/ok/3"),
        ("http://example.com/ok/3#x", "http://example.com/ok/3"),
        # scheme and host case
        ("HTTP://EXAMPLE.com/Path", "http://example.com/Path"),
        ("HtTpS://Example.Com/", "https://example.com/"),
        # ports: default dropped, others kept as a plain number
        ("http://example.com:80/", "http://example.com/"),
        ("https://example.com:443/", "https://example.com/"),
        ("http://example.com:443/", "http://example.com:443/"),
        ("https://example.com:80/", "https://example.com:80/"),
        ("http://example.com:8080/", "http://example.com:8080/"),
        ("http://example.com:0080/", "http://example.com/"),
        ("http://example.com:/", "http://example.com/"),
        # IDNA hosts become punycode; a trailing dot stays
        ("http://bücher.de/", "http://xn--bcher-kva.de/"),
        ("http://BÜCHER.de/x", "http://xn--bcher-kva.de/x"),
        ("http://Ｅｘａｍｐｌｅ。ｃｏｍ/", "http://example.com/"),
        ("http://xn--bcher-kva.de/", "http://xn--bcher-kva.de/"),
        ("http://example.com./", "http://example.com./"),
        ("http://ex%41mple.com/", "http://example.com/"),
        # IP addresses, in the forms browsers read
        ("http://127.0.0.1:8391/", "http://127.0.0.1:8391/"),
        ("http://0x7f.1/", "http://127.0.0.1/"),
        ("http://2130706433/", "http://127.0.0.1/"),
        ("http://0177.0.0.1/", "http://127.0.0.1/"),
        ("http://[::1]/", "http://[::1]/"),
        ("http://[2001:DB8:0:0::1]:8080/", "http://[2001:db8::1]:8080/"),
        ("http://[::1]:80/", "http://[::1]/"),
        # empty path, dot segments, ".." never above the root
        ("http://example.com", "http://example.com/"),
        ("http://example.com?q=1", "http://example.com/?q=1"),
        ("http://example.com/a/b/../c", "http://example.com/a/c"),
        ("http://example.com/a/./b/.", "http://example.com/a/b/"),
        ("http://example.com/a/b/..", "http://example.com/a/"),
        ("http://example.com/../../x", "http://example.com/x"),
        ("http://example.com/..", "http://example.com/"),
        ("http://example.com/a/%2E%2e/b", "http://example.com/b"),
        ("http://example.com/a//b", "http://example.com/a//b"),
        # percent-encoding: unreserved decoded, others upper-cased, reserved kept
        ("http://example.com/%7Euser", "http://example.com/~user"),
        ("http://example.com/%41%62%2D%5f%2e", "http://example.com/Ab-_."),
        ("http://example.com/a%2fb", "http://example.com/a%2Fb"),
        ("http://example.com/a%3Fb%23c%25", "http://example.com/a%3Fb%23c%25"),
        ("http://example.com/%e2%82%ac", "http://example.com/%E2%82%AC"),
        ("http://example.com/100%", "http://example.com/100%25"),
        ("http://example.com/%zz", "http://example.com/%25zz"),
        ("http://example.com/%%341", "http://example.com/%2541"),
        # characters that must be encoded are, as UTF-8
        ("http://example.com/a b", "http://example.com/a%20b"),
        ("http://example.com/café", "http://example.com/caf%C3%A9"),
        ("http://example.com/€?q=€", "http://example.com/%E2%82%AC?q=%E2%82%AC"),
        ('http://example.com/<a>"{}|^`', "http://example.com/%3Ca%3E%22%7B%7D%7C%5E%60"),
        ("http://example.com/a:b@c;d=e,f!$&'()*+", "http://example.com/a:b@c;d=e,f!$&'()*+"),
        # query: same normalization, order kept, "+" kept, empty "?" dropped
        ("http://example.com/?b=2&a=1", "http://example.com/?b=2&a=1"),
        ("http://example.com/?q=a+b%2bc%7e", "http://example.com/?q=a+b%2Bc~"),
        ("http://example.com/?q=a b&r=ü", "http://example.com/?q=a%20b&r=%C3%BC"),
        ("http://example.com/?a=/?b", "http://example.com/?a=/?b"),
        ("http://example.com/?", "http://example.com/"),
        ("http://example.com/?#frag", "http://example.com/"),
        # fragment dropped
        ("http://example.com/page#section-2", "http://example.com/page"),
        ("http://example.com/#", "http://example.com/"),
        # userinfo dropped
        ("http://user:secret@example.com/", "http://example.com/"),
        ("http://bank.example@evil.example/", "http://evil.example/"),
        # whitespace as browsers treat it
        ("  http://example.com/x \n", "http://example.com/x"),
        ("http://exa\tmple.com/a\n/b\r", "http://example.com/a/b"),
        ("\x00\x1fhttp://example.com/\x00", "http://example.com/"),
        # backslashes are slashes before the query, as for a browser
        ("http:\\\\example.com\\a\\b?c\\d", "http://example.com/a/b?c%5Cd"),
    ],
)
def test_canonicalize(url: str, expected: str) -> None:
    assert canonicalize(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("../p/1.html", "http://example.com/a/p/1.html"),
        ("../../../../p/1.html", "http://example.com/p/1.html"),
        ("d.html", "http://example.com/a/b/d.html"),
        ("./d/", "http://example.com/a/b/d/"),
        ("/root", "http://example.com/root"),
        ("//other.host/x", "http://other.host/x"),
        ("//OTHER.host:80", "http://other.host/"),
        ("https://secure.example.com/", "https://secure.example.com/"),
        ("?q", "http://example.com/a/b/c.html?q"),
        ("#frag", "http://example.com/a/b/c.html?x=1"),
        ("", "http://example.com/a/b/c.html?x=1"),
        ("  d.html#x ", "http://example.com/a/b/d.html"),
        ("\\\\other.host\\x", "http://other.host/x"),
        ("http:d.html", "http://example.com/a/b/d.html"),
    ],
)
def test_canonicalize_resolves_against_base(url: str, expected: str) -> None:
    assert canonicalize(url, BASE) == expected


def test_canonicalize_benchmark_case() -> None:
    assert canonicalize("../p/123.html", "http://127.0.0.1:8391/p/5.html") == "http://127.0.0.1:8391/p/123.html"


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:void(0)",
        "mailto:someone@example.com",
        "tel:+123",
        "data:text/html,<p>hi</p>",
        "file:///etc/passwd",
        "ftp://example.com/file",
        "ws://example.com/",
        "about:blank",
        "//example.com/no-scheme-no-base",
        "relative/path",
        "",
        "   ",
        "http://",
        "http:///x",
        "http://:80/",
        "http://user@/x",
        "http:example.com",
        "http://exa mple.com/",
        "http://exa<mple.com/",
        "http://a..b/",
        "http://" + "a" * 64 + ".com/",
        "http://" + "a." * 130 + "com/",
        "http://example.com:99999/",
        "http://example.com:123456789012345678901234567890/",
        "http://example.com:-1/",
        "http://example.com:8o/",
        "http://example.com:²/",
        "http://example.com:80:80/",
        "http://[::1/",
        "http://::1]/",
        "http://[::1]x/",
        "http://[not-ipv6]/",
        "http://[fe80::1%25eth0]/",
        "http://[v1.x]/",
        "http://1.2.3.4.5/",
        "http://256.256.256.256/",
        "http://08.0.0.1/",
        "http://example.123/",
        "http://xn--a.ü.de/",
        "http://a_b.ü.de/",
        "http://\ud800.com/",
        "http://example.com/\ud800",
        "http://example.com/?q=\udfff",
        "http://%zz.com/",
        "http://%ff.com/",
    ],
)
def test_canonicalize_rejects(url: str) -> None:
    assert canonicalize(url) is None


def test_canonicalize_rejects_with_base() -> None:
    assert canonicalize("mailto:a@b.c", BASE) is None
    assert canonicalize("javascript:x()", BASE) is None
    assert canonicalize("x", "mailto:a@b.c") is None
    assert canonicalize("x", "http://[::1/") is None


def test_sort_query() -> None:
    url = "http://example.com/?b=2&a=2&c&a=1&&b=1"
    assert canonicalize(url) == "http://example.com/?b=2&a=2&c&a=1&&b=1"
    # sorted by name; pairs with one name keep their order, empty pairs go
    assert canonicalize(url, sort_query=True) == "http://example.com/?a=2&a=1&b=2&b=1&c"
    assert canonicalize("http://example.com/?&&", sort_query=True) == "http://example.com/"
    assert canonicalize("http://example.com/?z=%7e&y", sort_query=True) == "http://example.com/?y&z=~"


def test_long_urls_are_handled_like_short_ones() -> None:
    path = "/%7e" * 1000
    assert canonicalize("http://example.com" + path) == "http://example.com" + "/~" * 1000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not a url", "not an absolute http(s) URL: 'not a url'"),
        ("example.com", "not an absolute http(s) URL: 'example.com' (did you mean 'http://example.com/'?)"),
        ("localhost:8080/x", "not an absolute http(s) URL: 'localhost:8080/x' (did you mean 'http://localhost:8080/x'?)"),
        ("mailto:a@b.c", "not an absolute http(s) URL: 'mailto:a@b.c'"),
        ("/just/a/path", "not an absolute http(s) URL: '/just/a/path'"),
        ("ftp://host/x", "unsupported scheme 'ftp' in 'ftp://host/x' (only http and https are crawled)"),
        ("FILE:///etc/passwd", "unsupported scheme 'file' in 'FILE:///etc/passwd' (only http and https are crawled)"),
        ("http:///x", "no host in 'http:///x'"),
        ("https://user@/x", "no host in 'https://user@/x'"),
        ("http://example.com:99999/", "bad host or port in 'http://example.com:99999/'"),
        ("http://exa mple.com/", "bad host or port in 'http://exa mple.com/'"),
        ("http://[::1/", "bad host or port in 'http://[::1/'"),
        ("http://[::1]:x/", "bad host or port in 'http://[::1]:x/'"),
        ("ftp:relative", "not an absolute http(s) URL: 'ftp:relative'"),
        ("http://example.com/\ud800", "not a valid URL: 'http://example.com/\\ud800'"),
    ],
)
def test_parse_seed_rejects_with_a_message(text: str, message: str) -> None:
    with pytest.raises(InvalidURL) as excinfo:
        parse_seed(text)
    assert str(excinfo.value) == message
    assert "\n" not in message


def test_parse_seed_returns_canonical_form() -> None:
    assert parse_seed("  HTTP://Example.COM:80/a/../b#x \n") == "http://example.com/b"
    assert parse_seed("https://bücher.de") == "https://xn--bcher-kva.de/"


@pytest.mark.parametrize(
    ("url", "key", "host"),
    [
        ("http://example.com/x", "example.com", "example.com"),
        ("http://example.com:8080/x", "example.com:8080", "example.com"),
        ("https://127.0.0.1:8391/p/5.html", "127.0.0.1:8391", "127.0.0.1"),
        ("http://[::1]:8080/", "[::1]:8080", "::1"),
        ("http://[::1]/", "[::1]", "::1"),
        ("http://xn--bcher-kva.de/", "xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("http://Example.COM?q", "example.com", "example.com"),
        ("http://u:p@example.com:81/", "example.com:81", "example.com"),
        ("not a url", "", ""),
    ],
)
def test_host_key_and_hostname(url: str, key: str, host: str) -> None:
    assert host_key(url) == key
    assert hostname(url) == host


@pytest.mark.parametrize(
    ("host", "domain"),
    [
        ("a.b.example.co.uk", "example.co.uk"),
        ("example.co.uk", "example.co.uk"),
        ("www.example.com", "example.com"),
        ("WWW.Example.COM", "example.com"),
        ("www.example.com.", "example.com"),
        ("alice.github.io", "alice.github.io"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("shop.xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("127.0.0.1", "127.0.0.1"),
        ("10.0.0.1.", "10.0.0.1."),
        ("::1", "::1"),
        ("[::1]", "[::1]"),
        ("localhost", "localhost"),
        ("co.uk", "co.uk"),
        ("", ""),
    ],
)
def test_registrable_domain(host: str, domain: str) -> None:
    assert registrable_domain(host) == domain


# Property tests: canonicalize sees hostile pages, so it must hold up on anything.

_URLISH = st.builds(
    "{}{}{}{}{}{}{}".format,
    st.sampled_from(["http://", "https://", "HTTP://", "ftp://", "javascript:", "mailto:", "//", "http:", ""]),
    st.sampled_from(["", "user:pw@", "@"]),
    st.text(alphabet="abcXYZ019.-_[]:%ü\u3002\ud800 ", max_size=20),
    st.sampled_from(["", ":", ":80", ":443", ":8080", ":65536", ":0", ":99999999999"]),
    st.lists(
        st.sampled_from(["a", "B", ".", "..", "", "%2e", "%2F", "%7e", "%7E", "%zz", "%", "%25", "é", " ", "\\", ";"]),
        max_size=8,
    ).map("/".join),
    st.sampled_from(["", "?", "?b=2&a=1", "?q=%7e+%2b&&x", "?é=ü"]),
    st.sampled_from(["", "#", "#frag", "#a?b"]),
)
_BASES = st.sampled_from([None, "http://example.com/a/b.html", "https://127.0.0.1:8391/p/5.html?x", "mailto:x"])


def _check(url: str, base: str | None, sort_query: bool) -> None:
    result = canonicalize(url, base, sort_query=sort_query)
    if result is None:
        return
    assert result.startswith(("http://", "https://"))
    assert "#" not in result
    assert hostname(result)
    assert canonicalize(result, sort_query=sort_query) == result
    assert canonicalize(result, base, sort_query=sort_query) == result


@settings(max_examples=500)
@given(st.text(), st.one_of(st.none(), st.text()), st.booleans())
def test_canonicalize_never_raises_on_any_text(url: str, base: str | None, sort_query: bool) -> None:
    _check(url, base, sort_query)


@settings(max_examples=2000)
@given(_URLISH, _BASES, st.booleans())
def test_canonicalize_on_urlish_strings(url: str, base: str | None, sort_query: bool) -> None:
    _check(url, base, sort_query)


@given(_URLISH)
def test_canonical_urls_pass_parse_seed(url: str) -> None:
    result = canonicalize(url)
    if result is not None:
        assert parse_seed(result) == result
