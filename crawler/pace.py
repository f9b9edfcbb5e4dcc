"""One host's adaptive pace, as a pure value that reports what changed.

A 429 or 503, a timeout or a response much slower than the host's usual is strain: it halves the
host's limit of requests in flight and doubles an extra delay (up to ``backoff_max``, each wait
jittered by 0.5x-1.5x so hosts that failed together do not come back together), and a
``Retry-After`` is a floor on the next wait. Each good answer shortens the extra delay by 30% and
every three give back one request in flight, so a host recovers gradually.

A failing URL is that URL's failure, not its host's, as long as the host answers others: only
failures across ``park_after`` *distinct* URLs with no good answer between them (any failure: a
reset, a timeout, a 500 too) park the host for ``park_time`` seconds, rather than retries in a
tight loop. The retries of one hanging URL never add up to a park.

``Pace`` does no I/O and reads no clock (h11's "bring your own I/O"): each method takes ``now``,
and a ``jitter`` to draw from where strain adds a wait. Each returns what changed (``Slowed``,
``Parked``, ``Eased``, ``Recovered``) or None, so its owner (``politeness.HostPool``) acts on the
change instead of diffing the state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# Each good answer shortens the extra delay by RECOVER_FACTOR, and every RECOVER_AFTER good answers
# in a row give back one request in flight; a response slower than SLOW_FACTOR times the host's
# usual (and SLOW_FLOOR seconds at least) counts as strain.
RECOVER_AFTER = 3
RECOVER_FACTOR = 0.7
SLOW_FACTOR = 4.0
SLOW_FLOOR = 1.0


@dataclass(frozen=True, slots=True)
class PaceRules:
    """The configured pace every host starts at, and how far adapting it may go."""

    per_host: int              # requests in flight at full pace
    delay: float = 0.0         # the configured delay between starts: the least extra delay strain adds
    backoff_max: float = 60.0  # the longest extra delay
    park_after: int = 5        # distinct failing URLs in a row that park a host (0: never)
    park_time: float = 120.0   # how long a park lasts, seconds


@dataclass(frozen=True, slots=True)
class Slowed:
    """Strain slowed the host: ``limit`` requests in flight at most, ``backoff`` extra seconds
    between two request starts."""

    limit: int
    backoff: float


@dataclass(frozen=True, slots=True)
class Parked:
    """Failures across ``park_after`` distinct URLs in a row: the host is parked until ``until``."""

    until: float


@dataclass(frozen=True, slots=True)
class Eased:
    """A step of recovery (every ``RECOVER_AFTER`` good answers): one more request in flight, up
    to ``limit``, and ``backoff`` extra seconds between starts. The host is still below its pace."""

    limit: int
    backoff: float


@dataclass(frozen=True, slots=True)
class Recovered:
    """The host is back at its configured pace. ``eased``: on a step of recovery (its limit may have
    risen), rather than only because its extra delay wore off or its park ended."""

    eased: bool = False


Change = Slowed | Parked | Eased | Recovered


@dataclass(slots=True)
class Pace:
    """How one host is paced now, against ``PaceRules``: its own limit, extra delay, failing URLs."""

    cap: int = 0               # requests in flight it may have now (0: the rules' per_host)
    backoff: float = 0.0       # extra seconds between two request starts
    failing: list[str] = field(default_factory=list)   # distinct URLs that failed since the last good answer
    answers: int = 0           # good answers so far (a request notes it when it starts)
    good: int = 0              # good answers since the last change of cap or backoff
    latency: float = 0.0       # moving average of response times, seconds (0: none yet)
    usual: float = 0.0         # the lowest that average has been: the host's usual speed
    parked_until: float = 0.0  # parked for a while (failing): no request before this time
    resume: float = 0.0        # no request before this time: a Retry-After, strain's wait, a park

    @property
    def adapted(self) -> bool:
        """The host runs below its configured pace (fewer requests in flight or a longer delay)."""
        return bool(self.cap or self.backoff or self.parked_until)

    @property
    def settled(self) -> bool:
        """At full pace with no URL failing: nothing worth remembering."""
        return not self.adapted and not self.failing

    def limit(self, per_host: int) -> int:
        """Requests in flight allowed now, out of ``per_host``."""
        return min(per_host, self.cap) if self.cap else per_host

    def fail(self, now: float, rules: PaceRules, jitter: Callable[[], float], *, strain: bool = True,
             url: str | None = None, retry_after: float | None = None) -> Slowed | Parked | None:
        """A request failed. With ``strain`` (429, 503, a timeout, a slow answer): fewer requests in
        flight, a longer delay, waited out for ``jitter()`` times the delay (a draw in 0.5-1.5);
        without it (a reset, a 500), nothing slows. A ``retry_after`` (seconds, already capped) is
        waited out. A failure names its ``url``, unless the host answered others meanwhile: when
        ``park_after`` distinct URLs have failed with no good answer between them, the host parks."""
        self.good = 0
        wait = 0.0
        if strain:
            self.cap = max(1, (self.cap or rules.per_host) // 2)
            self.backoff = min(rules.backoff_max, max(0.5, self.backoff * 2, rules.delay))
            wait = self.backoff * jitter()
        if retry_after is not None:
            wait = max(wait, retry_after)
        if url is not None and url not in self.failing:
            self.failing.append(url)
        if rules.park_after and len(self.failing) >= rules.park_after:
            self.parked_until = now + max(rules.park_time, wait)
            self.failing.clear()   # after the pause the host gets a fresh run of chances
            self.resume = max(self.resume, now + rules.park_time)
            return Parked(self.parked_until)
        self.resume = max(self.resume, now + wait)
        return Slowed(self.limit(rules.per_host), self.backoff) if strain else None

    def respond(self) -> None:
        """The host answered (a good page, or a response that failed on our rules): it is up,
        whatever its other URLs do."""
        self.failing.clear()
        self.answers += 1

    def answer(self, seconds: float, now: float, rules: PaceRules, jitter: Callable[[], float]) -> Change | None:
        """The host answered in ``seconds``: a good answer (gradual recovery), or, when it was far
        slower than the host's usual, strain (``Slowed``; never a park: it names no URL)."""
        self.respond()
        was_adapted = self.adapted
        self.parked_until = 0.0
        average = seconds if not self.latency else 0.7 * self.latency + 0.3 * seconds
        self.latency = average
        self.usual = average if not self.usual else min(self.usual, average)
        if average > max(SLOW_FLOOR, SLOW_FACTOR * self.usual):
            self.usual = average   # the new usual: slowed once per rise, not on every answer after it
            return self.fail(now, rules, jitter)
        if not self.adapted:
            return Recovered() if was_adapted else None
        self.good += 1
        self.backoff = 0.0 if self.backoff < 0.05 else self.backoff * RECOVER_FACTOR
        eased = self.good >= RECOVER_AFTER
        if eased:
            self.good = 0
            self.cap = 0 if not self.cap or self.cap + 1 >= rules.per_host else self.cap + 1
        if not self.adapted:
            return Recovered(eased)
        return Eased(self.limit(rules.per_host), self.backoff) if eased else None
