"""Politeness: a queue per host, a per-host limit of requests in flight, a delay between them, and
the order in which hosts take turns.

Hosts become ready by time: a heap of (ready time, turn, host) holds every host that could start a
request (it has a URL queued here, or the frontier may hold more of its URLs, and it is under its
limit), so choosing the next URL costs O(log hosts) however many hosts wait, and equal times are
served in turn (round robin). A host at its limit, in its delay or in a backoff holds no global
permit and no lease buffer: its URLs stay in the frontier until it is ready and its queue here is
empty, and then the scheduler leases a few (``Wanted``).

A URL to retry waits out its own backoff (``retry``) while its host serves its other URLs, and once
due it goes after the URLs queued here, before the next lease, and never into its host's last free
slot while other URLs wait: URLs that hang do not hold a host slowed to a request or two in flight
while its good URLs wait (Scrapy, too, lowers a retry's priority). A host that has not answered yet
(its one-request probe) waits for that retry instead.

The scheduler asks ``take_ready()`` for a URL whose host may be contacted *now*, and only then
takes a global permit, so a URL waiting for its host never holds a global slot (Crawlee's bug
#2176 is exactly that mistake). ``release`` returns the host slot as soon as the response is in.

Politeness adapts to each host (``slow_down``, ``answered``): a 429 or 503, a timeout or a response
much slower than the host's usual halves the host's limit of requests in flight and doubles an
extra delay (up to ``backoff_max``, each wait jittered by 0.5x-1.5x so hosts that failed together do
not come back together), and a ``Retry-After`` is a floor on the next wait. Each good answer
shortens the extra delay by 30% and every three give back one request in flight, so a host
recovers gradually.

A failing URL is that URL's failure, not its host's, as long as the host answers others: only
failures across ``park_after`` *distinct* URLs with no good answer between them (any failure: a
reset, a timeout, a 500 too) park the host for ``park_time`` seconds, rather than retries in a tight
loop. The retries of one hanging URL never add up to a park, and the scheduler counts no failure of
a request during which the host answered others (``answered_since``): that URL fails, not its host
(nor is its timeout a sign of strain). A parked host with work is still ``busy``;
``parked_beyond`` tells the scheduler when parked hosts are all that is left.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from crawler.models import FrontierItem


@dataclass(slots=True)
class _Host:
    queue: deque[FrontierItem] = field(default_factory=deque)
    retries: list[tuple[float, int, FrontierItem]] = field(default_factory=list)   # heap: (due, turn, URL to retry)
    active: int = 0
    next_time: float = 0.0     # earliest start of the next request
    delay: float = 0.0         # least time between two request starts
    known: bool = True         # False until the host's robots.txt has been read: one request at a time
    more: bool = False         # the frontier may hold more of its URLs
    offers: int = 0            # times the frontier said so: a lease that raced with an offer proves nothing
    parked: bool = False       # unreachable: no more requests in this run
    scheduled: float | None = None   # its entry's time in the time heap (None: not in it)
    ready: bool = False        # in the ready heap: its time has come, it waits for its turn
    starts: list[float] = field(default_factory=list)   # its latest request starts (per_host of them)
    duration: float = 0.0      # moving average of its requests' times, start to end (``_tier``)
    # adaptive politeness
    cap: int = 0               # requests in flight it may have now (0: the pool's per_host)
    backoff: float = 0.0       # extra seconds between two request starts
    failing: list[str] = field(default_factory=list)   # distinct URLs that failed since the last good answer
    answers: int = 0           # good answers so far (a request notes it when it starts: ``answers``)
    good: int = 0              # good answers since the last change of cap or backoff
    latency: float = 0.0       # moving average of response times, seconds (0: none yet)
    usual: float = 0.0         # the lowest that average has been: the host's usual speed
    parked_until: float = 0.0  # parked for a while (failing): no request before this time

    @property
    def last_start(self) -> float:
        return self.starts[-1] if self.starts else float("-inf")

    @property
    def adapted(self) -> bool:
        """The host runs below its configured pace (fewer requests in flight or a longer delay)."""
        return bool(self.cap or self.backoff or self.parked_until)


@dataclass(frozen=True, slots=True)
class Wanted:
    """A host that is ready, with nothing queued here: lease its next URLs from the frontier."""

    host: str
    offers: int


class HostPool:
    """URLs waiting to be fetched, grouped by host, handed out as hosts become ready."""

    # Adaptive politeness: each good answer shortens the extra delay by RECOVER_FACTOR, and every
    # RECOVER_AFTER good answers in a row give back one request in flight; a response slower than
    # SLOW_FACTOR times the host's usual (and SLOW_FLOOR seconds at least) counts as strain.
    RECOVER_AFTER = 3
    RECOVER_FACTOR = 0.7
    SLOW_FACTOR = 4.0
    SLOW_FLOOR = 1.0

    def __init__(self, per_host: int, delay: float, on_change: Callable[[], None] = lambda: None,
                 clock: Callable[[], float] = time.monotonic, *, probe_first: bool = False,
                 backoff_max: float = 60.0, park_after: int = 5, park_time: float = 120.0,
                 rng: random.Random | None = None) -> None:
        self.per_host = per_host
        self.delay = delay
        self.backoff_max = backoff_max
        self.park_after = park_after
        self.park_time = park_time
        self._rng = rng or random.Random()
        # With probe_first, a new host gets one request until ``learn`` is called (after its
        # robots.txt is read), so a Crawl-delay applies before a burst of per_host requests.
        self.probe_first = probe_first
        self._clock = clock
        self._hosts: dict[str, _Host] = {}
        self._heap: list[tuple[float, int, str]] = []    # (ready time, turn, host): hosts waiting for their time
        self._ready: list[tuple[int, float, int, str]] = []   # (-tier, ready time, turn, host): their time has come
        self._turns = itertools.count()
        self._on_change = on_change   # wakes the dispatcher: a URL arrived or a slot came free
        self.size = 0                 # URLs queued here
        self.busy: set[str] = set()   # hosts with work: queued here, maybe more in the frontier, or in flight
        self.active: set[str] = set()   # hosts with a request in flight

    # -- the state of one host ------------------------------------------------------------------

    def _host(self, host: str) -> _Host:
        state = self._hosts.get(host)
        if state is None:
            state = self._hosts[host] = _Host(delay=self.delay, known=not self.probe_first)
        return state

    def _limit(self, state: _Host) -> int:
        if not state.known:
            return 1
        return min(self.per_host, state.cap) if state.cap else self.per_host

    def _update(self, host: str, state: _Host) -> None:
        """Put the host in the heap if it could start a request, keep ``busy``/``active`` right, and
        forget a host with nothing left whose state is the default: memory follows hosts in use."""
        has_work = bool(state.queue) or state.more or bool(state.retries)
        if has_work and not state.parked and state.active < self._limit(state):
            when = state.next_time
            if state.retries and ((not state.queue and not state.more) or not state.known):
                when = max(when, state.retries[0][0])   # only retries, or a probe's: the first is due then
            if state.scheduled != when:
                state.scheduled = when
                heapq.heappush(self._heap, (when, next(self._turns), host))
        if (has_work and not state.parked) or state.active:
            self.busy.add(host)
        else:
            self.busy.discard(host)
        if state.active:
            self.active.add(host)
        else:
            self.active.discard(host)
        if (not has_work and state.active == 0 and state.next_time <= self._clock() and not state.parked
                and state.delay == self.delay and state.known and not state.adapted and not state.failing):
            del self._hosts[host]

    # -- what the frontier and the visits tell it -------------------------------------------------

    def offer(self, host: str) -> None:
        """The frontier holds (or may hold) URLs of ``host``: lease them when the host is ready."""
        state = self._host(host)
        state.more = True
        state.offers += 1
        self._update(host, state)
        self._on_change()

    def leased(self, want: Wanted, items: list[FrontierItem], asked: int) -> None:
        """The frontier's answer to ``want``: ``items`` of the ``asked`` for. Fewer means the frontier
        had no more, unless the host was offered again while the lease ran."""
        state = self._host(want.host)
        state.queue.extend(items)
        self.size += len(items)
        if len(items) < asked and state.offers == want.offers:
            state.more = False
        self._update(want.host, state)
        self._on_change()

    def push(self, host: str, item: FrontierItem) -> None:
        """Queue one URL of ``host``."""
        state = self._host(host)
        state.queue.append(item)
        self.size += 1
        self._update(host, state)
        self._on_change()

    def retry(self, host: str, item: FrontierItem, after: float) -> None:
        """Fetch ``item`` of ``host`` again in ``after`` seconds or later: it waits out its own backoff
        while its host serves its other URLs, and goes once the URLs queued here are taken."""
        state = self._host(host)
        heapq.heappush(state.retries, (self._clock() + after, next(self._turns), item))
        self.size += 1
        self._update(host, state)
        self._on_change()

    def set_delay(self, host: str, seconds: float) -> None:
        """Raise a host's delay (robots.txt Crawl-delay); never lowers the configured one. It counts
        from the last request already started."""
        state = self._host(host)
        state.delay = max(self.delay, seconds)
        state.next_time = max(state.next_time, state.last_start + state.delay)
        self._update(host, state)

    def learn(self, host: str, crawl_delay: float | None) -> None:
        """The host's rules are known: lift the one-request probe, apply its Crawl-delay."""
        state = self._host(host)
        if crawl_delay:
            self.set_delay(host, crawl_delay)
        if not state.known:
            state.known = True
            self._update(host, state)
            self._on_change()

    # -- adaptive politeness --------------------------------------------------------------------------

    def slow_down(self, host: str, retry_after: float | None = None, *, strain: bool = True,
                  url: str | None = None) -> float | None:
        """``host`` shows strain (429, 503, a timeout, a slow answer): fewer requests in flight, a
        longer delay, a ``Retry-After`` (seconds, already capped) waited out. With ``strain`` False it
        only failed (a reset, a 500): nothing slows. A failure names its ``url``: when ``park_after``
        distinct URLs have failed with no good answer between them, the host is parked for
        ``park_time``. Returns the time the host is parked until, when this failure parked it, else None."""
        state = self._host(host)
        now = self._clock()
        state.good = 0
        wait = 0.0
        if strain:
            state.cap = max(1, (state.cap or self.per_host) // 2)
            state.backoff = min(self.backoff_max, max(0.5, state.backoff * 2, self.delay))
            wait = state.backoff * self._rng.uniform(0.5, 1.5)
        if retry_after is not None:
            wait = max(wait, retry_after)
        parked = None
        if url is not None and url not in state.failing:
            state.failing.append(url)
        if self.park_after and len(state.failing) >= self.park_after:
            state.parked_until = parked = now + max(self.park_time, wait)
            state.failing.clear()   # after the pause the host gets a fresh run of chances
            wait = self.park_time
        state.next_time = max(state.next_time, now + wait)
        self._update(host, state)
        return parked

    def answered(self, host: str, seconds: float) -> bool:
        """``host`` answered in ``seconds``: count a good answer (gradual recovery), or, when the
        answer was far slower than the host's usual, slow it down. Returns True if it was slow.
        A host already forgotten (no work left, at full pace) has nothing to adapt."""
        state = self._hosts.get(host)
        if state is None:
            return False
        self.responded(host)
        state.parked_until = 0.0
        average = seconds if not state.latency else 0.7 * state.latency + 0.3 * seconds
        state.latency = average
        state.usual = average if not state.usual else min(state.usual, average)
        if average > max(self.SLOW_FLOOR, self.SLOW_FACTOR * state.usual):
            state.usual = average   # the new usual: slowed once per rise, not on every answer after it
            self.slow_down(host)   # no URL: slow is strain, not failure, and never parks a host
            return True
        if state.adapted:
            state.good += 1
            state.backoff = 0.0 if state.backoff < 0.05 else state.backoff * self.RECOVER_FACTOR
            if state.good >= self.RECOVER_AFTER:
                state.good = 0
                state.cap = 0 if not state.cap or state.cap + 1 >= self.per_host else state.cap + 1
                self._update(host, state)
                self._on_change()
        return False

    def responded(self, host: str) -> None:
        """``host`` answered (a good page, or a response that failed on our rules: too large, a
        redirect loop): it is up, whatever its other URLs do."""
        state = self._hosts.get(host)
        if state is not None:
            state.failing.clear()
            state.answers += 1

    def answers(self, host: str) -> int:
        """How many good answers ``host`` has given: noted when a request starts, so that when it fails,
        ``answered_since`` tells whether the host answered others meanwhile."""
        state = self._hosts.get(host)
        return state.answers if state is not None else 0

    def answered_since(self, host: str, answers: int) -> bool:
        """Whether ``host`` gave a good answer since it had given ``answers`` (``answers(host)`` when a
        request started; the host is not forgotten while the request is in flight). A request that
        failed meanwhile failed on its own URL: the host answers."""
        state = self._hosts.get(host)
        return state is not None and state.answers > answers

    def parked_beyond(self, horizon: float) -> bool:
        """Whether every host with work is parked until after ``horizon``, with nothing in flight:
        the run has nothing to do but wait out those parks. (Costs a pass over the busy hosts: ask
        only when nothing is in flight.)"""
        return all(not (state := self._hosts[host]).active and state.parked_until > horizon for host in self.busy)

    def adapted(self, host: str) -> bool:
        """Whether ``host`` runs below its configured pace now (a forgotten host does not)."""
        state = self._hosts.get(host)
        return state is not None and state.adapted

    def pace(self, host: str) -> tuple[int, float, float]:
        """(requests in flight allowed, seconds between request starts, parked until) of ``host`` now."""
        state = self._hosts.get(host)
        if state is None:
            return self.per_host, self.delay, 0.0
        return self._limit(state), state.delay + state.backoff, state.parked_until

    def give_back(self, host: str) -> list[FrontierItem]:
        """Empty ``host``'s queue here and return its URLs, for the frontier to take back: the host
        leases them again when it is next ready (a host parked a while holds no leases meanwhile)."""
        state = self._host(host)
        dropped = [*state.queue, *(item for *_, item in state.retries)]
        state.queue.clear()
        state.retries.clear()
        state.more = state.more or bool(dropped)
        self.size -= len(dropped)
        self._update(host, state)
        return dropped

    def park(self, host: str) -> list[FrontierItem]:
        """``host`` is unreachable: no more requests to it in this run. Returns the URLs that were
        queued here, for the frontier to take back."""
        state = self._host(host)
        state.parked = True   # first: a parked host is never forgotten
        dropped = self.give_back(host)
        state.more = False
        self._update(host, state)
        self._on_change()
        return dropped

    def release(self, host: str) -> None:
        """A request to ``host`` is over; its slot is free again."""
        state = self._hosts[host]
        if 0 < state.active <= len(state.starts):   # the oldest request in flight is taken to be this one
            took = self._clock() - state.starts[-state.active]
            state.duration = took if not state.duration else 0.7 * state.duration + 0.3 * took
        state.active -= 1
        self._update(host, state)
        self._on_change()

    # -- the next request ---------------------------------------------------------------------------

    @staticmethod
    def _tier(state: _Host) -> int:
        """How slow the host's requests are: 0 under half a second, then one more for each doubling
        (1 from 0.5 s, 2 from 1 s, 3 from 2 s, ..., at most 6)."""
        took = state.duration
        return 0 if took < 0.5 else min(6, int(math.log2(took / 0.25)))

    def take_ready(self) -> tuple[str, FrontierItem] | Wanted | float | None:
        """A ready (host, item); or a ready host to lease for (``Wanted``); else the earliest time a
        host will be ready; else None (nothing can start until a request ends or work arrives).

        Hosts whose time has come go to the ready heap: the slowest requests first (``_tier``), then
        by the time they became ready (round robin). A host whose requests take seconds needs the
        most time for its own URLs whatever else happens, so its slot is filled as soon as it is
        free: it keeps ``per_host`` requests in flight and finishes as early as it can, instead of
        waiting its turn behind a thousand hosts that answer in milliseconds and ending last. What
        it takes is a few global permits, not CPU: the fast hosts go no slower."""
        now = self._clock()
        heap, ready = self._heap, self._ready
        while heap and heap[0][0] <= now:
            when, _, host = heapq.heappop(heap)
            state = self._hosts.get(host)
            if state is None or state.scheduled != when:
                continue   # stale: the host was rescheduled, taken or forgotten since
            state.scheduled = None
            if not state.ready:
                state.ready = True
                heapq.heappush(ready, (-self._tier(state), when, next(self._turns), host))
        while ready:
            *_, host = heapq.heappop(ready)
            state = self._hosts.get(host)
            if state is None or not state.ready:
                continue
            state.ready = False
            if state.parked or state.active >= self._limit(state) or state.next_time > now:
                self._update(host, state)
                continue
            due = bool(state.retries) and state.retries[0][0] <= now
            if state.retries and not state.known:   # a host that has not answered yet: its probe's retry first
                if not due:
                    self._update(host, state)
                    continue
                item = heapq.heappop(state.retries)[2]
            elif state.queue:
                item = state.queue.popleft()
            elif due and (self._limit(state) - state.active > 1 or not state.more):
                item = heapq.heappop(state.retries)[2]   # never a host's last free slot while other URLs wait
            elif state.more:
                return Wanted(host, state.offers)
            else:
                self._update(host, state)   # only retries, not yet due: back in the heap at the first's time
                continue
            self.size -= 1
            state.active += 1
            state.starts.append(now)
            if len(state.starts) > self.per_host:
                del state.starts[0]
            state.next_time = now + state.delay + state.backoff
            self._update(host, state)
            return host, item
        while heap:
            when, _, host = heap[0]
            state = self._hosts.get(host)
            if state is not None and state.scheduled == when:
                return when
            heapq.heappop(heap)   # stale
        return None
