"""The fetch stage with a spool (``crawler.spool``), through ``httpx2.MockTransport``: an answer's
type judged on its header before any of its body is read, and a body that is no page streamed to a
file, not held in memory."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
from conftest_fetch import Chunks, mock_fetcher

from crawler.content_types import ContentTypes
from crawler.errors import TooLarge, TypeRejected
from crawler.models import Response
from crawler.parse_stage import content_hash
from crawler.spool import SPILL, Spool


class Watched(Chunks):
    """A body that counts the chunks the client read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in super().__aiter__():
            self.read += 1
            yield chunk


def fetch(body: Watched, content_type: str, spool: Spool, *, max_bytes: int | None = None) -> Response:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"Content-Type": content_type}, stream=body)

    async def go() -> Response:
        async with mock_fetcher(handler) as fetcher:
            return await fetcher.fetch("http://t/a", spool=spool, max_bytes=max_bytes)
    return asyncio.run(go())


def test_an_unwanted_type_is_refused_before_any_of_its_body_is_read(tmp_path: Path) -> None:
    body = Watched(bytes(100_000))
    with pytest.raises(TypeRejected) as refused:
        fetch(body, "image/png", Spool(ContentTypes.of([], ["image/*"]), tmp_path))
    assert (refused.value.code, refused.value.message) == ("type_rejected", "image/png matches --reject-type image/*")
    assert body.read == 0
    assert body.closed


def test_a_big_body_that_is_no_page_is_streamed_to_a_file_whole(tmp_path: Path) -> None:
    data = bytes(range(256)) * (3 * SPILL // 256)
    response = fetch(Watched(data), "application/pdf", Spool(ContentTypes.of(["application/pdf"], []), tmp_path))
    assert response.body == b""
    assert response.spooled is not None
    assert response.spooled.path is not None
    assert (response.spooled.size, response.spooled.content_hash) == (len(data), content_hash(data))
    assert hashlib.sha256(Path(response.spooled.path).read_bytes()).digest() == hashlib.sha256(data).digest()


def test_small_bodies_and_html_pages_stay_in_memory(tmp_path: Path) -> None:
    spool = Spool(ContentTypes(), tmp_path)
    small = fetch(Watched(b"%PDF" * 100), "application/pdf", spool)
    page = fetch(Watched(b"<p>x</p>" * SPILL), "text/html", spool)
    assert (small.body, small.spooled) == (b"%PDF" * 100, None)
    assert (len(page.body), page.spooled) == (8 * SPILL, None)
    assert list(tmp_path.iterdir()) == []


def test_a_body_over_max_bytes_leaves_no_file_behind(tmp_path: Path) -> None:
    with pytest.raises(TooLarge):
        fetch(Watched(bytes(3 * SPILL)), "application/zip", Spool(ContentTypes(), tmp_path), max_bytes=2 * SPILL)
    assert list(tmp_path.iterdir()) == []


def test_without_bodies_a_big_file_is_measured_and_hashed_but_not_written(tmp_path: Path) -> None:
    data = bytes(2 * SPILL)
    response = fetch(Watched(data), "application/zip", Spool(ContentTypes(), None))
    assert response.spooled is not None
    assert (response.spooled.path, response.spooled.size, response.spooled.content_hash) == (
        None, len(data), content_hash(data))
