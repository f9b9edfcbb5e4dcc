"""One URL's visit (crawler/visit.py): the visitor makes the record of every answer it stores,
a 5xx on the URL's last attempt included. MockTransport, in each parse mode.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
import pytest
from conftest_fetch import mock_fetcher, reply, settings

from crawler.errors import ServerBusy
from crawler.models import FrontierItem
from crawler.parse_stage import ParseOptions, ParseStage
from crawler.scope import Scope
from crawler.visit import local_visitor

OPTIONS = ParseOptions(Scope("host", frozenset({"t"}), max_depth=3))


def busy(request: httpx2.Request) -> httpx2.Response:
    return reply(503, b"<html><title>Down for maintenance</title></html>",
                 {"content-type": "text/html", "retry-after": "7"})


def visit_busy(attempt: int, mode: str, **changes: Any) -> ServerBusy:
    """The error of one visit of a URL that answers 503, at attempt number ``attempt``."""
    async def go() -> ServerBusy:
        config = settings(parse_mode=mode, **changes)
        async with mock_fetcher(busy, **changes) as fetcher, ParseStage(mode, 1, OPTIONS) as stage:
            visitor = local_visitor(fetcher, stage, config, lambda: OPTIONS.scope, lambda: None)
            fetched: list[str] = []
            with pytest.raises(ServerBusy) as caught:
                await visitor.visit(FrontierItem(1, "http://t/a", 2, attempt=attempt), lambda: fetched.append("over"))
            assert fetched == ["over"]   # once, before the record was made
            return caught.value
    return asyncio.run(go())


@pytest.mark.parametrize("mode", ["async", "process"])
def test_a_503_on_the_last_attempt_comes_with_its_record_as_any_answer_is_stored(mode: str) -> None:
    error = visit_busy(2, mode, retries=2)
    assert (error.status, error.retry_after) == (503, 7.0)   # for the host's pace
    record = error.record
    assert record is not None
    assert (record.url_id, record.depth, record.status, record.error) == (1, 2, 503, "http_error")
    assert (record.content_type, record.body) == ("text/html", b"<html><title>Down for maintenance</title></html>")
    assert record.content_hash is not None          # through the parse stage, as every answer
    assert dict(record.headers)["retry-after"] == "7"


def test_a_503_with_retries_left_comes_bare_and_the_last_ones_record_keeps_no_body_with_no_bodies() -> None:
    assert visit_busy(1, "async", retries=2).record is None     # it will be asked again: nothing to store
    last = visit_busy(0, "async", retries=0, bodies=False).record
    assert last is not None
    assert (last.status, last.body) == (503, None)
