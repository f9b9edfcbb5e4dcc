"""Which requests get the user's headers and credentials: those to the seeds' origins (scheme,
host, port) and to each ``--auth-origin``, and no other, hop by hop.

A job remembers its seeds' origins in its file (meta ``access_origins``: origins, no secret), so a
resume without seeds still knows where the credentials go. ``Access`` answers the fetcher for
each request it makes, redirect hops included: the answer is computed from that request's URL
alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import httpx2

from crawler.access import credentials, proxies
from crawler.access.headers import AccessError, is_secret, parse_headers
from crawler.access.redact import sent_headers
from crawler.config import Settings
from crawler.urls import canonicalize, origin

if TYPE_CHECKING:
    from crawler.storage.jobfile import JobFile


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of ``url`` as the crawl writes it (default port left out), or None."""
    canonical = canonicalize(url)
    return origin(canonical) if canonical is not None else None


def check(settings: Settings) -> None:
    """Every access setting usable, before a job file is opened or a request made: one line
    naming the flag (``AccessError``, exit code 2)."""
    headers = parse_headers(settings.header)
    credentials.check_scheme(settings)
    if settings.auth and any(name.lower() == "authorization" for name in headers):
        raise AccessError("--auth and --header \"Authorization: ...\" both set the Authorization header: give one")
    for url in settings.auth_origin:
        if origin_of(url) is None:
            raise AccessError(f"--auth-origin must be an http(s) URL such as https://host:port, got {url!r}")
    proxies.check(settings)


async def remember_origins(job: JobFile, settings: Settings, seeds: Sequence[str]) -> Settings:
    """``settings`` whose ``auth_origin`` also holds the origins of the job's seeds, this run's
    and every earlier run's (kept in the job file)."""
    known: list[str] = list(await job.get_meta("access_origins") or [])
    new = [o for o in dict.fromkeys(filter(None, map(origin_of, seeds))) if o not in known]
    if new:
        known += new
        await job.set_meta("access_origins", known)
    return replace(settings, auth_origin=(*settings.auth_origin, *known))


class Access:
    """What goes with a request besides the crawler's own headers (see the module docstring)."""

    def __init__(self, settings: Settings, router: proxies.ProxyRouter | None = None) -> None:
        self.router = router   # the transport through --proxy or --proxies, if any
        self.headers = parse_headers(settings.header)
        self.origins = frozenset(filter(None, map(origin_of, settings.auth_origin)))
        self._user, self._password = settings.auth, settings.auth_password
        self._digest = settings.auth and settings.auth_scheme == "digest"
        if settings.auth and not self._digest:
            self.headers["Authorization"] = credentials.basic_header(self._user, self._password)
        self._digests: dict[str, httpx2.Auth] = {}
        # Never in a job file: what the crawler was told is secret, and what carries credentials.
        self.secret = frozenset({"authorization", "proxy-authorization",
                                 *(name.lower() for name in self.headers if is_secret(name))})
        self.active = bool(self.headers) or self._digest

    async def before(self, url: str, headers: dict[str, str] | None) -> tuple[dict[str, str] | None, httpx2.Auth | None]:
        """The headers (``headers`` and this origin's) and the auth flow of a request to ``url``,
        once its host has a proxy (waiting, outside the request's deadline, while every proxy rests)."""
        extra, auth = self.for_url(url)
        if extra:
            headers = {**extra, **headers} if headers else extra
        if self.router is not None:
            await self.router.pool.wait_for(proxies.host_of(url))
        return headers, auth

    def for_url(self, url: str) -> tuple[dict[str, str] | None, httpx2.Auth | None]:
        """The headers and the auth flow of a request to ``url``: (None, None) unless its origin
        is one of the seeds' or an ``--auth-origin``."""
        if not self.active:
            return None, None
        where = origin(url)
        if where not in self.origins:
            return None, None
        auth = None
        if self._digest:
            auth = self._digests.get(where)
            if auth is None:
                auth = self._digests[where] = credentials.digest(self._user, self._password)
        return self.headers, auth

    def recorded(self, headers: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        """The request headers as sent, as the job file may keep them."""
        return sent_headers(headers, self.secret) if self.active else headers
