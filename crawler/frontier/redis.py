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

A done URL costs one field of ``seen`` and nothing else (about 70 bytes; see the tests). Every
change is one Lua script (atomic), and every script is safe to run twice, so a command whose reply
was lost is retried: a repeated ``lease`` strands its URLs only until their lease expires.

Time is Redis's (``TIME`` inside the scripts), so workers whose clocks differ still agree on
leases and delays. An expired lease goes back to the head of its host's queue lazily: each
``lease``, ``hosts_with_work`` and ``reclaim`` call returns up to 1,000 of them first.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.exceptions import RedisError

from crawler.errors import StorageError, UsageError
from crawler.frontier import NewURL
from crawler.models import FrontierItem


class RedisUnavailable(UsageError):
    """The Redis server of ``--frontier`` cannot be reached when the crawl starts (exit code 2)."""


class RecrawlUnsupported(UsageError):
    """A recrawl asked of a Redis frontier: done URLs keep only their fingerprint, so they cannot be
    queued again; a new job NAME crawls afresh."""


HostState = Literal["queued", "leased", "done", "parked", "budget"]


@dataclass(frozen=True, slots=True)
class HostStats:
    host: str
    queued: int
    in_flight: int        # leased and not acknowledged, by any worker
    fetched: int          # acknowledged
    state: HostState
    until: str | None = None   # parked until (ISO 8601 UTC), with the error that parked it
    error: str | None = None


@dataclass(frozen=True, slots=True)
class JobStats:
    """What ``crawler stats --frontier redis://... --job NAME`` shows."""

    queued: int
    leased: int
    done: int
    refused: int          # acknowledgements refused for a stale token (a late worker's result)
    reclaimed: int        # leases that expired and went back to the queue
    workers_alive: int
    hosts: tuple[HostStats, ...]


# --- the scripts --------------------------------------------------------------------------------
# KEYS[1] is the job's key prefix; the scripts build the other names from it (all in one hash slot).

_COMMON = """
local P = KEYS[1]
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function entry_id(entry) return tonumber(string.match(entry, '^(%d+) ')) end
local function set_head(host)
  local head = redis.call('LINDEX', P .. 'q:' .. host, 0)
  if head then redis.call('ZADD', P .. 'heads', entry_id(head), host) else redis.call('ZREM', P .. 'heads', host) end
  return head
end
local function beat(worker, now, ttl)
  redis.call('SADD', P .. 'workers', worker)
  redis.call('SET', P .. 'alive:' .. worker, now, 'PX', ttl)
end
-- End the leases of ``ids`` (those still out) and put their URLs back at the head of their hosts'
-- queues, oldest first, so they keep their turn. Returns how many.
local function unlease(ids)
  local back = {}
  for _, id in ipairs(ids) do
    local raw = redis.call('HGET', P .. 'leased', id)
    if raw then
      local rec = cjson.decode(raw)
      redis.call('HDEL', P .. 'leased', id)
      redis.call('ZREM', P .. 'expiry', id)
      redis.call('SREM', P .. 'w:' .. rec[2], id)
      redis.call('HINCRBY', P .. 'h:' .. rec[3], 'inflight', -1)
      table.insert(back, rec)
    end
  end
  table.sort(back, function(a, b) return entry_id(a[4]) > entry_id(b[4]) end)
  for _, rec in ipairs(back) do
    if redis.call('SISMEMBER', P .. 'spent', rec[3]) == 0 then
      redis.call('LPUSH', P .. 'q:' .. rec[3], rec[4])
      redis.call('ZADD', P .. 'heads', entry_id(rec[4]), rec[3])
      redis.call('HINCRBY', P .. 'n', 'queued', 1)
    end
  end
  return #back
end
local function reclaim(now)
  local expired = redis.call('ZRANGEBYSCORE', P .. 'expiry', '-inf', now, 'LIMIT', 0, 1000)
  local count = unlease(expired)
  if count > 0 then redis.call('HINCRBY', P .. 'n', 'reclaimed', count) end
  return count
end
"""

# ARGV: (fingerprint, host, depth, url, excluded "1"/"0") per URL. Returns how many were queued.
_ADD = _COMMON + """
local queued = 0
for i = 1, #ARGV, 5 do
  local fp, host, depth, url, excluded = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local state = redis.call('HGET', P .. 'seen', fp)
  if excluded == '1' or redis.call('SISMEMBER', P .. 'spent', host) == 1 then
    if not state then redis.call('HSET', P .. 'seen', fp, 'e') end
  elseif not state or state == 'e' then
    -- new, or excluded before and now in bounds (found by a shorter path, or given as a seed)
    local id = redis.call('INCR', P .. 'ids')
    local entry = id .. ' ' .. depth .. ' ' .. url
    if redis.call('RPUSH', P .. 'q:' .. host, entry) == 1 then redis.call('ZADD', P .. 'heads', id, host) end
    redis.call('HSET', P .. 'seen', fp, 'q')
    redis.call('SADD', P .. 'hosts', host)
    queued = queued + 1
  end
end
if queued > 0 then redis.call('HINCRBY', P .. 'n', 'queued', queued) end
return queued
"""

# ARGV: worker, limit, host ('' for any), lease ms, per_host, delay ms, budget, heartbeat ms.
# Returns (token, host, entry) per URL leased.
_LEASE = _COMMON + """
local worker, limit, host = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local lease_ms, per_host, delay_ms, budget = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local now = clock()
reclaim(now)
beat(worker, now, tonumber(ARGV[8]))
-- How many URLs ``h`` may lease now, job-wide, and its delay: with a delay, one URL per lease,
-- and consecutive leases at least the delay apart.
local function allowance(h, want)
  local s = redis.call('HMGET', P .. 'h:' .. h, 'inflight', 'next', 'fetched', 'delay')
  local inflight = tonumber(s[1]) or 0
  local n = want
  if per_host > 0 then n = math.min(n, per_host - inflight) end
  if budget > 0 then n = math.min(n, budget - (tonumber(s[3]) or 0) - inflight) end
  local delay = math.max(delay_ms, tonumber(s[4]) or 0)
  if delay > 0 then
    if now < (tonumber(s[2]) or 0) then return 0, delay end
    n = math.min(n, 1)
  end
  return n, delay
end
local out = {}
-- Lease the head of h's queue; returns the new head (false when the queue is empty now).
local function take(h, delay)
  local entry = redis.call('LPOP', P .. 'q:' .. h)
  local id = string.match(entry, '^(%d+) ')
  local token = redis.call('INCR', P .. 'tokens')
  redis.call('HSET', P .. 'leased', id, cjson.encode({tostring(token), worker, h, entry}))
  redis.call('ZADD', P .. 'expiry', now + lease_ms, id)
  redis.call('SADD', P .. 'w:' .. worker, id)
  redis.call('HINCRBY', P .. 'h:' .. h, 'inflight', 1)
  if delay > 0 then redis.call('HSET', P .. 'h:' .. h, 'next', now + delay) end
  redis.call('HINCRBY', P .. 'n', 'queued', -1)
  table.insert(out, token)
  table.insert(out, h)
  table.insert(out, entry)
  return set_head(h)
end
if host ~= '' then
  local n, delay = allowance(host, limit)
  for _ = 1, n do
    if redis.call('LLEN', P .. 'q:' .. host) == 0 or not take(host, delay) then break end
  end
else
  -- Oldest first across hosts: the oldest ``limit`` URLs that the hosts' limits allow come from
  -- the first ``limit`` eligible hosts in head order; merge their queues by id.
  local cands, offset = {}, 0
  while #cands < limit do
    local page = redis.call('ZRANGE', P .. 'heads', offset, offset + 99, 'WITHSCORES')
    if #page == 0 then break end
    for i = 1, #page, 2 do
      local n, delay = allowance(page[i], limit)
      if n > 0 and #cands < limit then table.insert(cands, {page[i], n, delay, tonumber(page[i + 1])}) end
    end
    offset = offset + 100
  end
  for _ = 1, limit do
    local best = nil
    for _, c in ipairs(cands) do
      if c[2] > 0 and c[4] and (best == nil or c[4] < best[4]) then best = c end
    end
    if best == nil then break end
    local head = take(best[1], best[3])
    best[2] = best[2] - 1
    best[4] = head and entry_id(head) or nil
  end
end
return out
"""

# ARGV: budget, then (id, token, fingerprint, host, entry) per item. Returns the ids refused.
_ACK = _COMMON + """
local budget = tonumber(ARGV[1])
local refused, fetched = {}, {}
for i = 2, #ARGV, 5 do
  local id, token, fp, host, entry = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local raw = redis.call('HGET', P .. 'leased', id)
  local done = false
  if raw then
    local rec = cjson.decode(raw)
    if rec[1] == token then
      redis.call('HDEL', P .. 'leased', id)
      redis.call('ZREM', P .. 'expiry', id)
      redis.call('SREM', P .. 'w:' .. rec[2], id)
      redis.call('HINCRBY', P .. 'h:' .. rec[3], 'inflight', -1)
      done = true
    else
      table.insert(refused, id)   -- leased again, to another attempt: its result will count
    end
  else
    local state = redis.call('HGET', P .. 'seen', fp)
    if state == 'q' and redis.call('LREM', P .. 'q:' .. host, 1, entry) == 1 then
      -- its lease expired and it went back to the queue, but nobody leased it again: take this result
      set_head(host)
      redis.call('HINCRBY', P .. 'n', 'queued', -1)
      done = true
    elseif state ~= token then
      table.insert(refused, id)   -- done by another attempt
    end                           -- else acknowledged by this very lease before: harmless
  end
  if done then
    redis.call('HSET', P .. 'seen', fp, token)
    redis.call('HINCRBY', P .. 'n', 'done', 1)
    fetched[host] = (fetched[host] or 0) + 1
  end
end
for host, count in pairs(fetched) do
  local h = P .. 'h:' .. host
  local total = redis.call('HINCRBY', h, 'fetched', count)
  if redis.call('ZREM', P .. 'parked', host) == 1 then redis.call('HDEL', h, 'state', 'until', 'error') end
  if budget > 0 and total >= budget and redis.call('SADD', P .. 'spent', host) == 1 then
    -- the host's budget is reached: the rest of its URLs are never fetched
    local left = redis.call('LLEN', P .. 'q:' .. host)
    redis.call('DEL', P .. 'q:' .. host)
    redis.call('ZREM', P .. 'heads', host)
    redis.call('HINCRBY', P .. 'n', 'queued', -left)
    redis.call('HSET', h, 'state', 'budget')
  end
end
if #refused > 0 then redis.call('HINCRBY', P .. 'n', 'refused', #refused) end
return refused
"""

# ARGV: worker, then (id, token) per item, or nothing for every lease of the worker.
# Returns (released, refused).
_RELEASE = _COMMON + """
local ids, refused = {}, 0
if #ARGV == 1 then
  ids = redis.call('SMEMBERS', P .. 'w:' .. ARGV[1])
else
  for i = 2, #ARGV, 2 do
    local raw = redis.call('HGET', P .. 'leased', ARGV[i])
    if raw and cjson.decode(raw)[1] == ARGV[i + 1] then table.insert(ids, ARGV[i]) else refused = refused + 1 end
  end
end
return {unlease(ids), refused}
"""

# ARGV: worker, lease ms, heartbeat ms, then (id, token) per item. Returns the ids whose lease is lost.
_RENEW = _COMMON + """
local now = clock()
beat(ARGV[1], now, tonumber(ARGV[3]))
local lost = {}
for i = 4, #ARGV, 2 do
  local raw = redis.call('HGET', P .. 'leased', ARGV[i])
  if raw and cjson.decode(raw)[1] == ARGV[i + 1] then
    redis.call('ZADD', P .. 'expiry', now + tonumber(ARGV[2]), ARGV[i])
  else
    table.insert(lost, ARGV[i])
  end
end
return lost
"""

# Returns the hosts with queued URLs, except those parked until later.
_HOSTS_WITH_WORK = _COMMON + """
local now = clock()
reclaim(now)
local parked = {}
for _, host in ipairs(redis.call('ZRANGEBYSCORE', P .. 'parked', '(' .. now, '+inf')) do parked[host] = true end
local hosts = {}
for _, host in ipairs(redis.call('ZRANGE', P .. 'heads', 0, -1)) do
  if not parked[host] then table.insert(hosts, host) end
end
return hosts
"""

_RECLAIM = _COMMON + "return reclaim(clock())"

# ARGV: host, until ms, until (ISO), error.
_PARK = _COMMON + """
redis.call('ZADD', P .. 'parked', ARGV[2], ARGV[1])
redis.call('HSET', P .. 'h:' .. ARGV[1], 'state', 'parked', 'until', ARGV[3], 'error', ARGV[4])
"""

_CHUNK = 1000   # URLs per script call: a long script blocks every other client of the server


def fingerprint(url: str) -> bytes:
    """The seen set's key for a URL: 96 bits, so a job of a billion URLs has one chance in ~10^11
    of two URLs colliding (the second would be taken as seen)."""
    return hashlib.blake2b(url.encode(), digest_size=12).digest()


def _address(url: str) -> str:
    """The Redis URL without its password, for messages."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


@contextlib.contextmanager
def redis_errors(address: str, doing: str) -> Iterator[None]:
    """The one boundary for redis-py: its errors leave as ``StorageError``, naming the server. The
    client has already retried lost connections with backoff (about 30 s) by then."""
    try:
        yield
    except RedisError as exc:
        raise StorageError(f"cannot {doing} the Redis frontier at {address}: {exc or type(exc).__name__}") from None
    except OSError as exc:
        raise StorageError(f"cannot {doing} the Redis frontier at {address}: {exc.strerror or exc}") from None


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisFrontier:
    """``Frontier`` over Redis, shared by every worker of job ``job`` at ``url``; ``worker`` names
    this one (stable across its restarts, so ``release()`` at start takes back what it held).

    Job-wide limits (every worker must pass the same): ``per_host`` URLs of a host leased and not
    acknowledged at once (0: no limit), ``delay`` seconds at least between two leases of a host
    (then each lease of a host is one URL), ``host_budget`` URLs fetched per host (0: none).
    A lease expires ``lease_seconds`` after it is taken or renewed.

    Open it with ``async with``; leaving does not release this worker's leases (``release()`` does).
    """

    def __init__(self, url: str, job: str, worker: str, *, lease_seconds: float = 60.0, per_host: int = 0,
                 delay: float = 0.0, host_budget: int = 0) -> None:
        self.url, self.job, self.worker = url, job, worker
        self.address = _address(url)
        self.lease_ms = max(1, round(lease_seconds * 1000))
        self.per_host, self.delay_ms, self.host_budget = per_host, round(delay * 1000), host_budget
        self.refused = 0   # this worker's acknowledgements and releases refused for a stale token
        self.prefix = f"crawler:{{{job}}}:"
        self._client: aioredis.Redis | None = None

    # -- opening and closing ----------------------------------------------------------------------

    async def __aenter__(self) -> RedisFrontier:
        client = aioredis.Redis.from_url(self.url, socket_timeout=10, socket_connect_timeout=5,
                                         retry=Retry(NoBackoff(), 0))
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.aclose()
            reason = str(exc).rpartition(". ")[2] or type(exc).__name__
            raise RedisUnavailable(f"cannot reach the Redis frontier at {self.address}: {reason}") from None
        # From now on a lost connection is retried with backoff before it becomes a StorageError:
        # every script is safe to run again (the module docstring says why).
        client.set_retry(Retry(ExponentialWithJitterBackoff(base=0.25, cap=8.0), 6))
        self._client = client
        self._add, self._lease = client.register_script(_ADD), client.register_script(_LEASE)
        self._ack, self._release = client.register_script(_ACK), client.register_script(_RELEASE)
        self._renew, self._hosts = client.register_script(_RENEW), client.register_script(_HOSTS_WITH_WORK)
        self._reclaim, self._park = client.register_script(_RECLAIM), client.register_script(_PARK)
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        client, self._client = self._client, None
        if client is not None:
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
        with redis_errors(self.address, "add URLs to"):
            async with self.client.pipeline(transaction=False) as pipe:
                for chunk in _chunks(urls):
                    args: list[str | bytes | int] = []
                    for u in chunk:
                        args += [fingerprint(u.url), u.host, u.depth, u.url, "0" if u.exclusion is None else "1"]
                    await self._add([self.prefix], args, client=pipe)
                return sum(int(n) for n in await pipe.execute())

    async def lease(self, limit: int, host: str | None = None) -> list[FrontierItem]:
        """Up to ``limit`` URLs (of ``host`` only, if given), oldest first, as the job-wide limits
        allow now: a host at ``per_host`` leases or within ``delay`` of its last lease gives none."""
        if limit <= 0:
            return []
        with redis_errors(self.address, "lease URLs from"):
            out = await self._lease([self.prefix], [self.worker, limit, host or "", self.lease_ms, self.per_host,
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
        with redis_errors(self.address, "acknowledge URLs in"):
            for chunk in _chunks(items):
                args: list[str | bytes | int] = [self.host_budget]
                for i in chunk:
                    args += [i.id, str(i.token), fingerprint(i.url), i.host, f"{i.id} {i.depth} {i.url}"]
                stale = {int(n) for n in await self._ack([self.prefix], args)}
                refused += [i for i in chunk if i.id in stale]
        self.refused += len(refused)
        return refused

    async def release(self, items: Sequence[FrontierItem] | None = None) -> int:
        """Put leased URLs back at the head of their hosts' queues: these (a stale token is refused
        and counted in ``refused``), or with None every lease this worker holds. Returns how many."""
        released = 0
        with redis_errors(self.address, "release URLs in"):
            if items is None:
                released, _ = await self._release([self.prefix], [self.worker])
            else:
                for chunk in _chunks(items):
                    args: list[str | int] = [self.worker]
                    for i in chunk:
                        args += [i.id, str(i.token)]
                    done, refused = await self._release([self.prefix], args)
                    released += int(done)
                    self.refused += int(refused)
        return int(released)

    async def requeue(self, urls: Sequence[str]) -> int:
        raise RecrawlUnsupported(f"a recrawl is not supported with the Redis frontier ({self.address}, job "
                                 f"{self.job}): start a new job name to crawl again")

    async def hosts_with_work(self) -> list[str]:
        with redis_errors(self.address, "read"):
            return [_text(h) for h in await self._hosts([self.prefix])]

    async def park(self, host: str, until: str, error: str) -> None:
        until_ms = round(datetime.fromisoformat(until).timestamp() * 1000)
        with redis_errors(self.address, "park a host in"):
            await self._park([self.prefix], [host, until_ms, until, error])

    async def pending(self) -> int:
        queued, leased = await self._counts()
        return queued + leased

    async def finished(self) -> bool:
        """Nothing is queued and no lease is out, expired or not (an expired lease is work until a
        worker takes it back: its URL goes back to the queue)."""
        return await self.pending() == 0

    # -- beyond the protocol ----------------------------------------------------------------------

    async def renew(self, items: Sequence[FrontierItem]) -> list[FrontierItem]:
        """Extend the leases of ``items`` to ``lease_seconds`` from now, and beat this worker's
        heartbeat. Returns the items whose lease is lost (expired and leased again, or done): their
        acknowledgement will be refused."""
        lost: set[int] = set()
        with redis_errors(self.address, "renew leases in"):
            for chunk in _chunks(items) if items else [()]:
                args: list[str | int] = [self.worker, self.lease_ms, self.lease_ms]
                for i in chunk:
                    args += [i.id, str(i.token)]
                lost |= {int(n) for n in await self._renew([self.prefix], args)}
        return [i for i in items if i.id in lost]

    async def reclaim(self) -> int:
        """Put up to 1,000 expired leases back in their hosts' queues now; returns how many. (Leasing
        does it too, lazily: nobody needs to call this for the job to go on.)"""
        with redis_errors(self.address, "reclaim leases in"):
            return int(await self._reclaim([self.prefix]))

    async def set_delay(self, host: str, seconds: float) -> None:
        """Raise ``host``'s delay between leases for the whole job (robots.txt Crawl-delay); never
        below the configured ``delay``."""
        with redis_errors(self.address, "set a delay in"):
            await self.client.hset(self._key("h:" + host), "delay", round(seconds * 1000))

    async def started(self) -> bool:
        """Whether the job exists: some worker has added URLs to it."""
        with redis_errors(self.address, "read"):
            return bool(await self.client.exists(self._key("seen")))

    async def _counts(self) -> tuple[int, int]:
        with redis_errors(self.address, "read"):
            async with self.client.pipeline(transaction=True) as pipe:   # one snapshot: a URL in passage counts once
                pipe.hget(self._key("n"), "queued")
                pipe.hlen(self._key("leased"))
                queued, leased = await pipe.execute()
        return int(queued or 0), int(leased)

    async def stats(self) -> JobStats:
        """The job as every worker shares it: counts, workers alive, and every host's state."""
        c = self.client
        with redis_errors(self.address, "read"):
            async with c.pipeline(transaction=True) as pipe:
                pipe.hgetall(self._key("n"))
                pipe.hlen(self._key("leased"))
                pipe.smembers(self._key("workers"))
                pipe.smembers(self._key("hosts"))
                counts, leased, workers, hosts = await pipe.execute()
            names = sorted(_text(h) for h in hosts)
            async with c.pipeline(transaction=False) as pipe:
                for w in workers:
                    pipe.exists(self._key("alive:" + _text(w)))
                for h in names:
                    pipe.hgetall(self._key("h:" + h))
                    pipe.llen(self._key("q:" + h))
                replies = await pipe.execute()
        alive, per_host = replies[:len(workers)], replies[len(workers):]
        n = {_text(k): int(v) for k, v in counts.items()}
        return JobStats(n.get("queued", 0), int(leased), n.get("done", 0), n.get("refused", 0), n.get("reclaimed", 0),
                        sum(map(int, alive)), tuple(_host_stats(h, per_host[2 * k], per_host[2 * k + 1])
                                                    for k, h in enumerate(names)))


def _host_stats(host: str, raw: dict[bytes, bytes], queued: int) -> HostStats:
    fields = {_text(k): _text(v) for k, v in raw.items()}
    in_flight, fetched = int(fields.get("inflight", 0)), int(fields.get("fetched", 0))
    state: HostState = "queued" if queued else "leased" if in_flight else "done"
    if fields.get("state") == "parked":
        state = "parked"
    elif fields.get("state") == "budget":
        state = "budget"
    return HostStats(host, int(queued), in_flight, fetched, state, fields.get("until"), fields.get("error"))
