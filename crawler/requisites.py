"""The record of a URL fetched as a check or as a page's requisite (``crawler.references``).

A check's record is its status and headers, no body. A requisite's is stored as any response that
is not HTML is (its body kept with the others, within ``--max-bytes``); a stylesheet's own
references (``@import``, fonts, background images) are its links, requisites in their turn. Pure
apart from the clock of ``fetched_at``: a stylesheet is read here, beside the parse stage, since
pages have a handful and reading one is a regular expression over its text.
"""

from __future__ import annotations

from crawler.models import FrontierItem, PageRecord, Response
from crawler.parse_stage import ParseOptions, content_hash
from crawler.parser import media_type
from crawler.references import css_outlinks
from crawler.storage.schema import stored_time


def reference_record(item: FrontierItem, response: Response, options: ParseOptions, keep_bodies: bool) -> PageRecord:
    """The record of ``response`` to ``item``, a check or a requisite."""
    if response.status == 304 and (item.etag or item.last_modified):
        return PageRecord(item.id, item.depth, stored_time(), status=304, elapsed_ms=response.elapsed_ms,
                          unchanged=True, fetched_as=item.fetch_as)
    ctype = media_type(response.header("content-type"))
    body = response.body if item.fetch_as == "requisite" else b""
    record = PageRecord(
        item.id, item.depth, stored_time(), final_url=response.final_url, status=response.status,
        content_type=ctype, size=len(body) if item.fetch_as == "requisite" else None,
        elapsed_ms=response.elapsed_ms, error="http_error" if response.status >= 400 else None,
        etag=response.header("etag"), last_modified=response.header("last-modified"),
        http_version=response.http_version, reason_phrase=response.reason_phrase, headers=response.headers,
        request_headers=response.request_headers, ip=response.ip, body=body if keep_bodies and body else None,
        waited_ms=response.waited_ms, content_hash=content_hash(body) if body else None, fetched_as=item.fetch_as)
    if item.fetch_as == "requisite" and ctype == "text/css" and 200 <= response.status < 300:
        record.links = css_outlinks(response.final_url, body, item.depth, scope=options.scope,
                                    check_references=options.check_references, check_external=options.check_external,
                                    sort_query=options.sort_query)
    return record
