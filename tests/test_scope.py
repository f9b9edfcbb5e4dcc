"""crawler.scope: which URLs a job may fetch, and why not."""

from __future__ import annotations

import pickle

import pytest

from crawler.errors import ConfigError
from crawler.scope import Scope, validate_patterns

SEEDS = ("http://www.example.co.uk/start", "http://127.0.0.1:8391/p/1.html")


def _scope(
    mode: str,
    *,
    allow_domains: tuple[str, ...] | list[str] = (),
    include: tuple[str, ...] | list[str] = (),
    exclude: tuple[str, ...] | list[str] = (),
    max_depth: int = -1,
) -> Scope:
    return Scope.build(SEEDS, mode, allow_domains=allow_domains, include=include, exclude=exclude, max_depth=max_depth)


@pytest.mark.parametrize(
    ("url", "host", "domain", "any_"),
    [
        ("http://www.example.co.uk/x", None, None, None),
        ("https://www.example.co.uk:8443/x", None, None, None),  # the port is not part of the host
        ("http://WWW.example.co.uk./x", None, None, None),  # trailing dot
        ("http://shop.example.co.uk/x", "off_host", None, None),
        ("http://example.co.uk/", "off_host", None, None),
        ("http://other.co.uk/", "off_host", "off_domain", None),
        ("http://example.com/", "off_host", "off_domain", None),
        ("http://127.0.0.1:9000/", None, None, None),
        ("http://127.0.0.2/", "off_host", "off_domain", None),
    ],
)
def test_modes(url: str, host: str | None, domain: str | None, any_: str | None) -> None:
    assert _scope("host").decide(url, 1) == host
    assert _scope("domain").decide(url, 1) == domain
    assert _scope("any").decide(url, 1) == any_


def test_allow_domains_in_every_mode() -> None:
    allow = ["Partner.ORG", "bücher.de.", "10.0.0.1"]
    for mode, reason in (("host", "off_host"), ("domain", "off_domain")):
        scope = _scope(mode, allow_domains=allow)
        assert scope.decide("http://partner.org/", 0) is None
        assert scope.decide("http://a.b.partner.org/", 0) is None
        assert scope.decide("http://xn--bcher-kva.de/", 0) is None
        assert scope.decide("http://shop.xn--bcher-kva.de/", 0) is None
        assert scope.decide("http://10.0.0.1/", 0) is None
        assert scope.decide("http://notpartner.org/", 0) == reason
        assert scope.decide("http://partner.org.evil.com/", 0) == reason
        assert scope.decide("http://10.0.0.10/", 0) == reason


@pytest.mark.parametrize("name", ["", "exa mple.com", "example.com/x", "user@example.com", "a..b", "ex:80"])
def test_bad_allow_domain(name: str) -> None:
    with pytest.raises(ConfigError, match="bad --allow-domain"):
        _scope("host", allow_domains=[name])


def test_max_depth() -> None:
    unlimited = _scope("host")
    assert unlimited.decide("http://www.example.co.uk/x", 10_000) is None
    seeds_only = _scope("host", max_depth=0)
    assert seeds_only.decide("http://www.example.co.uk/x", 0) is None
    assert seeds_only.decide("http://www.example.co.uk/x", 1) == "too_deep"
    two = _scope("any", max_depth=2)
    assert two.decide("http://anywhere.net/", 2) is None
    assert two.decide("http://anywhere.net/", 3) == "too_deep"


def test_include_and_exclude() -> None:
    scope = _scope("host", include=[r"/p/", r"/start$"], exclude=[r"\.pdf$", r"[?&]session="])
    assert scope.decide("http://www.example.co.uk/start", 0) is None
    assert scope.decide("http://www.example.co.uk/p/1.html", 1) is None
    assert scope.decide("http://www.example.co.uk/about", 1) == "not_included"
    assert scope.decide("http://www.example.co.uk/p/doc.pdf", 1) == "excluded"
    assert scope.decide("http://www.example.co.uk/p/?a=1&session=9", 1) == "excluded"
    only_exclude = _scope("host", exclude=[r"/private/"])
    assert only_exclude.decide("http://www.example.co.uk/about", 1) is None
    assert only_exclude.decide("http://www.example.co.uk/private/x", 1) == "excluded"


def test_reason_order() -> None:
    """Scope first, then depth, then exclude, then include: the first that applies is given."""
    scope = _scope("host", max_depth=1, include=["/p/"], exclude=[r"\.pdf$"])
    assert scope.decide("http://elsewhere.net/x.pdf", 5) == "off_host"
    assert scope.decide("http://www.example.co.uk/x.pdf", 5) == "too_deep"
    assert scope.decide("http://www.example.co.uk/x.pdf", 1) == "excluded"
    assert scope.decide("http://www.example.co.uk/x.html", 1) == "not_included"


def test_direct_construction_matches_build() -> None:
    direct = Scope(
        mode="domain",
        hosts=frozenset({"www.example.co.uk", "127.0.0.1"}),
        allow_domains=frozenset({"partner.org"}),
        include=("/p/",),
    )
    assert direct == _scope("domain", allow_domains=["partner.org"], include=["/p/"])
    assert direct.decide("http://news.example.co.uk/p/1", 3) is None
    assert direct.decide("http://news.partner.org/p/1", 3) is None


def test_bad_mode() -> None:
    with pytest.raises(ConfigError, match="scope must be one of host, domain, any; got 'world'"):
        Scope.build(SEEDS, "world")
    with pytest.raises(ConfigError, match="got 'world'"):
        Scope(mode="world", hosts=frozenset())  # type: ignore[arg-type]


def test_pickle_round_trip() -> None:
    scope = _scope("domain", allow_domains=["partner.org"], include=["/p/"], exclude=[r"\.pdf$"], max_depth=3)
    copy = pickle.loads(pickle.dumps(scope))
    assert copy == scope
    assert hash(copy) == hash(scope)
    for url, depth in [
        ("http://news.example.co.uk/p/1", 1),
        ("http://elsewhere.net/p/1", 1),
        ("http://partner.org/p/x.pdf", 1),
        ("http://partner.org/q", 1),
        ("http://partner.org/p/1", 4),
    ]:
        assert copy.decide(url, depth) == scope.decide(url, depth)


def test_validate_patterns() -> None:
    assert validate_patterns([r"/p/\d+", "x"]) == (r"/p/\d+", "x")
    assert validate_patterns(()) == ()
    with pytest.raises(ConfigError) as excinfo:
        validate_patterns(["ok", "("], "--include")
    assert str(excinfo.value) == "bad --include regex '(': missing ), unterminated subpattern at position 0"
    with pytest.raises(ConfigError, match=r"^bad regex '\[': "):
        validate_patterns(["["])


def test_bad_regex_in_scope() -> None:
    with pytest.raises(ConfigError, match="bad --exclude regex"):
        _scope("host", exclude=["*"])
