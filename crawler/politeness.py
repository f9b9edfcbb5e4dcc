"""Politeness: per-host queues, a per-host limit of requests in flight, and a delay between them.

The scheduler asks ``HostPool.take_ready()`` for a URL whose host may be contacted *now*, and only then
takes a global permit, so a URL waiting for its host never holds a global slot (Crawlee's bug
#2176 is exactly that mistake). ``release`` returns the host slot as soon as the response is in.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
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
        # Hosts with queued URLs, in round-robin order: the one served last goes to the back.
        self._waiting: OrderedDict[str, None] = OrderedDict()
        self._on_change = on_change   # wakes the dispatcher: a URL arrived or a slot came free
        self.size = 0

    def _host(self, host: str) -> _Host:
        state = self._hosts.get(host)
        if state is None:
            state = self._hosts[host] = _Host(delay=self.delay, known=not self.probe_first)
        return state

    def push(self, host: str, item: FrontierItem) -> None:
        self._host(host).queue.append(item)
        self._waiting[host] = None
        self.size += 1
        self._on_change()

    def set_delay(self, host: str, seconds: float) -> None:
        """Raise a host's delay (robots.txt Crawl-delay); never lowers the configured one. It counts
        from the last request already started."""
        state = self._host(host)
        state.delay = max(self.delay, seconds)
        state.next_time = max(state.next_time, state.last_start + state.delay)

    def learn(self, host: str, crawl_delay: float | None) -> None:
        """The host's rules are known: lift the one-request probe, apply its Crawl-delay."""
        state = self._host(host)
        if crawl_delay:
            self.set_delay(host, crawl_delay)
        if not state.known:
            state.known = True
            self._on_change()

    def defer(self, host: str, seconds: float) -> None:
        """No request to ``host`` for ``seconds`` (backoff after 429/5xx/timeouts, Retry-After)."""
        state = self._host(host)
        state.next_time = max(state.next_time, self._clock() + seconds)

    def release(self, host: str) -> None:
        """A request to ``host`` is over; its slot is free again."""
        state = self._hosts[host]
        state.active -= 1
        if (not state.queue and state.active == 0 and state.next_time <= self._clock()
                and state.delay == self.delay and state.known):
            del self._hosts[host]  # forget idle hosts: memory follows hosts in use, not hosts seen
        self._on_change()

    def take_ready(self) -> tuple[str, FrontierItem] | float | None:
        """A ready (host, item), else the earliest time one will be ready, else None (must wait)."""
        now = self._clock()
        soonest: float | None = None
        for host in self._waiting:
            state = self._hosts[host]
            if state.active >= (self.per_host if state.known else 1):
                continue
            if state.next_time > now:
                soonest = state.next_time if soonest is None else min(soonest, state.next_time)
                continue
            item = state.queue.popleft()
            state.active += 1
            state.last_start = now
            state.next_time = now + state.delay
            if state.queue:
                self._waiting.move_to_end(host)
            else:
                del self._waiting[host]
            self.size -= 1
            return host, item
        return soonest
