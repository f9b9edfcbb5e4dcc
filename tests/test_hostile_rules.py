"""The hostile web's pure rules: session ids, trap rules, the SSRF guard's policy, sitemap parsing,
adaptive politeness in fake time, the robots.txt line that decides."""

from __future__ import annotations

import gzip
import ipaddress
import random
from typing import Any

import pytest
from fake_clock import FakeClock
from hypothesis import given
from hypothesis import strategies as st

from crawler import sitemaps
from crawler.addresses import AddressPolicy, is_special
from crawler.models import FrontierItem
from crawler.pace import Eased, Parked, Recovered, Slowed
from crawler.politeness import HostPool, Wanted
from crawler.robots import RobotsRules
from crawler.scope import PatternChains, QueryVariants, Scope
from crawler.urls import canonicalize, strip_params

SESSION = frozenset({"jsessionid", "phpsessid", "sid", "sessionid"})


# -- session ids ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "expected"), [
    ("http://a.test/p?sid=42", "http://a.test/p"),
    ("http://a.test/p?a=1&PHPSESSID=x&b=2", "http://a.test/p?a=1&b=2"),
    ("http://a.test/shop;jsessionid=ABC/item?x=1", "http://a.test/shop/item?x=1"),
    ("http://a.test/p;v=1;JSESSIONID=1", "http://a.test/p;v=1"),
    ("http://a.test/p?side=1&sids=2", "http://a.test/p?side=1&sids=2"),   # names match whole
    ("http://a.test/p", "http://a.test/p"),
])
def test_session_ids_are_stripped_and_nothing_else(url: str, expected: str) -> None:
    assert strip_params(url, SESSION) == expected


@given(st.text(max_size=60))
def test_stripping_a_canonical_url_is_idempotent(text: str) -> None:
    url = canonicalize("http://a.test/" + text)
    if url is not None:
        once = strip_params(url, SESSION)
        assert strip_params(once, SESSION) == once


# -- trap rules ------------------------------------------------------------------------------------------

def test_scope_trap_rules_name_the_rule() -> None:
    scope = Scope("host", frozenset({"a.test"}), max_url_length=40, max_segment_repeats=2)
    assert scope.decide("http://a.test/" + "x" * 40, 1) == "trap_url_length"
    assert scope.decide("http://a.test/a/b/a/b/a/b", 1) == "trap_repeated_segment"
    assert scope.decide("http://a.test/2026/01/01", 1) is None      # twice is not more than twice
    assert scope.decide("http://b.test/a/a/a", 1) == "off_host"      # scope first
    assert Scope("host", frozenset({"a.test"})).decide("http://a.test/a/a/a/a", 1) is None   # rules off


def test_query_variants_stop_at_the_limit_per_path() -> None:
    rule = QueryVariants(3)
    assert [rule.check(f"http://a.test/cal?d={n}") for n in range(5)] == [None, None, None,
                                                                          "trap_query_variants", "trap_query_variants"]
    assert rule.check("http://a.test/cal?d=1") is None       # one already counted
    assert rule.check("http://a.test/other?d=9") is None     # per path
    assert QueryVariants(0).check("http://a.test/cal?d=99") is None


def test_pattern_chains_cut_a_chain_of_one_pattern_not_a_fan_out() -> None:
    rule = PatternChains(3)
    assert rule.check("http://a.test/cal/1", "http://a.test/cal/2") is None     # chain 2
    assert rule.check("http://a.test/cal/2", "http://a.test/cal/3") is None     # chain 3
    assert rule.check("http://a.test/cal/3", "http://a.test/cal/4?x=1") == "trap_pattern_chain"
    assert rule.check("http://a.test/", "http://a.test/cal/9") is None          # another pattern: a new chain
    fan = PatternChains(3)
    assert all(fan.check("http://a.test/p/1", f"http://a.test/p/{n}") is None for n in range(100))
    assert fan.check(None, "http://a.test/p/1") is None                         # a sitemap's URL


# -- the SSRF guard's policy -------------------------------------------------------------------------------

@pytest.mark.parametrize("address", ["10.0.0.1", "172.16.5.4", "192.168.1.1", "127.0.0.1", "169.254.169.254",
                                     "100.64.0.1", "0.0.0.0", "224.0.0.1", "240.0.0.1", "::1", "fe80::1",
                                     "fc00::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1", "64:ff9b::a00:1",
                                     "2002:a00:1::"])
def test_private_loopback_link_local_and_reserved_addresses_are_special(address: str) -> None:
    assert is_special(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_not(address: str) -> None:
    assert not is_special(ipaddress.ip_address(address))


def test_a_seed_host_may_be_private_and_allow_private_permits_all() -> None:
    policy = AddressPolicy(frozenset({"127.0.0.1", "intranet.test"}))
    assert policy.permits("127.0.0.1", "127.0.0.1")
    assert policy.permits("intranet.test", "10.1.2.3")           # the seed names it
    assert not policy.permits("localhost", "127.0.0.1")          # another name for loopback: no
    assert not policy.permits("evil.test", "10.1.2.3")           # a name resolving to private space
    assert policy.permits("evil.test", "93.184.216.34")
    assert policy.allowed("mixed.test", ["10.0.0.1", "93.184.216.34"]) == ["93.184.216.34"]
    assert policy.refusal("[::1]") is not None
    assert policy.refusal("10.0.0.1") is not None
    assert policy.refusal("example.test") is None                 # names are checked when resolved
    assert AddressPolicy(allow_private=True).permits("evil.test", "10.1.2.3")


# -- sitemaps --------------------------------------------------------------------------------------------

URLSET = (b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
          b"<url><loc> http://a.test/1 </loc><lastmod>2026-01-02</lastmod></url><url><loc>http://a.test/2</loc></url>"
          b"</urlset>")


def test_a_urlset_gives_its_locs_with_lastmod() -> None:
    parsed = sitemaps.parse(URLSET)
    assert not parsed.index
    assert parsed.entries == (sitemaps.Entry("http://a.test/1", "2026-01-02"), sitemaps.Entry("http://a.test/2"))
    assert sitemaps.parse(gzip.compress(URLSET)) == parsed


def test_an_index_lists_sitemaps() -> None:
    parsed = sitemaps.parse(b'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                            b"<sitemap><loc>http://a.test/s1.xml</loc></sitemap></sitemapindex>")
    assert parsed.index
    assert parsed.entries == (sitemaps.Entry("http://a.test/s1.xml"),)


@pytest.mark.parametrize("body", [
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><urlset><url><loc>&b;</loc></url></urlset>',
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><urlset><url><loc>&e;</loc></url></urlset>',
    b"<html><body>not a sitemap</body></html>",
    b"<urlset><url><loc>http://a.test/",
])
def test_entities_external_entities_and_non_sitemaps_are_refused(body: bytes) -> None:
    with pytest.raises(sitemaps.SitemapError):
        sitemaps.parse(body)


def test_sitemaps_org_limits_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sitemaps, "MAX_URLS", 1)
    parsed = sitemaps.parse(URLSET)
    assert parsed.truncated
    assert len(parsed.entries) == 1
    with pytest.raises(sitemaps.SitemapError, match="inflated"):
        sitemaps.gunzip(gzip.compress(b"x" * 10_000), limit=1000)


def test_reading_follows_indexes_once_each_and_skips_what_fails() -> None:
    import asyncio
    index = (b'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             b"<sitemap><loc>http://a.test/u.xml</loc></sitemap><sitemap><loc>http://a.test/i.xml</loc></sitemap>"
             b"<sitemap><loc>http://a.test/gone.xml</loc></sitemap></sitemapindex>")
    bodies = {"http://a.test/i.xml": index, "http://a.test/u.xml": URLSET}
    fetched: list[str] = []
    failed: list[str] = []

    async def fetch(url: str) -> bytes:
        fetched.append(url)
        return bodies[url]

    async def go() -> list[str]:
        return [e.loc async for e in sitemaps.read_sitemaps(["http://a.test/i.xml"], fetch,
                                                            on_error=lambda url, exc: failed.append(url))]
    assert asyncio.run(go()) == ["http://a.test/1", "http://a.test/2"]
    assert fetched == ["http://a.test/i.xml", "http://a.test/u.xml", "http://a.test/gone.xml"]
    assert failed == ["http://a.test/gone.xml"]


# -- adaptive politeness ---------------------------------------------------------------------------------

def item(n: int) -> FrontierItem:
    return FrontierItem(n, f"http://a.test/{n}", 1, host="a.test")


def pool(clock: FakeClock, **kw: Any) -> HostPool:
    hosts = HostPool(8, 0.0, clock=clock, rng=random.Random(1), **kw)
    for n in range(100):
        hosts.push("a.test", item(n))
    return hosts


def test_strain_halves_parallelism_doubles_the_delay_and_obeys_retry_after() -> None:
    clock = FakeClock()
    hosts = pool(clock, backoff_max=4.0)
    assert hosts.pace("a.test") == (8, 0.0, 0.0)
    hosts.slow_down("a.test")
    assert hosts.pace("a.test")[:2] == (4, 0.5)
    hosts.slow_down("a.test", retry_after=30.0)
    assert hosts.pace("a.test")[:2] == (2, 1.0)
    assert hosts.take_ready() == pytest.approx(30.0)          # nothing before Retry-After
    for _ in range(5):
        hosts.slow_down("a.test")
    assert hosts.pace("a.test")[:2] == (1, 4.0)               # capped at backoff_max


def test_a_host_recovers_gradually_as_it_answers_well() -> None:
    clock = FakeClock()
    hosts = pool(clock)
    hosts.slow_down("a.test")
    hosts.slow_down("a.test")
    assert hosts.pace("a.test")[0] == 2
    paces = []
    for _ in range(15):
        hosts.answered("a.test", 0.05)
        paces.append(hosts.pace("a.test")[0])
    assert (paces[2], paces[5], paces[8]) == (3, 4, 5)   # one more request in flight per 3 good answers
    assert hosts.pace("a.test")[1] == 0.0                       # the extra delay halved away


def test_an_answer_far_slower_than_usual_slows_the_host() -> None:
    hosts = pool(FakeClock())
    for _ in range(10):
        assert not hosts.answered("a.test", 0.1)
    assert hosts.answered("a.test", 5.0)
    assert hosts.pace("a.test")[:2] == (4, 0.5)
    for _ in range(30):   # as slow as that from now on: the new usual, the host is not slowed for ever
        hosts.answered("a.test", 5.0)
    assert not hosts.answered("a.test", 5.0)


def test_failures_of_park_after_distinct_urls_in_a_row_park_the_host_for_park_time() -> None:
    clock = FakeClock()
    hosts = pool(clock, park_after=3, park_time=600.0)
    assert hosts.slow_down("a.test", url="/a") is None
    assert hosts.slow_down("a.test", url="/b") is None
    assert hosts.slow_down("a.test", url="/c") == pytest.approx(600.0)
    assert hosts.take_ready() == pytest.approx(600.0)
    assert hosts.parked_beyond(599.0)
    assert not hosts.parked_beyond(600.0)
    clock.advance(600.0)
    assert isinstance(hosts.take_ready(), tuple)


def test_one_url_failing_again_and_again_never_parks_its_host() -> None:
    hosts = pool(FakeClock(), park_after=3, park_time=600.0)
    assert [hosts.slow_down("a.test", url="/hangs", strain=False) for _ in range(10)] == [None] * 10
    assert hosts.pace("a.test")[2] == 0.0


def test_a_good_answer_between_failures_starts_the_count_of_failing_urls_again() -> None:
    hosts = pool(FakeClock(), park_after=3, park_time=600.0)
    assert hosts.slow_down("a.test", url="/a", strain=False) is None
    assert hosts.slow_down("a.test", url="/b", strain=False) is None
    hosts.answered("a.test", 0.05)
    assert hosts.slow_down("a.test", url="/c", strain=False) is None
    assert hosts.slow_down("a.test", url="/d", strain=False) is None
    assert hosts.slow_down("a.test", url="/e", strain=False) is not None


def test_a_host_that_answered_since_a_request_began_is_known_to_answer() -> None:
    hosts = pool(FakeClock())
    began = hosts.answers("a.test")
    assert not hosts.answered_since("a.test", began)
    hosts.answered("a.test", 0.05)
    assert hosts.answered_since("a.test", began)
    assert not hosts.answered_since("a.test", hosts.answers("a.test"))


def test_a_parked_host_gives_back_its_queued_urls_and_leases_again_when_its_park_ends() -> None:
    clock = FakeClock()
    hosts = pool(clock, park_after=1, park_time=60.0)
    hosts.slow_down("a.test", url="/a", strain=False)
    assert len(hosts.give_back("a.test")) == 100
    assert hosts.size == 0
    assert hosts.busy == {"a.test"}
    clock.advance(60.0)
    ready = hosts.take_ready()
    assert isinstance(ready, Wanted)
    assert ready.host == "a.test"


def test_the_pool_reports_each_change_of_a_hosts_pace_so_no_caller_diffs_it() -> None:
    clock = FakeClock()
    wakes: list[None] = []
    hosts = HostPool(8, 0.0, lambda: wakes.append(None), clock, rng=random.Random(1), park_after=2, park_time=60.0)
    for n in range(10):
        hosts.push("a.test", item(n))
    assert hosts.note_failure("a.test") == Slowed(4, 0.5)
    assert hosts.note_failure("a.test", strain=False, url="/a") is None
    assert hosts.note_failure("a.test", strain=False, url="/b") == Parked(60.0)
    assert hosts.note_answer("a.test", 0.05) is None      # the park ends: still slowed
    assert hosts.note_answer("a.test", 0.05) is None
    woken = len(wakes)
    assert hosts.note_answer("a.test", 0.05) == Eased(5, hosts.pace("a.test")[1])
    assert len(wakes) == woken + 1                        # one more request in flight: the dispatcher hears
    changes = [hosts.note_answer("a.test", 0.05) for _ in range(20)]
    assert Recovered(eased=True) in changes
    assert changes[-1] is None                            # recovered once, then nothing more to say
    assert not hosts.adapted("a.test")
    assert hosts.note_answer("b.test", 0.05) is None      # a host it never held

# -- robots.txt --------------------------------------------------------------------------------------------

def test_the_robots_txt_line_that_decides_is_named() -> None:
    from protego import Protego
    rules = RobotsRules(Protego.parse("User-agent: *\nAllow: /private/open\nDisallow: /private\n"), False, 0.0)
    assert rules.matching_line("http://a.test/private/x", "crawler") == "Disallow: /private"
    assert rules.matching_line("http://a.test/private/open/1", "crawler") == "Allow: /private/open"
    assert rules.matching_line("http://a.test/public", "crawler") is None
    assert RobotsRules(None, False, 0.0).matching_line("http://a.test/", "crawler") is None
