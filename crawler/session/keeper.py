"""The crawl's side of the session (the process that owns the job file): it starts the session
before the first request and keeps the jar, sealed, in the job file.

    start: the job's stored session (store.unseal) ─► --cookies FILE ─► log in (--login), unless a
           stored session was restored: a resume goes on with it, and logs in again only when a
           page shows it expired
    while crawling: the cookies changed (here, or in a worker) ─► sealed into the job file,
           at once after a login, else at most once a second
    end: the last change sealed
"""

from __future__ import annotations

import time
from collections.abc import Callable

from crawler.config import Settings
from crawler.printable import say
from crawler.session import store
from crawler.session.guard import DEFAULT_GUARD, Guard
from crawler.session.jar import Records, load_netscape, records
from crawler.session.login import Session
from crawler.session.recipe import Recipe
from crawler.session.recipe import load as load_recipe
from crawler.storage.jobfile import JobFile

SAVE_EVERY = 1.0   # seconds: the least time between two writes of a jar that keeps changing


def check_session(settings: Settings) -> Recipe | None:
    """The login recipe (None without ``--login``), and ``--cookies``' file, checked before the job
    file or a request: a mistake is one line, exit 2."""
    if settings.cookies:
        load_netscape(settings.cookies)
    return load_recipe(settings.login) if settings.login else None


def guard_of(settings: Settings, recipe: Recipe | None) -> Callable[[str], str | None] | None:
    """The session guard of a crawl that is logged in (a recipe, or a cookies file); else None."""
    if recipe is not None:
        return Guard(recipe.guard).detail
    return Guard(DEFAULT_GUARD).detail if settings.cookies else None


class Keeper:
    """Keeps ``session`` (the crawl's own) in ``job``."""

    def __init__(self, job: JobFile, settings: Settings, session: Session) -> None:
        self.job = job
        self.settings = settings
        self.session = session
        self._saved_at = float("-inf")
        self._dirty = False
        self._stored = False   # the job file keeps a session (maybe an empty one)
        session.on_change = self.changed

    async def start(self) -> None:
        """Restore, load, log in (see the module's docstring), and seal what that gave."""
        restored = False
        stored = await self.job.get_meta(store.META_KEY)
        self._stored = stored is not None
        if stored is not None:
            cookies = store.unseal(stored)
            if cookies is None:
                then = "logging in again" if self.session.recipe is not None else "going on without it"
                say(f"crawler: the session kept in {self.settings.db} cannot be read here (it was sealed with the "
                    f"key of another machine or user, {store.key_path()}): {then}")
            else:
                self.session.load(cookies)
                restored = bool(cookies)
        if self.settings.cookies:
            self.session.load(load_netscape(self.settings.cookies))
        if self.session.recipe is not None and not restored:
            await self.session.login()
        await self.save()

    async def changed(self, cookies: Records, urgent: bool) -> None:
        """The crawl's jar changed: seal it now after a login, else at most once every ``SAVE_EVERY``."""
        self._dirty = True
        if urgent or time.monotonic() - self._saved_at >= SAVE_EVERY:
            await self.save()

    async def merged(self, cookies: Records, urgent: bool) -> None:
        """Cookies a worker's responses (or its login) set: into the crawl's jar, and sealed."""
        self.session.load(cookies)
        await self.changed(cookies, urgent)

    async def save(self) -> None:
        self._saved_at = time.monotonic()
        self._dirty = False
        cookies = records(self.session.jar)
        if cookies or self._stored:   # a crawl that never had a cookie makes no key and writes nothing
            await self.job.set_meta(store.META_KEY, store.seal(cookies))
            self._stored = True

    async def close(self) -> None:
        """The run ends: seal the last change."""
        await self.session.noticed()
        if self._dirty:
            await self.save()
