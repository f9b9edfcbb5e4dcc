"""The fetch of a link target that is checked, not crawled (``--check-references``,
``--check-external``): one request for its status, no body read, nothing parsed or followed.

A HEAD where the server allows it; a server that refuses HEAD (405 Method Not Allowed, 501 Not
Implemented) gets a GET cut once its headers are in. Either goes through what every request goes
through: the host's politeness and robots.txt (``crawler.attempt``), the SSRF guard (the
fetcher's transport), redirects checked hop by hop (any host: a check is one hop past the scope).
"""

from __future__ import annotations

from crawler.errors import ServerBusy
from crawler.fetcher import Fetcher, HopCheck
from crawler.models import Response

# Answers to a HEAD that say "not this method", not "not this resource".
HEAD_REFUSED = frozenset({405, 501})


async def check(fetcher: Fetcher, url: str, hop_check: HopCheck | None) -> Response:
    """The status of ``url``: a HEAD, or a GET cut after its headers where HEAD is refused."""
    try:
        response = await fetcher.fetch(url, check=hop_check, method="HEAD", headers_only=True)
    except ServerBusy as busy:   # a 501 is a 5xx: the fetcher raises it for the retry policy
        if busy.response is None or busy.response.status not in HEAD_REFUSED:
            raise
        response = busy.response
    if response.status in HEAD_REFUSED:
        response = await fetcher.fetch(url, check=hop_check, headers_only=True)
    return response
