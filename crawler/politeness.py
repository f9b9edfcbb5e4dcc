"""Politeness: a queue per host, a per-host limit of requests in flight, a delay between them, and
the order in which hosts take turns.

Hosts become ready by time: a heap of (ready time, turn, host) holds every host that could start a
request (it has a URL queued here, or the frontier may hold more of its URLs, and it is under its
limit), so choosing the next URL costs O(log hosts) however many hosts wait, and equal times are
served in turn (round robin). A host at its limit, in its delay or in a backoff holds no global
permit and no lease buffer: its URLs stay in the frontier until it is ready and its queue here is
empty, and then the scheduler leases a few (``Wanted``).

The scheduler asks ``take_ready()`` for a URL whose host may be contacted *now*, and only then
takes a global permit, so a URL waiting for its host never holds a global slot (Crawlee's bug
#2176 is exactly that mistake). ``release`` returns the host slot as soon as the response is in.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from crawler.models import FrontierItem


@dataclass(slots=True)
class _Host:
    queue: deque[FrontierItem] = field(default_factory=deque)
    active: int = 0
    next_time: float = 0.0     # earliest start of the next request
    delay: float = 0.0         # least time between two request starts
    last_start: float = float("-inf")
    known: bool = True         # False until the host's robots.txt has been read: one request at a time
    more: bool = False         # the frontier may hold more of its URLs
    offers: int = 0            # times the frontier said so: a lease that raced with an offer proves nothing
    parked: bool = False       # unreachable: no more requests in this run
    scheduled: float | None = None   # its entry's time in the ready heap (None: not in it)


@dataclass(frozen=True, slots=True)
class Wanted:
    """A host that is ready, with nothing queued here: lease its next URLs from the frontier."""

    host: str
    offers: int


class HostPool:
    """URLs waiting to be fetched, grouped by host, handed out as hosts become ready."""

    def __init__(self, per_host: int, delay: float, on_change: Callable[[], None] = lambda: None,
                 clock: Callable[[], float] = time.monotonic, *, probe_first: bool = False) -> None:
        self.per_host = per_host
        self.delay = delay
        # With probe_first, a new host gets one request until ``learn`` is called (after its
        # robots.txt is read), so a Crawl-delay applies before a burst of per_host requests.
        self.probe_first = probe_first
        self._clock = clock
        self._hosts: dict[str, _Host] = {}
        self._heap: list[tuple[float, int, str]] = []
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
        return self.per_host if state.known else 1

    def _update(self, host: str, state: _Host) -> None:
        """Put the host in the heap if it could start a request, keep ``busy``/``active`` right, and
        forget a host with nothing left whose state is the default: memory follows hosts in use."""
        has_work = bool(state.queue) or state.more
        if has_work and not state.parked and state.active < self._limit(state):
            when = state.next_time
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
                and state.delay == self.delay and state.known):
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

    def push(self, host: str, item: FrontierItem, *, first: bool = False) -> None:
        """Queue one URL of ``host``; ``first`` puts it at the head (a retry keeps its turn)."""
        state = self._host(host)
        if first:
            state.queue.appendleft(item)
        else:
            state.queue.append(item)
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

    def defer(self, host: str, seconds: float) -> None:
        """No request to ``host`` for ``seconds`` (backoff after 429/5xx/timeouts, Retry-After)."""
        state = self._host(host)
        state.next_time = max(state.next_time, self._clock() + seconds)
        self._update(host, state)

    def park(self, host: str) -> list[FrontierItem]:
        """``host`` is unreachable: no more requests to it in this run. Returns the URLs that were
        queued here, for the frontier to take back."""
        state = self._host(host)
        state.parked = True
        state.more = False
        dropped = list(state.queue)
        state.queue.clear()
        self.size -= len(dropped)
        self._update(host, state)
        self._on_change()
        return dropped

    def release(self, host: str) -> None:
        """A request to ``host`` is over; its slot is free again."""
        state = self._hosts[host]
        state.active -= 1
        self._update(host, state)
        self._on_change()

    # -- the next request ---------------------------------------------------------------------------

    def take_ready(self) -> tuple[str, FrontierItem] | Wanted | float | None:
        """A ready (host, item); or a ready host to lease for (``Wanted``); else the earliest time a
        host will be ready; else None (nothing can start until a request ends or work arrives)."""
        now = self._clock()
        heap = self._heap
        while heap:
            when, _, host = heap[0]
            state = self._hosts.get(host)
            if state is None or state.scheduled != when:
                heapq.heappop(heap)   # stale: the host was rescheduled, taken or forgotten since
                continue
            if when > now:
                return when
            heapq.heappop(heap)
            state.scheduled = None
            if state.parked or state.active >= self._limit(state):
                self._update(host, state)
                continue
            if not state.queue:
                if state.more:
                    return Wanted(host, state.offers)
                self._update(host, state)
                continue
            item = state.queue.popleft()
            self.size -= 1
            state.active += 1
            state.last_start = now
            state.next_time = now + state.delay
            self._update(host, state)
            return host, item
        return None
