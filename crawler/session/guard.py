"""The session guard: while a crawl is logged in, links that look like logging out or deleting are
not followed (exclusion code ``session_guard``), since one request to them would end the session
or change the site.

A link is guarded when one of the words appears in its path or query as a word of its own: not
glued to other letters, so ``/logout``, ``/account/sign-out?next=/`` and ``/post/7/delete`` are
guarded, ``/deleted-scenes`` and ``/removals`` are not. The words are the recipe's ``guard`` list
(``--login``), else ``DEFAULT_GUARD``. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

DEFAULT_GUARD = ("logout", "log-out", "log_out", "signout", "sign-out", "sign_out", "logoff", "log-off",
                 "delete", "remove", "destroy", "unsubscribe", "deactivate")


class Guard:
    """Judges URLs against a list of words (case-insensitive)."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = tuple(w.lower() for w in words)
        alternatives = "|".join(re.escape(w) for w in sorted(self.words, key=len, reverse=True))
        self._pattern = re.compile(rf"(?<![a-z])({alternatives})(?![a-z])") if self.words else None

    def detail(self, url: str) -> str | None:
        """Why ``url`` is not followed (the word it contains), or None when it may be."""
        if self._pattern is None:
            return None
        rest = url.partition("://")[2]
        path = rest[rest.find("/"):] if "/" in rest else ""
        found = self._pattern.search(path.partition("#")[0].lower())
        return None if found is None else f"its path or query has {found.group(1)!r}: it could end the session"
