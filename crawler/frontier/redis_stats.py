"""What ``crawler stats --frontier redis://... --job NAME`` reads of a Redis job: its counts, the
workers alive, and every host's state (the keys are described in ``crawler.frontier.redis``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import redis.asyncio as aioredis

from crawler.storage.schema import stored_time

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


async def read_stats(c: aioredis.Redis, prefix: str) -> JobStats:
    """The job whose keys start with ``prefix``, as every worker shares it."""
    def key(name: str) -> str:
        return prefix + name

    async with c.pipeline(transaction=True) as pipe:
        pipe.hgetall(key("n"))
        pipe.hlen(key("leased"))
        pipe.smembers(key("workers"))
        pipe.smembers(key("hosts"))
        counts, leased, workers, hosts = await pipe.execute()
    names = sorted(_text(h) for h in hosts)
    async with c.pipeline(transaction=False) as pipe:
        for w in workers:
            pipe.exists(key("alive:" + _text(w)))
        for h in names:
            pipe.hgetall(key("h:" + h))
            pipe.llen(key("q:" + h))
        replies = await pipe.execute()
    alive, per_host = replies[:len(workers)], replies[len(workers):]
    n = {_text(k): int(v) for k, v in counts.items()}
    return JobStats(n.get("queued", 0), int(leased), n.get("done", 0), n.get("refused", 0), n.get("reclaimed", 0),
                    sum(map(int, alive)), tuple(_host_stats(h, per_host[2 * k], per_host[2 * k + 1])
                                                for k, h in enumerate(names)))


async def read_parked_work(c: aioredis.Redis, prefix: str) -> tuple[int, int, str | None]:
    """``Frontier.parked_work``: the URLs queued for hosts parked until later (Redis time), how many
    such hosts, and the earliest end of their parks."""
    seconds, micros = await c.time()
    parked: list[Any] = await c.zrangebyscore(prefix + "parked", f"({seconds * 1000 + micros // 1000}", "+inf",
                                              withscores=True)
    queued = [(int(await c.llen(prefix + "q:" + _text(host))), float(until)) for host, until in parked]
    waiting = [(count, until) for count, until in queued if count]
    if not waiting:
        return 0, 0, None
    earliest = datetime.fromtimestamp(min(until for _, until in waiting) / 1000, UTC)
    return sum(count for count, _ in waiting), len(waiting), stored_time(earliest)


def _host_stats(host: str, raw: dict[bytes, bytes], queued: int) -> HostStats:
    fields = {_text(k): _text(v) for k, v in raw.items()}
    in_flight, fetched = int(fields.get("inflight", 0)), int(fields.get("fetched", 0))
    state: HostState = "queued" if queued else "leased" if in_flight else "done"
    if fields.get("state") == "parked":
        state = "parked"
    elif fields.get("state") == "budget":
        state = "budget"
    return HostStats(host, int(queued), in_flight, fetched, state, fields.get("until"), fields.get("error"))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
