"""WARC 1.1 through warcio: a ``warcinfo`` record, then a ``response`` and a ``request`` record for
every stored fetch, or a ``revisit`` and a ``request`` where the payload was archived already
(and a ``conversion`` record for a rendered page).

- Every fetch of every job is kept (merging jobs does not apply: an archive keeps what happened),
  each job in fetch order; the status and time filters apply.
- The response record's status line has the HTTP version the server answered in (``HTTP/1.0``
  from an old server); the request record's, the version the crawler asked in (``HTTP/1.1``).
- ``WARC-Date`` is the fetch time, ``WARC-Target-URI`` the URL that answered (after redirects),
  ``WARC-IP-Address`` the server's address where the crawl learnt it, and the request record names
  its response in ``WARC-Concurrent-To``. warcio computes ``WARC-Block-Digest`` and
  ``WARC-Payload-Digest`` (SHA-1, base 32) over the bytes written.
- A page whose content hash was already archived in this export gets a ``revisit`` record (profile
  identical-payload-digest) naming the first copy's URI, date and payload digest.
- The crawl keeps bodies decoded (after Content-Encoding) and the response holds that body: its
  HTTP headers lose ``Content-Encoding`` and ``Transfer-Encoding``, keeping their values as
  ``X-Archive-Orig-Content-Encoding`` and ``X-Archive-Orig-Transfer-Encoding``, and
  ``Content-Length`` is the decoded length (the server's, if it sent one, is kept as
  ``X-Archive-Orig-Content-Length``). So the record is self-consistent and a replay tool serves it
  as it is, instead of trying to inflate bytes that are no longer compressed.
- A page rendered by a browser (``--render``) has its HTTP response in the ``response`` record and
  the rendered DOM (UTF-8) in a ``conversion`` record whose ``WARC-Refers-To`` names that response.
- A request record's ``Authorization``, ``Proxy-Authorization`` and ``Cookie`` values are
  ``[redacted]``: a WARC is often shared. ``--warc-keep-secrets`` keeps what the job file holds (the crawl never stores
  the credentials it sends: ``crawler.access.redact``).
- ``warc.gz`` (chosen by an ``--out`` ending in ``.gz``) compresses each record as its own gzip
  member, so readers can seek to any record.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from crawler.errors import UsageError
from crawler.export.base import Selection
from crawler.storage.bodies import BodyStream
from crawler.storage.payload_index import PayloadIndex
from crawler.storage.read import Capture, JobReader

# Headers that describe the bytes on the wire, not the decoded body the record holds.
_WIRE_HEADERS = frozenset({"content-encoding", "transfer-encoding", "content-length"})
# Request headers whose values a shared WARC leaves out (``--warc-keep-secrets`` keeps them).
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def export(out: BinaryIO, jobs: Sequence[JobReader], selection: Selection) -> int:
    return write_warc(out, jobs, selection, gzip=False)


def export_gz(out: BinaryIO, jobs: Sequence[JobReader], selection: Selection) -> int:
    return write_warc(out, jobs, selection, gzip=True)


def write_warc(out: BinaryIO, jobs: Sequence[JobReader], selection: Selection, *, gzip: bool) -> int:
    """Write the archive; returns how many fetches it holds."""
    for job in jobs:
        if not job.keeps_bodies():
            raise UsageError(f"{job.path} was crawled with --no-bodies: a WARC needs the response bodies")
    writer = WARCWriter(out, gzip=gzip, warc_version="1.1")
    writer.write_record(_warcinfo(writer, jobs))
    n = 0
    with PayloadIndex() as archived:
        for job in jobs:
            for capture in job.captures(selection.statuses, selection.since):
                _write_fetch(writer, capture, archived, job, selection.warc_keep_secrets)
                n += 1
    return n


def _warcinfo(writer: WARCWriter, jobs: Sequence[JobReader]) -> Any:
    """The archive's description: the software, and each job with the settings that shaped it."""
    lines = [f"software: crawler/{_version()} (warcio/{version('warcio')})", "format: WARC File Format 1.1",
             "conformsTo: https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/"]
    for job in jobs:
        lines.append(f"crawler-job: {job.path.name} {json.dumps(job.meta().get('job_settings') or {}, sort_keys=True)}")
    payload = ("\r\n".join(lines) + "\r\n").encode("utf-8")
    return writer.create_warc_record("", "warcinfo", payload=io.BytesIO(payload), length=len(payload))


def _version() -> str:
    try:
        return version("crawler")
    except PackageNotFoundError:   # run from a source tree that was never installed
        return "unknown"


def _write_fetch(writer: WARCWriter, capture: Capture, archived: PayloadIndex, job: JobReader, keep_secrets: bool) -> None:
    uri, date = capture.final_url, capture.fetched_at
    warc_headers = {"WARC-Date": date}
    if capture.ip:
        warc_headers["WARC-IP-Address"] = capture.ip
    size = len(capture.body) if capture.pieces is None else capture.pieces[1]
    http_headers = StatusAndHeaders(f"{capture.status} {capture.reason_phrase}".rstrip(),
                                    _as_stored(capture.headers, size), protocol=capture.http_version)
    # A rendered page's content hash is its DOM's: its HTTP body is archived in full, never as a revisit.
    first = archived.get(capture.content_hash) if capture.content_hash and capture.rendered is None else None
    if first is not None:
        first_uri, first_date, digest = first
        record = writer.create_revisit_record(uri, digest, first_uri, first_date, http_headers=http_headers,
                                              warc_headers_dict=warc_headers)
    else:
        # A file stored in pieces is read from the job file as it is written, not held in memory.
        payload = io.BytesIO(capture.body) if capture.pieces is None else BodyStream(job.conn, capture.pieces[0])
        record = writer.create_warc_record(uri, "response", payload=payload, length=size, http_headers=http_headers,
                                           warc_headers_dict=warc_headers)
        if capture.content_hash and capture.rendered is None:
            archived.add(capture.content_hash, uri, date, record.rec_headers.get_header("WARC-Payload-Digest"))
    writer.write_record(record)
    if capture.rendered is not None:   # the DOM a browser made of the response (--render)
        writer.write_record(writer.create_warc_record(
            uri, "conversion", payload=io.BytesIO(capture.rendered), length=len(capture.rendered),
            warc_content_type="text/html; charset=utf-8",
            warc_headers_dict={"WARC-Date": date, "WARC-Refers-To": record.rec_headers.get_header("WARC-Record-ID")}))
    if capture.request_headers:   # pages crawled before request headers were kept have none
        target = urlsplit(uri)
        path = (target.path or "/") + (f"?{target.query}" if target.query else "")
        request = writer.create_warc_record(
            uri, "request", http_headers=StatusAndHeaders(f"GET {path} {_request_version(capture.http_version)}",
                                                          _shared(capture.request_headers, keep_secrets),
                                                          is_http_request=True),
            warc_headers_dict={**warc_headers, "WARC-Concurrent-To": record.rec_headers.get_header("WARC-Record-ID")})
        writer.write_record(request)


def _shared(headers: list[tuple[str, str]], keep_secrets: bool) -> list[tuple[str, str]]:
    """A request record's headers: ``Authorization``, ``Proxy-Authorization`` and ``Cookie``
    values redacted (an authorization's scheme kept: ``Basic [redacted]``) unless ``keep_secrets``.
    The crawl redacted the credentials it sent already (``crawler.access.redact``)."""
    if keep_secrets:
        return headers
    shared = []
    for name, value in headers:
        if name.lower() in _SECRET_HEADERS:
            scheme, space, _ = value.partition(" ")
            value = f"{scheme} [redacted]" if name.lower() != "cookie" and space and scheme.isalpha() else "[redacted]"
        shared.append((name, value))
    return shared


def _request_version(answered: str) -> str:
    """The HTTP version the request was sent in: the crawler asks in HTTP/1.1, and a server may
    answer that in HTTP/1.0; a newer version (HTTP/2) is the connection's, for both."""
    return "HTTP/1.1" if answered in ("HTTP/1.0", "HTTP/0.9") else answered


def _as_stored(headers: list[tuple[str, str]], length: int) -> list[tuple[str, str]]:
    """The response headers for a record that holds the decoded body (see the module docstring)."""
    kept = []
    has_length = False
    for name, value in headers:
        lname = name.lower()
        if lname == "content-length" and value.strip() == str(length) and not has_length:
            has_length = True
            kept.append((name, value))
        elif lname in _WIRE_HEADERS:
            kept.append((f"X-Archive-Orig-{name}", value))
        else:
            kept.append((name, value))
    if not has_length:
        kept.append(("Content-Length", str(length)))
    return kept
