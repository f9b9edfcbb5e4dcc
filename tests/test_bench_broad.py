"""The broad-crawl benchmark's checks (benchmarks/broad.py), on small logs and jobs written here:
no network, no nginx."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def broad() -> Iterator[ModuleType]:
    """benchmarks/broad.py, imported as its script is run: beside run.py."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield importlib.import_module("broad")
    finally:
        sys.path.remove(str(BENCHMARKS))


# Two hosts, two requests at a time each at most; the times are nginx's $msec (when the request was
# logged, i.e. ended) and $request_time, as hosts.py --log writes them.
LOG = """\
127.0.1.1 1000.100 0.100 GET /robots.txt HTTP/1.1
127.0.1.1 1000.600 0.500 GET / HTTP/1.1
127.0.1.1 1001.100 0.400 GET /p/0.html HTTP/1.1
127.0.1.1 1001.000 0.300 GET /p/1.html HTTP/1.1
127.0.1.2 1002.000 2.000 GET / HTTP/1.1
127.0.1.2 1004.000 2.000 GET /p/0.html HTTP/1.1

"""


def test_a_log_line_is_a_request_that_ended_at_its_time(broad: ModuleType) -> None:
    first, *_ = broad.parse_log(LOG.splitlines())
    assert first == broad.Request("127.0.1.1", 1_000_000, 1_000_100, "GET /robots.txt HTTP/1.1")
    assert [r.start_ms for r in broad.parse_log(["127.0.1.9 1700000000.5 0.25 GET / HTTP/1.1"])] == [1_700_000_000_250]


def test_peak_in_flight_per_host(broad: ModuleType) -> None:
    requests = list(broad.parse_log(LOG.splitlines()))
    # 127.0.1.1: / runs 1000.1-1000.6, /p/0 1000.7-1001.1, /p/1 1000.7-1001.0: two at once, never three.
    # 127.0.1.2: / ends at 1002.000, the millisecond /p/0 starts: one after the other.
    assert broad.peak_in_flight(requests) == {"127.0.1.1": 2, "127.0.1.2": 1}
    assert broad.check_in_flight(requests, 2) == []
    assert broad.check_in_flight(requests, 1) == ["1 hosts had more than 1 requests in flight (127.0.1.1: 2)"]


def test_requests_under_a_millisecond_are_left_out_of_the_peak(broad: ModuleType) -> None:
    log = LOG + "".join(f"127.0.1.3 1003.000 0.000 GET /p/{n}.html HTTP/1.1\n" for n in range(3))
    requests = list(broad.parse_log(log.splitlines()))
    assert "127.0.1.3" not in broad.peak_in_flight(requests)
    assert broad.instant(requests) == 3


def test_three_overlapping_requests_to_one_host_break_a_limit_of_two(broad: ModuleType) -> None:
    log = LOG + "127.0.1.1 1001.050 0.100 GET /p/2.html HTTP/1.1\n"   # 1000.950-1001.050: beside /p/0 and /p/1
    requests = list(broad.parse_log(log.splitlines()))
    assert broad.over_limit(broad.peak_in_flight(requests), 2) == {"127.0.1.1": 3}
    assert broad.check_in_flight(requests, 2) == ["1 hosts had more than 2 requests in flight (127.0.1.1: 3)"]


def test_a_request_asked_for_twice_is_counted(broad: ModuleType) -> None:
    log = LOG + "127.0.1.2 1009.000 2.000 GET /p/0.html HTTP/1.1\n"
    assert broad.repeated(broad.parse_log(LOG.splitlines())) == 0
    assert broad.repeated(broad.parse_log(log.splitlines())) == 1


def test_a_line_that_is_not_a_request_names_its_number(broad: ModuleType) -> None:
    with pytest.raises(ValueError, match="line 2 is not"):
        list(broad.parse_log(["127.0.1.1 1.000 0.001 GET / HTTP/1.1", "garbage"]))


def test_the_bed_addresses_and_what_a_full_crawl_stores(broad: ModuleType) -> None:
    fast, slow, dead = broad.bed_addresses(1000, 20, 20)
    assert (len(fast), len(slow), len(dead)) == (980, 20, 20)
    assert (fast[0], fast[249], fast[250], slow[-1], dead[0]) == (
        "127.0.1.1", "127.0.1.250", "127.0.2.1", "127.0.4.250", "127.0.200.1")
    assert broad.expected_statuses(1000, 50) == {"200": 51_000, "404": 1_000}
    assert broad.expected_statuses(30, 5) == {"200": 180, "404": 30}
    seeds = ["http://127.0.1.1:8495/", "http://127.0.4.250:8495/", "http://127.0.200.1:8495/", "http://127.0.1.10:8495/"]
    assert broad.seeds_without(seeds, slow + dead) == ["http://127.0.1.1:8495/", "http://127.0.1.10:8495/"]


def test_a_crawler_job_is_checked_for_statuses_and_dead_seeds(broad: ModuleType) -> None:
    want = {"200": 12, "404": 2}
    stats = {"statuses": {"200": 12, "404": 2}}
    hosts = [{"host": "127.0.1.1:80", "pages": 7, "errors": 1},
             {"host": "127.0.200.1:80", "pages": 1, "errors": 1},
             {"host": "127.0.200.2:80", "pages": 0, "errors": 0, "parked_error": "connect"}]
    assert broad.check_crawler_job(stats, hosts, want, ["127.0.200.1", "127.0.200.2"], 80) == []
    assert broad.check_crawler_job({"statuses": {"200": 11, "404": 2}}, hosts, want, [], 80) == [
        "pages by status {'200': 11, '404': 2}, expected {'200': 12, '404': 2}"]
    assert broad.check_crawler_job(stats, hosts, want, ["127.0.200.1", "127.0.200.3"], 80) == [
        "1 dead seeds not recorded with an error: 127.0.200.3"]


def test_scrapy_feed_is_counted_by_status(broad: ModuleType, tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"url": "a", "status": 200}\n{"url": "b", "status": 404}\n{"url": "c", "status": 200}\n',
                    encoding="utf-8")
    assert broad.feed_statuses(feed) == {"200": 2, "404": 1}
