"""The shared frontier: one job's queue in Redis, leased by any number of workers on any machines.

Every worker that opens the same Redis URL and job NAME shares the job. Its keys all start with
``crawler:{NAME}:`` (the braces are a Redis Cluster hash tag: one job, one slot):

    seen        HASH  fingerprint (12 bytes of BLAKE2b of the URL) → "e" excluded, "q" queued or
                      leased, or the fencing token of the lease that completed it (done)
    q:HOST      LIST  the host's queue, oldest first: "ID DEPTH URL"
    heads       ZSET  hosts with queued URLs, scored by the ID at the head of their queue
    leased      HASH  ID → [token, worker, host, entry] of every URL out on lease
    expiry      ZSET  ID → when its lease expires (Redis time, ms)
    w:WORKER    SET   the IDs a worker holds, for ``release()`` of its own leases
    h:HOST      HASH  inflight, next (earliest next lease, ms), fetched, delay, state, until, error
    parked      ZSET  parked hosts, scored by the end of their parking (ms)
    spent       SET   hosts whose ``host_budget`` is reached
    hosts       SET   every host ever queued (for ``stats``)
    ids, tokens       counters: the job-wide URL ids, the lease attempt ids (fencing tokens)
    n           HASH  queued, done, refused, reclaimed
    workers     SET   every worker that ever leased; alive:WORKER is its heartbeat, with a TTL
    seed_hosts  SET   the job's seed hosts: its scope
    job         STRING  the job's marker, a random id set when the job is created (``join``)

A done URL costs one field of ``seen`` and nothing else (about 60 bytes; see the tests). Every
change is one Lua script of ``redis_scripts`` (atomic), and every script is safe to run twice, so
a command whose reply was lost is retried: a repeated ``lease`` strands its URLs only until their
lease expires.

A worker that has joined the job passes the marker it found to every script, which refuses with
``NOJOB`` when Redis holds another (or none): a Redis restarted without persistence has lost the
job, and its empty queue must not read as "finished" (``redis_link.JobLost``). Before joining (and
in the contract suite, which never joins) the scripts do not check.

Time is Redis's (``TIME`` inside the scripts), so workers whose clocks differ still agree on
leases and delays. An expired lease goes back to the head of its host's queue lazily: each
``lease``, ``hosts_with_work`` and ``reclaim`` call returns up to 1,000 of them first.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError, ResponseError

from crawler.errors import UsageError
from crawler.frontier import NewURL, Outage
from crawler.frontier import redis_scripts as lua
from crawler.frontier.redis_link import NO_JOB, BoundedRetry, RedisLink, again_for_lost_scripts
from crawler.frontier.redis_stats import JobStats, read_parked_work, read_stats
from crawler.models import FrontierItem


class RedisUnavailable(UsageError):
    """The Redis server of ``--frontier`` cannot be reached when the crawl starts (exit code 2)."""


class RecrawlUnsupported(UsageError):
    """A recrawl asked of a Redis frontier: done URLs keep only their fingerprint, so they cannot be
    queued again; a new job NAME crawls afresh."""


_CHUNK = 1000   # URLs per script call: a long script blocks every other client of the server


def fingerprint(url: str) -> bytes:
    """The seen set's key for a URL: 96 bits, so a job of a billion URLs has one chance in ~10^11
    of two URLs colliding (the second would be taken as seen)."""
    return hashlib.blake2b(url.encode(), digest_size=12).digest()


def _address(url: str) -> str:
    """The Redis URL without its password, for messages."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def _add(client: aioredis.Redis, script: AsyncScript, prefix: str, marker: str, urls: Sequence[NewURL]) -> int:
    """Add ``urls`` through the add script, in one pipeline; how many were new."""
    async with client.pipeline(transaction=False) as pipe:
        for chunk in _chunks(urls):
            args: list[str | bytes | int] = []
            for u in chunk:
                args += [fingerprint(u.url), u.host, u.depth, u.url, "0" if u.exclusion is None else "1"]
            await script([prefix], [marker, *args], client=pipe)
        return sum(int(n) for n in await pipe.execute())


class RedisFrontier:
    """``Frontier`` over Redis, shared by every worker of job ``job`` at ``url``; ``worker`` names
    this one (stable across its restarts, so ``release()`` at start takes back what it held).

    Job-wide limits (every worker must pass the same): ``per_host`` URLs of a host leased and not
    acknowledged at once (0: no limit), ``delay`` seconds at least between two leases of a host
    (then each lease of a host is one URL), ``host_budget`` URLs fetched per host (0: none).
    A lease expires ``lease_seconds`` after it is taken or renewed. Redis lost or silent (a lost
    connection, a server that never answers) is retried with backoff for ``retry_for`` seconds in
    all, each attempt waiting up to 5 s, before every operation raises ``StorageError``
    (``redis_link``); ``on_outage`` hears when such an outage starts and ends.

    Open it with ``async with``; leaving does not release this worker's leases (``release()`` does).
    """

    def __init__(self, url: str, job: str, worker: str, *, lease_seconds: float = 60.0, per_host: int = 0,
                 delay: float = 0.0, host_budget: int = 0, retry_for: float = 16.0,
                 on_outage: Callable[[Outage | None], None] = lambda outage: None) -> None:
        self.url, self.job, self.worker = url, job, worker
        self.address = _address(url)
        self.lease_ms = max(1, round(lease_seconds * 1000))
        self.per_host, self.delay_ms, self.host_budget = per_host, round(delay * 1000), host_budget
        # At least three attempts fit in the bound: a reply slower than 5 s is a Redis in trouble.
        self._retry = BoundedRetry(f"Redis at {self.address}", retry_for, min(5.0, retry_for / 3), on_outage)
        self._link = RedisLink(self.address, job, self._retry)
        self._marker = ""   # the job's marker, once joined: the scripts check that Redis still holds it
        self.refused = 0   # this worker's acknowledgements and releases refused for a stale token
        self.prefix = f"crawler:{{{job}}}:"
        self._client: aioredis.Redis | None = None

    # -- opening and closing ----------------------------------------------------------------------

    async def __aenter__(self) -> RedisFrontier:
        attempt = self._retry.attempt
        client = aioredis.Redis.from_url(self.url, socket_timeout=attempt, socket_connect_timeout=attempt,
                                         retry=Retry(NoBackoff(), 0))
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.aclose()
            reason = str(exc).rpartition(". ")[2] or type(exc).__name__
            raise RedisUnavailable(f"cannot reach the Redis frontier at {self.address}: {reason}") from None
        # From now on a lost connection is retried with backoff before it becomes a StorageError:
        # every script is safe to run again (the module docstring says why).
        client.set_retry(self._retry)
        self._client = client
        self._add, self._lease = client.register_script(lua.ADD), client.register_script(lua.LEASE)
        self._ack, self._release = client.register_script(lua.ACK), client.register_script(lua.RELEASE)
        self._renew, self._hosts = client.register_script(lua.RENEW), client.register_script(lua.HOSTS_WITH_WORK)
        self._reclaim, self._park = client.register_script(lua.RECLAIM), client.register_script(lua.PARK)
        self._exclude, self._idle = client.register_script(lua.EXCLUDE), client.register_script(lua.IDLE)
        self._join = client.register_script(lua.JOIN)
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.set_retry(Retry(NoBackoff(), 0))   # a goodbye is not worth waiting for
            if self._retry.given_up is None:          # nor one to a Redis that does not answer
                with contextlib.suppress(RedisError, OSError):
                    await client.delete(self._key("alive:" + self.worker))   # gone; its leases stay until they expire
            await client.aclose()

    @property
    def client(self) -> aioredis.Redis:
        if self._client is None:
            raise RuntimeError("RedisFrontier used outside `async with`")
        return self._client

    def _key(self, name: str) -> str:
        return self.prefix + name

    # -- the Frontier protocol --------------------------------------------------------------------

    async def add(self, urls: Sequence[NewURL]) -> int:
        if not urls:
            return 0
        with self._link.errors("add URLs to"):
            return await again_for_lost_scripts(lambda: _add(self.client, self._add, self.prefix, self._marker, urls))

    async def lease(self, limit: int, host: str | None = None) -> list[FrontierItem]:
        """Up to ``limit`` URLs (of ``host`` only, if given), oldest first, as the job-wide limits
        allow now: a host at ``per_host`` leases or within ``delay`` of its last lease gives none."""
        if limit <= 0:
            return []
        with self._link.errors("lease URLs from"):
            out = await self._lease([self.prefix], [self._marker, self.worker, limit, host or "", self.lease_ms, self.per_host,
                                                    self.delay_ms, self.host_budget, self.lease_ms])
        items = []
        for i in range(0, len(out), 3):
            ident, depth, url = _text(out[i + 2]).split(" ", 2)
            items.append(FrontierItem(int(ident), url, int(depth), host=_text(out[i + 1]), token=int(out[i])))
        return items

    async def ack(self, items: Sequence[FrontierItem]) -> None:
        await self.ack_fenced(items)

    async def ack_fenced(self, items: Sequence[FrontierItem]) -> list[FrontierItem]:
        """``ack``, returning the items refused: their lease expired and the URL was leased again
        (or done) by another attempt, whose result counts instead. Acknowledging an item twice is
        not a refusal; a late acknowledgement of a URL that nobody leased again is accepted."""
        refused: list[FrontierItem] = []
        with self._link.errors("acknowledge URLs in"):
            for chunk in _chunks(items):
                args: list[str | bytes | int] = [self.host_budget]
                for i in chunk:
                    args += [i.id, str(i.token), fingerprint(i.url), i.host, f"{i.id} {i.depth} {i.url}"]
                stale = {int(n) for n in await self._ack([self.prefix], [self._marker, *args])}
                refused += [i for i in chunk if i.id in stale]
        self.refused += len(refused)
        return refused

    async def exclude(self, items: Sequence[tuple[FrontierItem, str, str | None]]) -> None:
        """Leased URLs ruled out at their visit (robots.txt read only then): their leases end and
        they are excluded (the shared frontier keeps no reasons; the worker's job file has them)."""
        with self._link.errors("exclude URLs in"):
            for chunk in _chunks(items):
                args: list[str | bytes | int] = []
                for item, _, _ in chunk:
                    args += [item.id, str(item.token), fingerprint(item.url)]
                await self._exclude([self.prefix], [self._marker, *args])

    async def back_off(self, host: str, reason: str | None) -> None:
        """Record (or with None clear) that a worker slowed ``host`` down, for ``stats --frontier``."""
        key = self._key("h:" + host)
        with self._link.errors("record a host's pace in"):
            if reason is None:
                await self.client.hdel(key, "backoff")
            else:
                await self.client.hset(key, "backoff", reason)

    async def release(self, items: Sequence[FrontierItem] | None = None) -> int:
        """Put leased URLs back at the head of their hosts' queues: these (a stale token is refused
        and counted in ``refused``), or with None every lease this worker holds. Returns how many."""
        released = 0
        with self._link.errors("release URLs in"):
            if items is None:
                released, _ = await self._release([self.prefix], [self._marker, self.worker])
            else:
                for chunk in _chunks(items):
                    args: list[str | int] = [self.worker]
                    for i in chunk:
                        args += [i.id, str(i.token)]
                    done, refused = await self._release([self.prefix], [self._marker, *args])
                    released += int(done)
                    self.refused += int(refused)
        return int(released)

    async def requeue(self, urls: Sequence[str]) -> int:
        raise RecrawlUnsupported(f"a recrawl is not supported with the Redis frontier ({self.address}, job "
                                 f"{self.job}): start a new job name to crawl again")

    async def hosts_with_work(self) -> list[str]:
        with self._link.errors("read"):
            return [_text(h) for h in await self._hosts([self.prefix], [self._marker])]

    async def park(self, host: str, until: str, error: str) -> None:
        until_ms = round(datetime.fromisoformat(until).timestamp() * 1000)
        with self._link.errors("park a host in"):
            await self._park([self.prefix], [self._marker, host, until_ms, until, error])

    async def parked_work(self) -> tuple[int, int, str | None]:
        with self._link.errors("read"):
            return await read_parked_work(self.client, self.prefix)

    async def pending(self) -> int:
        queued, leased = await self._counts()
        return queued + leased

    # -- beyond the protocol ----------------------------------------------------------------------

    async def idle(self, wait: float = 0.0) -> bool:
        """Whether this run of the job is over: no lease is out (expired or not) and the only URLs
        queued are those of hosts parked for more than ``wait`` seconds yet (they wait for a later
        run, as parked hosts do in a job file)."""
        with self._link.errors("read"):
            return bool(await self._idle([self.prefix], [self._marker, round(wait * 1000)]))

    async def renew(self, items: Sequence[FrontierItem]) -> list[FrontierItem]:
        """Extend the leases of ``items`` to ``lease_seconds`` from now, and beat this worker's
        heartbeat. Returns the items whose lease is lost (expired and leased again, or done): their
        acknowledgement will be refused."""
        lost: set[int] = set()
        with self._link.errors("renew leases in"):
            for chunk in _chunks(items) if items else [()]:
                args: list[str | int] = [self.worker, self.lease_ms, self.lease_ms]
                for i in chunk:
                    args += [i.id, str(i.token)]
                lost |= {int(n) for n in await self._renew([self.prefix], [self._marker, *args])}
        return [i for i in items if i.id in lost]

    async def reclaim(self) -> int:
        """Put up to 1,000 expired leases back in their hosts' queues now; returns how many. (Leasing
        does it too, lazily: nobody needs to call this for the job to go on.)"""
        with self._link.errors("reclaim leases in"):
            return int(await self._reclaim([self.prefix], [self._marker]))

    async def set_delay(self, host: str, seconds: float) -> None:
        """Raise ``host``'s delay between leases for the whole job (robots.txt Crawl-delay); never
        below the configured ``delay``."""
        with self._link.errors("set a delay in"):
            await self.client.hset(self._key("h:" + host), "delay", round(seconds * 1000))

    async def join(self, seed_hosts: Iterable[str] = ()) -> set[str]:
        """Join the job: add ``seed_hosts`` to its scope, creating it (its marker) if it has none;
        returns its seed hosts, shared by every worker (none: nobody has started the job yet). From
        the first join that finds the job, every script checks that Redis still holds it."""
        with self._link.errors("join the job in"):
            marker, hosts = await self._join([self.prefix], [self._marker, secrets.token_hex(8), *seed_hosts])
        if marker:
            self._marker = _text(marker)
        return {_text(h) for h in hosts}

    async def workers_alive(self) -> int:
        """Workers whose heartbeat (``renew``, ``lease``) is younger than a lease."""
        c = self.client
        with self._link.errors("read"):
            workers = await c.smembers(self._key("workers"))
            if not workers:
                return 0
            return int(await c.exists(*(self._key("alive:" + _text(w)) for w in workers)))

    async def started(self) -> bool:
        """Whether the job exists: some worker has added URLs to it."""
        with self._link.errors("read"):
            return bool(await self.client.exists(self._key("seen")))

    async def _counts(self) -> tuple[int, int]:
        with self._link.errors("read"):
            async with self.client.pipeline(transaction=True) as pipe:   # one snapshot: a URL in passage counts once
                pipe.hget(self._key("n"), "queued")
                pipe.hlen(self._key("leased"))
                pipe.get(self._key("job"))
                queued, leased, marker = await pipe.execute()
            if self._marker and (marker is None or _text(marker) != self._marker):
                raise ResponseError(f"{NO_JOB} no job here")   # empty, not done: the boundary says so
        return int(queued or 0), int(leased)

    async def stats(self) -> JobStats:
        """The job as every worker shares it: counts, workers alive, and every host's state."""
        with self._link.errors("read"):
            return await read_stats(self.client, self.prefix)
