"""Requests as the user needs them, at the fetch stage: extra headers and credentials for the
seeds' origins, and proxies.

    headers.py      ``--header "Name: value"``: parsed, checked, and which of them are secrets
    credentials.py  ``--auth USER``: the password (environment or terminal), Basic or Digest
    origins.py      the origins that get headers and credentials: the seeds' and ``--auth-origin``
    proxies.py      ``--proxy`` / ``--proxies FILE``: each host keeps a proxy, a failed one rests
    redact.py       secret header values kept out of the job file (a WARC export redacts cookies too)

``Access`` is what the fetcher asks, hop by hop: which headers and which ``httpx2.Auth`` go with a
request to this URL. The answer depends on the URL's origin (scheme, host, port) alone, so a
redirect to another origin carries neither the credentials nor the headers (wget's
CVE-2021-31879). No secret is a setting that a job file keeps (``job.JOB_KEYS`` names none of them).
"""

from __future__ import annotations

from crawler.access.headers import AccessError
from crawler.access.origins import Access, check
from crawler.access.proxies import NoProxyLeft

__all__ = ["Access", "AccessError", "NoProxyLeft", "check"]
