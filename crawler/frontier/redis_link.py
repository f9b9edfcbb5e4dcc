"""How the Redis frontier talks to Redis: retries bounded in time, and one boundary for redis-py.

A lost connection is retried with backoff (redis-py reconnects), and so is a server that accepts
connections and never answers (hung, or stopped with SIGSTOP): each attempt waits at most
``attempt`` seconds for its reply. What is bounded is the outage, not each command: counted from
the start of the first attempt that failed, no attempt starts that could end more than ``within``
seconds later, so every operation waiting on Redis (the writer's, the lease renewal's, the
dispatcher's) has failed by then, and the crawl stops within ``within`` of Redis going quiet.
An operation that gets its answer ends the outage.

Errors leave the boundary (``RedisLink.errors``) as ``StorageError``s that name the server:
``RedisSilent`` when the outage outlasted its bound, ``JobLost`` when Redis answers but no longer
holds the job (restarted without persistence, or flushed: its scripts refuse with ``NOJOB``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError

from crawler.errors import StorageError
from crawler.frontier import Outage

T = TypeVar("T")

NO_JOB = "NOJOB"   # the error a script returns when the job's marker is not the one this worker joined


class JobLost(StorageError):
    """Redis answers but no longer holds the job this worker joined (restarted without persistence,
    or flushed): its queue and seen set are gone, and an empty frontier would read as "finished"."""


class RedisSilent(StorageError):
    """Redis did not answer (refused, reset, or accepted and never replied) for the whole retry bound."""


class BoundedRetry(Retry):
    """redis-py's ``Retry``, bounded by the time Redis has been failing rather than by a count; one
    object for every connection of a client, so that the outage is the client's. ``report`` hears
    when an outage starts (an ``Outage``) and when it ends (None)."""

    def __init__(self, server: str, within: float, attempt: float, report: Callable[[Outage | None], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(ExponentialWithJitterBackoff(base=0.25, cap=4.0), 0)
        self.server, self.within, self.attempt = server, within, attempt
        self._report, self.clock = report, clock
        self.since: float | None = None      # when the current outage began
        self.last_error = ""
        self.given_up: str | None = None     # the last error, once the outage outlasted its bound: final

    def __deepcopy__(self, memo: dict[int, Any]) -> BoundedRetry:
        # redis-py deep-copies the retry into every new connection "as it is mutable"; its state is
        # the outage of the whole client, which every connection must share.
        return self

    def _may_try(self) -> None:
        """Raise unless an attempt that starts now would end within the outage's bound."""
        if self.given_up is None and self.since is not None and self.clock() + self.attempt > self.since + self.within:
            self.given_up = self.last_error
        if self.given_up is not None:
            raise RedisConnectionError(self.given_up)

    def answered(self) -> None:
        """An operation got its answer: the outage, if any, is over."""
        if self.since is not None and self.given_up is None:
            self.since = None
            self._report(None)

    async def call_with_retry(self, do: Callable[[], Awaitable[T]], fail: Callable[..., Any],
                              is_retryable: Callable[[Exception], bool] | None = None,
                              with_failure_count: bool = False) -> T:
        failures = 0
        while True:
            self._may_try()
            began = self.clock()
            try:
                return await do()
            except self._supported_errors as error:
                if is_retryable is not None and not is_retryable(error):
                    raise
                failures += 1
                self.last_error = str(error) or type(error).__name__
                await (fail(error, failures) if with_failure_count else fail(error))
                if self.since is None:
                    self.since = began
                    self._report(Outage(self.server, began, self.within))
                pause = self._backoff.compute(failures)
                if self.clock() + pause + self.attempt > self.since + self.within:
                    self.given_up = self.last_error
                    raise
                await asyncio.sleep(pause)


async def again_for_lost_scripts(run: Callable[[], Awaitable[T]]) -> T:
    """``run()``, and once more if Redis knew none of a pipeline's scripts: redis-py loads them before
    it runs the pipeline, and a Redis restarted in between (while the pipeline waited out the outage)
    has lost them. The second run loads them again, and the scripts judge the job (``NOJOB`` if the
    restart lost it). ``run`` must be safe to repeat."""
    try:
        return await run()
    except NoScriptError:
        return await run()


class RedisLink:
    """What the frontier's operations share: the server's address (without its password), the job,
    and the retry policy whose outage they end when they get an answer."""

    def __init__(self, address: str, job: str, retry: BoundedRetry) -> None:
        self.address, self.job, self.retry = address, job, retry

    @contextlib.contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """The one boundary for redis-py: its errors leave as ``StorageError``, naming the server.
        The client has retried a lost connection within the bound by then."""
        try:
            yield
        except ResponseError as exc:
            if NO_JOB in str(exc):   # a pipeline wraps it: "Command # 1 (...) of pipeline caused error: NOJOB ..."
                raise JobLost(f"Redis at {self.address} no longer holds job {self.job!r} (restarted without "
                              "persistence, or flushed): its queue is gone, so the crawl stops; the pages stored "
                              "stay in the job file") from None
            raise self._failed(doing, str(exc)) from None
        except RedisError as exc:
            retry = self.retry
            if retry.given_up is not None and retry.since is not None:
                raise RedisSilent(f"Redis at {self.address} has not answered for {retry.clock() - retry.since:.0f} s "
                                  f"({retry.given_up}; retried up to {retry.within:g} s): the crawl stops; the pages "
                                  "stored stay in the job file") from None
            raise self._failed(doing, str(exc) or type(exc).__name__) from None
        except OSError as exc:
            raise self._failed(doing, exc.strerror or str(exc)) from None
        self.retry.answered()

    def _failed(self, doing: str, reason: str) -> StorageError:
        return StorageError(f"cannot {doing} the Redis frontier at {self.address}: {reason}")
