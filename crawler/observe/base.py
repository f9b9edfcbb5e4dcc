"""What a run tells its observers, and the observer that listens to nothing (the default)."""

from __future__ import annotations

from typing import Literal

from crawler.models import PageRecord

HostState = Literal["active", "backoff", "parked"]   # as ``crawler stats --hosts`` names them


class Observer:
    """Told of what happens in a run, from its event loop. Each method must return at once: an
    observer that has I/O to do hands it to a thread of its own. This one does nothing."""

    def page(self, url: str, record: PageRecord) -> None:
        """A page's record was stored (a page, a 304, or an error's record)."""

    def host(self, host: str, state: HostState, reason: str | None, until: str | None) -> None:
        """A host was backed off, parked (``until``, ISO 8601 UTC) or is back at full pace."""


class Observers(Observer):
    """Several observers told the same news, in order."""

    def __init__(self, observers: list[Observer]) -> None:
        self.observers = observers

    def page(self, url: str, record: PageRecord) -> None:
        for observer in self.observers:
            observer.page(url, record)

    def host(self, host: str, state: HostState, reason: str | None, until: str | None) -> None:
        for observer in self.observers:
            observer.host(host, state, reason, until)
