"""crawler.pace: one host's adaptive pace as a pure value, each change reported, no clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawler.pace import RECOVER_AFTER, Change, Eased, Pace, PaceRules, Parked, Recovered, Slowed

RULES = PaceRules(per_host=8, delay=0.0, backoff_max=4.0, park_after=3, park_time=600.0)


def steady() -> float:
    return 1.0


def test_strain_halves_the_limit_doubles_the_extra_delay_up_to_backoff_max() -> None:
    pace = Pace()
    assert pace.fail(100.0, RULES, steady) == Slowed(4, 0.5)
    assert pace.fail(100.0, RULES, steady) == Slowed(2, 1.0)
    changes = [pace.fail(100.0, RULES, steady) for _ in range(5)]
    assert changes[-1] == Slowed(1, 4.0)
    assert pace.limit(RULES.per_host) == 1


def test_strain_waits_at_least_the_configured_delay_and_a_retry_after() -> None:
    pace = Pace()
    assert pace.fail(100.0, PaceRules(8, delay=2.0), steady) == Slowed(4, 2.0)
    assert pace.resume == 102.0
    pace.fail(100.0, RULES, steady, retry_after=30.0)
    assert pace.resume == 130.0


def test_a_failure_without_strain_slows_nothing_and_reports_nothing() -> None:
    pace = Pace()
    assert pace.fail(100.0, RULES, steady, strain=False, url="/a") is None
    assert not pace.adapted
    assert pace.limit(RULES.per_host) == 8


def test_failures_of_park_after_distinct_urls_park_the_host_for_park_time() -> None:
    pace = Pace()
    assert pace.fail(100.0, RULES, steady, strain=False, url="/a") is None
    assert pace.fail(100.0, RULES, steady, strain=False, url="/a") is None   # the same URL again
    assert pace.fail(100.0, RULES, steady, strain=False, url="/b") is None
    assert pace.fail(100.0, RULES, steady, strain=False, url="/c") == Parked(700.0)
    assert pace.resume == 700.0
    assert pace.failing == []   # after the pause, a fresh run of chances


def test_a_good_answer_ends_a_park_and_reports_the_host_recovered() -> None:
    pace = Pace()
    for url in ("/a", "/b", "/c"):
        pace.fail(100.0, RULES, steady, strain=False, url=url)
    assert pace.answer(0.05, 101.0, RULES, steady) == Recovered(eased=False)
    assert not pace.adapted


def test_good_answers_ease_the_pace_step_by_step_then_report_it_recovered() -> None:
    pace = Pace()
    pace.fail(100.0, RULES, steady)
    pace.fail(100.0, RULES, steady)   # 2 in flight
    changes = [pace.answer(0.05, 101.0, RULES, steady) for _ in range(6 * RECOVER_AFTER)]
    steps = [change for change in changes if change is not None]
    assert [type(change) for change in steps] == [Eased] * 5 + [Recovered]
    assert [n for n, change in enumerate(changes) if change is not None] == [2, 5, 8, 11, 14, 17]
    assert [change.limit for change in steps if isinstance(change, Eased)] == [3, 4, 5, 6, 7]
    assert steps[-1] == Recovered(eased=True)
    assert pace.limit(RULES.per_host) == 8
    assert pace.backoff == 0.0


def test_an_answer_far_slower_than_usual_slows_the_host_once_per_rise() -> None:
    pace = Pace()
    assert [pace.answer(0.1, 100.0, RULES, steady) for _ in range(10)] == [None] * 10
    assert pace.answer(5.0, 100.0, RULES, steady) == Slowed(4, 0.5)
    assert not isinstance(pace.answer(5.0, 100.0, RULES, steady), Slowed)   # the new usual


def test_a_good_answer_starts_the_count_of_failing_urls_again() -> None:
    pace = Pace()
    pace.fail(100.0, RULES, steady, strain=False, url="/a")
    pace.fail(100.0, RULES, steady, strain=False, url="/b")
    pace.respond()
    assert pace.answers == 1
    assert pace.fail(100.0, RULES, steady, strain=False, url="/c") is None
    assert pace.fail(100.0, RULES, steady, strain=False, url="/d") is None


# one step: (a failure or an answer, strain, the URL that failed, Retry-After, seconds to answer)
Step = tuple[bool, bool, str | None, float | None, float]
steps = st.lists(st.tuples(st.booleans(), st.booleans(), st.sampled_from([None, "/a", "/b", "/c", "/d"]),
                           st.none() | st.floats(0.0, 100.0), st.floats(0.0, 30.0)), max_size=60)


@given(per_host=st.integers(1, 16), delay=st.floats(0.0, 5.0), backoff_max=st.floats(0.0, 60.0),
       park_after=st.integers(0, 4), jitter=st.floats(0.5, 1.5), steps=steps)
def test_the_pace_stays_in_bounds_and_its_changes_tell_whether_it_is_adapted(
        per_host: int, delay: float, backoff_max: float, park_after: int, jitter: float, steps: list[Step]) -> None:
    rules = PaceRules(per_host, delay, backoff_max, park_after, park_time=60.0)
    pace = Pace()
    below_pace = False   # what a caller learns from the changes alone, without looking at the pace
    now = 1.0
    for failed, strain, url, retry_after, seconds in steps:
        now += 1.0
        change: Change | None
        if failed:
            change = pace.fail(now, rules, lambda: jitter, strain=strain, url=url, retry_after=retry_after)
        else:
            change = pace.answer(seconds, now, rules, lambda: jitter)
        if isinstance(change, Slowed | Parked):
            below_pace = True
        elif isinstance(change, Recovered):
            below_pace = False
        assert below_pace == pace.adapted
        assert 1 <= pace.limit(per_host) <= per_host
        assert 0.0 <= pace.backoff <= backoff_max
        if isinstance(change, Slowed | Parked):
            assert pace.resume >= now   # the caller holds the host's next request until then
        assert not park_after or len(pace.failing) < park_after


@pytest.mark.parametrize("per_host", [1, 2, 3])
def test_a_host_with_few_requests_in_flight_recovers_to_its_full_limit(per_host: int) -> None:
    pace = Pace()
    rules = PaceRules(per_host)
    pace.fail(1.0, rules, steady)
    changes = [pace.answer(0.05, 2.0, rules, steady) for _ in range(20 * RECOVER_AFTER)]
    assert any(isinstance(change, Recovered) for change in changes)
    assert pace.limit(per_host) == per_host
    assert not pace.adapted
