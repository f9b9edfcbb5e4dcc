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

Politeness adapts to each host (``slow_down``, ``answered``): strain slows it down, good answers
bring it back gradually, and failures across too many distinct URLs park it for a while; the
arithmetic is ``pace.Pace``'s, one per host. The scheduler counts no failure of a request during
which the host answered others (``answered_since``): that URL fails, not its host (nor is its
timeout a sign of strain). A parked host with work is still ``busy``; ``parked_beyond`` tells the
scheduler when parked hosts are all that is left.
"""

from __future__ import annotations

import heapq
import itertools
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial

from crawler.host_queue import HostQueue
from crawler.models import FrontierItem
from crawler.pace import Change, Eased, PaceRules, Parked, Recovered, Slowed


@dataclass(frozen=True, slots=True)
class Wanted:
    """A host that is ready, with nothing queued here: lease its next URLs from the frontier."""

    host: str
    offers: int


class _Turns:
    """The order in which hosts take turns: a heap of (ready time, turn, host) holds the hosts waiting
    for their time, and one of (-tier, ready time, turn, host) those whose time has come. An entry
    goes stale when its host is rescheduled, taken or forgotten: the host's ``scheduled`` (its time
    in the first heap) and ``ready`` (in the second) tell which entry is current."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str]] = []
        self._ready: list[tuple[int, float, int, str]] = []
        self.count = itertools.count()   # turns: equal times are served in the order they came

    def schedule(self, host: str, state: HostQueue, when: float) -> None:
        """``host`` may start a request at ``when``."""
        if state.scheduled != when:
            state.scheduled = when
            heapq.heappush(self._heap, (when, next(self.count), host))

    def ready(self, now: float, hosts: dict[str, HostQueue]) -> Iterator[tuple[str, HostQueue]]:
        """The hosts whose time has come, each taken out of its turn: the slowest requests first
        (``HostQueue.tier``), then by the time they became ready (round robin). A caller that stops
        early leaves the others their turn for its next call."""
        heap, ready = self._heap, self._ready
        while heap and heap[0][0] <= now:
            when, _, host = heapq.heappop(heap)
            state = hosts.get(host)
            if state is None or state.scheduled != when:
                continue   # stale
            state.scheduled = None
            if not state.ready:
                state.ready = True
                heapq.heappush(ready, (-state.tier, when, next(self.count), host))
        while ready:
            *_, host = heapq.heappop(ready)
            state = hosts.get(host)
            if state is not None and state.ready:
                state.ready = False
                yield host, state

    def earliest(self, hosts: dict[str, HostQueue]) -> float | None:
        """The earliest time a host waits for, or None."""
        heap = self._heap
        while heap:
            when, _, host = heap[0]
            state = hosts.get(host)
            if state is not None and state.scheduled == when:
                return when
            heapq.heappop(heap)   # stale
        return None


class HostPool:
    """URLs waiting to be fetched, grouped by host, handed out as hosts become ready."""

    def __init__(self, per_host: int, delay: float, on_change: Callable[[], None] = lambda: None,
                 clock: Callable[[], float] = time.monotonic, *, probe_first: bool = False,
                 backoff_max: float = 60.0, park_after: int = 5, park_time: float = 120.0,
                 rng: random.Random | None = None) -> None:
        self.rules = PaceRules(per_host, delay, backoff_max, park_after, park_time)
        self.delay = delay
        # A strained host's wait is jittered (0.5x-1.5x) so hosts that failed together do not come back together.
        self._jitter = partial((rng or random.Random()).uniform, 0.5, 1.5)
        # With probe_first, a new host gets one request until ``learn`` is called (after its
        # robots.txt is read), so a Crawl-delay applies before a burst of per_host requests.
        self.probe_first = probe_first
        self._clock = clock
        self._hosts: dict[str, HostQueue] = {}
        self._turns = _Turns()
        self._on_change = on_change   # wakes the dispatcher: a URL arrived or a slot came free
        self.size = 0                 # URLs queued here
        self.busy: set[str] = set()   # hosts with work: queued here, maybe more in the frontier, or in flight
        self.active: set[str] = set()   # hosts with a request in flight

    @property
    def per_host(self) -> int:
        """Requests in flight per host at full pace (the scheduler lowers it to a fair share of a job's)."""
        return self.rules.per_host

    @per_host.setter
    def per_host(self, value: int) -> None:
        self.rules = replace(self.rules, per_host=value)

    # -- the state of one host ------------------------------------------------------------------

    def _host(self, host: str) -> HostQueue:
        state = self._hosts.get(host)
        if state is None:
            state = self._hosts[host] = HostQueue(delay=self.delay, known=not self.probe_first)
        return state

    def _update(self, host: str, state: HostQueue) -> None:
        """Put the host in the heap if it could start a request, keep ``busy``/``active`` right, and
        forget a host with nothing left whose state is the default: memory follows hosts in use."""
        has_work = state.has_work
        when = state.ready_at(state.limit(self.per_host))
        if when is not None:
            self._turns.schedule(host, state, when)
        if (has_work and not state.parked) or state.active:
            self.busy.add(host)
        else:
            self.busy.discard(host)
        if state.active:
            self.active.add(host)
        else:
            self.active.discard(host)
        if state.at_rest(self.delay) and state.next_time <= self._clock():
            del self._hosts[host]

    def _changed(self, host: str, state: HostQueue) -> None:
        """``_update``, and wake the dispatcher: a URL arrived or a slot came free."""
        self._update(host, state)
        self._on_change()

    # -- what the frontier and the visits tell it -------------------------------------------------

    def offer(self, host: str) -> None:
        """The frontier holds (or may hold) URLs of ``host``: lease them when the host is ready."""
        state = self._host(host)
        state.more = True
        state.offers += 1
        self._changed(host, state)

    def leased(self, want: Wanted, items: list[FrontierItem], asked: int) -> None:
        """The frontier's answer to ``want``: ``items`` of the ``asked`` for. Fewer means the frontier
        had no more, unless the host was offered again while the lease ran."""
        state = self._host(want.host)
        state.queue.extend(items)
        self.size += len(items)
        if len(items) < asked and state.offers == want.offers:
            state.more = False
        self._changed(want.host, state)

    def push(self, host: str, item: FrontierItem) -> None:
        """Queue one URL of ``host``."""
        state = self._host(host)
        state.queue.append(item)
        self.size += 1
        self._changed(host, state)

    def retry(self, host: str, item: FrontierItem, after: float) -> None:
        """Fetch ``item`` of ``host`` again in ``after`` seconds or later: it waits out its own backoff
        while its host serves its other URLs, and goes once the URLs queued here are taken."""
        state = self._host(host)
        heapq.heappush(state.retries, (self._clock() + after, next(self._turns.count), item))
        self.size += 1
        self._changed(host, state)

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
            self._changed(host, state)

    # -- adaptive politeness --------------------------------------------------------------------------

    def note_failure(self, host: str, retry_after: float | None = None, *, strain: bool = True,
                     url: str | None = None) -> Slowed | Parked | None:
        """A request to ``host`` failed (``Pace.fail``): what changed in its pace, so that a caller
        can record it without diffing ``adapted``. ``Slowed.limit`` is the pace's own limit (``pace``
        also counts a probe and the host's delay)."""
        state = self._host(host)
        change = state.pace.fail(self._clock(), self.rules, self._jitter, strain=strain, url=url, retry_after=retry_after)
        state.next_time = max(state.next_time, state.pace.resume)
        self._update(host, state)
        return change

    def slow_down(self, host: str, retry_after: float | None = None, *, strain: bool = True,
                  url: str | None = None) -> float | None:
        """A request to ``host`` failed: with ``strain`` (429, 503, a timeout) it slows down, and a
        failure of ``url`` may park it (``Pace.fail``). Returns the time the host is parked until, when
        this failure parked it, else None."""
        change = self.note_failure(host, retry_after, strain=strain, url=url)
        return change.until if isinstance(change, Parked) else None

    def note_answer(self, host: str, seconds: float) -> Change | None:
        """``host`` answered in ``seconds`` (``Pace.answer``): what changed in its pace (``Recovered``:
        back at full pace). A host already forgotten (no work left, at full pace) has nothing to adapt."""
        state = self._hosts.get(host)
        if state is None:
            return None
        change = state.pace.answer(seconds, self._clock(), self.rules, self._jitter)
        if isinstance(change, Slowed):
            state.next_time = max(state.next_time, state.pace.resume)
            self._update(host, state)
        elif isinstance(change, Eased) or (isinstance(change, Recovered) and change.eased):
            self._changed(host, state)   # one more request in flight: the host may start another now
        return change

    def answered(self, host: str, seconds: float) -> bool:
        """``host`` answered in ``seconds``: count a good answer (gradual recovery), or, when the
        answer was far slower than the host's usual, slow it down. Returns True if it was slow."""
        return isinstance(self.note_answer(host, seconds), Slowed)

    def responded(self, host: str) -> None:
        """``host`` answered (a good page, or a response that failed on our rules: too large, a
        redirect loop): it is up, whatever its other URLs do."""
        state = self._hosts.get(host)
        if state is not None:
            state.pace.respond()

    def answers(self, host: str) -> int:
        """How many good answers ``host`` has given: noted when a request starts, so that when it fails,
        ``answered_since`` tells whether the host answered others meanwhile."""
        state = self._hosts.get(host)
        return state.pace.answers if state is not None else 0

    def answered_since(self, host: str, answers: int) -> bool:
        """Whether ``host`` gave a good answer since it had given ``answers`` (``answers(host)`` when a
        request started; the host is not forgotten while the request is in flight). A request that
        failed meanwhile failed on its own URL: the host answers."""
        state = self._hosts.get(host)
        return state is not None and state.pace.answers > answers

    def parked_beyond(self, horizon: float) -> bool:
        """Whether every host with work is parked until after ``horizon``, with nothing in flight:
        the run has nothing to do but wait out those parks. (Costs a pass over the busy hosts: ask
        only when nothing is in flight.)"""
        return all(not (state := self._hosts[host]).active and state.pace.parked_until > horizon for host in self.busy)

    def adapted(self, host: str) -> bool:
        """Whether ``host`` runs below its configured pace now (a forgotten host does not)."""
        state = self._hosts.get(host)
        return state is not None and state.pace.adapted

    def pace(self, host: str) -> tuple[int, float, float]:
        """(requests in flight allowed, seconds between request starts, parked until) of ``host`` now."""
        state = self._hosts.get(host)
        if state is None:
            return self.per_host, self.delay, 0.0
        return state.limit(self.per_host), state.delay + state.pace.backoff, state.pace.parked_until

    def give_back(self, host: str) -> list[FrontierItem]:
        """Empty ``host``'s queue here and return its URLs, for the frontier to take back: the host
        leases them again when it is next ready (a host parked a while holds no leases meanwhile)."""
        state = self._host(host)
        dropped = state.drop()
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
        self._changed(host, state)
        return dropped

    def release(self, host: str) -> None:
        """A request to ``host`` is over; its slot is free again."""
        state = self._hosts[host]
        state.finish(self._clock())
        self._changed(host, state)

    # -- the next request ---------------------------------------------------------------------------

    def take_ready(self) -> tuple[str, FrontierItem] | Wanted | float | None:
        """A ready (host, item); or a ready host to lease for (``Wanted``); else the earliest time a
        host will be ready; else None (nothing can start until a request ends or work arrives).

        Hosts whose time has come take turns (``_Turns.ready``): the slowest requests first, then by
        the time they became ready (round robin). A host whose requests take seconds needs the most
        time for its own URLs whatever else happens, so its slot is filled as soon as it is free: it
        keeps ``per_host`` requests in flight and finishes as early as it can, instead of waiting
        its turn behind a thousand hosts that answer in milliseconds and ending last. What it takes
        is a few global permits, not CPU: the fast hosts go no slower."""
        now = self._clock()
        for host, state in self._turns.ready(now, self._hosts):
            limit = state.limit(self.per_host)
            if state.parked or state.active >= limit or state.next_time > now:
                self._update(host, state)
                continue
            item = state.pick(now, limit)
            if item == "lease":
                return Wanted(host, state.offers)
            if item is None:
                self._update(host, state)   # back in the heap at its first retry's time
                continue
            self.size -= 1
            state.start(now, self.per_host)
            self._update(host, state)
            return host, item
        return self._turns.earliest(self._hosts)
