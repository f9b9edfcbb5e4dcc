"""crawler.politeness: per-host limits, delays and round-robin, on a fake clock."""

from __future__ import annotations

from fake_clock import FakeClock

from crawler.models import FrontierItem
from crawler.politeness import HostPool, Wanted


def item(n: int, host: str = "a") -> FrontierItem:
    return FrontierItem(n, f"http://{host}/{n}", 0)


def pool(per_host: int = 8, delay: float = 0.0, clock: FakeClock | None = None) -> HostPool:
    return HostPool(per_host, delay, clock=clock or FakeClock())


def fill(hosts: HostPool, host: str, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        hosts.push(host, item(n, host))


def test_empty_pool_has_nothing_and_no_time() -> None:
    assert pool().take_ready() is None


def test_per_host_limit_is_respected_and_release_frees_a_slot() -> None:
    hosts = pool(per_host=2)
    fill(hosts, "a", 3)
    assert hosts.take_ready() == ("a", item(0))
    assert hosts.take_ready() == ("a", item(1))
    assert hosts.take_ready() is None  # at the limit: no slot, and no time at which one comes free
    hosts.release("a")
    assert hosts.take_ready() == ("a", item(2))


def test_a_host_at_its_limit_does_not_block_other_hosts() -> None:
    hosts = pool(per_host=1)
    fill(hosts, "a", 2)
    fill(hosts, "b", 1)
    assert hosts.take_ready() == ("a", item(0))
    assert hosts.take_ready() == ("b", item(0, "b"))
    assert hosts.take_ready() is None


def test_delay_between_request_starts() -> None:
    clock = FakeClock(100.0)
    hosts = pool(per_host=4, delay=2.0, clock=clock)
    fill(hosts, "a", 2)
    assert hosts.take_ready() == ("a", item(0))
    assert hosts.take_ready() == 102.0  # the soonest time, not an item
    clock.advance(1.9)
    assert hosts.take_ready() == 102.0
    clock.advance(0.1)
    assert hosts.take_ready() == ("a", item(1))


def test_delay_counts_from_the_start_not_the_end_of_a_request() -> None:
    clock = FakeClock()
    hosts = pool(per_host=4, delay=2.0, clock=clock)
    fill(hosts, "a", 2)
    hosts.take_ready()
    clock.advance(5.0)
    hosts.release("a")  # a slow response: the delay has already passed
    assert hosts.take_ready() == ("a", item(1))


def test_soonest_time_is_the_earliest_over_hosts() -> None:
    clock = FakeClock()
    hosts = pool(clock=clock)
    hosts.retry("a", item(0), 5.0)
    hosts.retry("b", item(0, "b"), 3.0)
    assert hosts.take_ready() == 3.0
    clock.advance(3.0)
    assert hosts.take_ready() == ("b", item(0, "b"))
    assert hosts.take_ready() == 5.0


def test_round_robin_across_hosts() -> None:
    hosts = pool()
    fill(hosts, "a", 3)
    fill(hosts, "b", 2)
    fill(hosts, "c", 1)
    order = []
    while (taken := hosts.take_ready()) is not None:
        assert isinstance(taken, tuple)
        order.append(taken[0])
    assert order == ["a", "b", "c", "a", "b", "a"]


def test_a_retry_waits_out_its_own_backoff_while_its_host_serves_its_other_urls() -> None:
    clock = FakeClock(10.0)
    hosts = pool(clock=clock)
    fill(hosts, "a", 2)
    hosts.retry("a", item(9), 5.0)
    assert hosts.take_ready() == ("a", item(0))
    assert hosts.take_ready() == ("a", item(1))
    assert hosts.take_ready() == 15.0
    clock.advance(5.0)
    assert hosts.take_ready() == ("a", item(9))
    assert hosts.size == 0


def test_a_due_retry_goes_after_the_urls_queued_here_and_before_the_next_lease() -> None:
    clock = FakeClock()
    hosts = pool(clock=clock)
    hosts.retry("a", item(9), 1.0)
    fill(hosts, "a", 2)
    hosts.offer("a")   # the frontier holds more of its URLs
    clock.advance(1.0)
    assert [hosts.take_ready() for _ in range(3)] == [("a", item(0)), ("a", item(1)), ("a", item(9))]
    assert hosts.take_ready() == Wanted("a", 1)


def test_a_retry_never_takes_its_hosts_last_free_slot_while_other_urls_wait() -> None:
    clock = FakeClock()
    hosts = pool(per_host=2, clock=clock)
    hosts.retry("a", item(8), 0.0)
    hosts.retry("a", item(9), 0.0)
    hosts.offer("a")
    assert hosts.take_ready() == ("a", item(8))
    assert hosts.take_ready() == Wanted("a", 1)   # one slot left: the frontier's URLs get it
    hosts.leased(Wanted("a", 1), [], 2)            # none there after all: now the retry may have it
    assert hosts.take_ready() == ("a", item(9))


def test_a_host_that_has_not_answered_yet_waits_for_its_probes_retry() -> None:
    clock = FakeClock()
    hosts = HostPool(8, 0.0, clock=clock, probe_first=True)
    fill(hosts, "a", 2)
    assert hosts.take_ready() == ("a", item(0))
    hosts.release("a")
    hosts.retry("a", item(0), 2.0)   # the probe failed: no other URL of the host before its retry
    assert hosts.take_ready() == 2.0
    clock.advance(2.0)
    assert hosts.take_ready() == ("a", item(0))


def test_a_host_given_back_to_the_frontier_returns_its_retries_too() -> None:
    hosts = pool()
    fill(hosts, "a", 2)
    hosts.retry("a", item(9), 30.0)
    assert sorted(i.id for i in hosts.give_back("a")) == [0, 1, 9]
    assert hosts.size == 0


def test_set_delay_raises_but_never_lowers_the_configured_delay() -> None:
    clock = FakeClock()
    hosts = pool(delay=2.0, clock=clock)
    hosts.set_delay("slow", 5.0)   # Crawl-delay: 5
    hosts.set_delay("fast", 0.5)   # Crawl-delay: 0.5 is less than we promised ourselves
    fill(hosts, "slow", 2)
    fill(hosts, "fast", 2)
    assert hosts.take_ready() == ("slow", item(0, "slow"))
    assert hosts.take_ready() == ("fast", item(0, "fast"))
    assert hosts.take_ready() == 2.0
    clock.advance(2.0)
    assert hosts.take_ready() == ("fast", item(1, "fast"))
    assert hosts.take_ready() == 5.0


def test_crawl_delay_survives_the_host_going_idle() -> None:
    clock = FakeClock()
    hosts = pool(delay=0.0, clock=clock)
    hosts.set_delay("a", 4.0)
    fill(hosts, "a", 1)
    hosts.take_ready()
    clock.advance(10.0)
    hosts.release("a")  # idle: nothing queued, nothing in flight, no pending delay
    fill(hosts, "a", 2, start=1)
    assert hosts.take_ready() == ("a", item(1))
    assert hosts.take_ready() == 14.0


def test_size_bookkeeping() -> None:
    hosts = pool(per_host=1)
    fill(hosts, "a", 2)
    fill(hosts, "b", 1)
    assert hosts.size == 3
    hosts.take_ready()
    hosts.take_ready()
    assert hosts.size == 1
    assert hosts.take_ready() is None  # "a" is at its limit: waiting is not "empty"
    assert hosts.size == 1
    hosts.release("a")
    hosts.take_ready()
    assert hosts.size == 0


def test_on_change_fires_when_a_url_arrives_or_a_slot_frees() -> None:
    changes: list[str] = []
    hosts = HostPool(1, 0.0, on_change=lambda: changes.append("x"), clock=FakeClock())
    fill(hosts, "a", 2)
    assert len(changes) == 2
    hosts.take_ready()
    hosts.release("a")
    assert len(changes) == 3


def test_a_host_with_slow_requests_keeps_its_slots_busy_among_fast_hosts_competing_for_permits() -> None:
    """Three requests in flight in all (the global permits); a slow host (1 s a request) and 30
    fast ones (0.1 s), two slots each: a fast host's turn comes every 1.5 s or so. The slow host's
    requests are the slowest, so it is served first whenever one of its slots is free: it keeps
    both busy (two requests a second, not two a turn), and the fast hosts share the third permit."""
    clock = FakeClock()
    hosts = pool(per_host=2, clock=clock)
    for host in ("s", *(f"f{n}" for n in range(30))):
        fill(hosts, host, 1000)
    permits, ends, started = 3, [], {"s": 0, "f": 0}
    while clock.time() < 20.0:
        while permits and isinstance(taken := hosts.take_ready(), tuple):
            host = taken[0]
            permits -= 1
            started["s" if host == "s" else "f"] += 1
            ends.append((clock.time() + (1.0 if host == "s" else 0.1), host))
        ends.sort()
        end, host = ends.pop(0)
        clock.advance(end - clock.time())
        hosts.release(host)
        permits += 1
    assert started["s"] >= 38            # two at a time, a second each, for 20 s
    assert started["f"] >= 150           # the third permit: ten a second
