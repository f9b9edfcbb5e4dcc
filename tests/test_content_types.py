"""The media types a crawl wants (``crawler.content_types``): patterns, the verdict on a type, the
verdict on a URL from its extension, and the scope that applies it to every link found. Pure."""

from __future__ import annotations

import pickle

import pytest

from crawler.content_types import ContentTypes, matches, media_type, type_of_extension
from crawler.errors import ConfigError
from crawler.scope import Scope


def test_patterns_match_a_type_its_family_or_everything() -> None:
    assert matches("application/pdf", "application/pdf")
    assert matches("image/*", "image/svg+xml")
    assert matches("*/*", "video/mp4")
    assert not matches("image/*", "application/pdf")
    assert not matches("application/pdf", "application/pdfx")


def test_by_default_every_type_is_wanted() -> None:
    wanted = ContentTypes()
    assert not wanted.filters
    assert [wanted.judge(t) for t in ("text/html", "application/pdf", "image/png")] == [None, None, None]


def test_accepting_a_type_wants_html_and_that_type_only() -> None:
    wanted = ContentTypes.of(["application/pdf"], [])
    assert wanted.judge("text/html") is None
    assert wanted.judge("application/xhtml+xml") is None
    assert wanted.judge("application/pdf") is None
    assert wanted.judge("image/png") == ("type_not_accepted", "image/png matches no --accept-type (application/pdf)")


def test_a_rejected_type_is_refused_even_when_accepted_and_html_only_when_named() -> None:
    wanted = ContentTypes.of(["image/*"], ["image/gif"])
    assert wanted.judge("image/png") is None
    assert wanted.judge("image/gif") == ("type_rejected", "image/gif matches --reject-type image/gif")
    assert ContentTypes.of([], ["image/*"]).judge("text/html") is None
    assert ContentTypes.of([], ["text/html"]).judge("text/html") == ("type_rejected",
                                                                      "text/html matches --reject-type text/html")


def test_an_answer_without_a_content_type_is_judged_as_octet_stream() -> None:
    assert media_type(None) == media_type("") == "application/octet-stream"
    assert media_type("Application/PDF; name=x") == "application/pdf"
    assert ContentTypes.of(["application/pdf"], []).judge(media_type(None)) is not None


@pytest.mark.parametrize(("url", "expected"), [
    ("http://a.test/img/logo.PNG", "image/png"),
    ("http://a.test/report.pdf?download=1", "application/pdf"),
    ("http://a.test/movie.mp4", "video/mp4"),
    ("http://a.test/a%2Eb/file.zip", "application/zip"),
    ("http://a.test/page.html", "text/html"),
    ("http://a.test/doc", None),                       # no extension: the answer tells
    ("http://a.test/get.php?f=a.pdf", None),           # the query does not count
    ("http://a.test/app.js", None),                    # servers disagree on its type
    ("http://a.test/feed.xml", None),
    ("http://a.test/.png", None),                      # a hidden name, no extension
    ("http://a.test/pdf/", None),
])
def test_an_extension_tells_a_type_only_where_servers_agree_on_it(url: str, expected: str | None) -> None:
    assert type_of_extension(url) == expected


def test_a_url_is_judged_from_its_extension_before_any_request() -> None:
    wanted = ContentTypes.of([], ["image/*"])
    assert wanted.judge_url("http://a.test/a.png") == ("type_rejected", "by its extension, image/png matches "
                                                                        "--reject-type image/*")
    assert wanted.judge_url("http://a.test/a") is None
    assert wanted.judge_url("http://a.test/a.pdf") is None
    assert ContentTypes.of(["application/pdf"], []).judge_url("http://a.test/a.zip")[0] == "type_not_accepted"  # type: ignore[index]


@pytest.mark.parametrize("bad", ["pdf", "image/", "*/pdf", "image/png/x", "text/html; charset=utf-8", ""])
def test_a_bad_pattern_is_refused_naming_its_key_and_flag(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"bad accept_type \(--accept-type\)"):
        ContentTypes.of([bad], [])


def test_patterns_are_kept_lower_case() -> None:
    assert ContentTypes.of([" Image/* "], ["APPLICATION/ZIP"]) == ContentTypes(("image/*",), ("application/zip",))


def test_the_scope_excludes_a_link_whose_extension_names_an_unwanted_type_and_still_pickles() -> None:
    scope = Scope("host", frozenset({"a.test"}), types=ContentTypes.of(["application/pdf"], ["image/*"]))
    assert scope.decide("http://a.test/x.png", 1) == "type_rejected"
    assert scope.decide("http://a.test/x.zip", 1) == "type_not_accepted"
    assert scope.decide("http://a.test/x.pdf", 1) is None
    assert scope.decide("http://a.test/x", 1) is None
    assert scope.decide("http://b.test/x.png", 1) == "off_host"   # the host's verdict comes first
    assert pickle.loads(pickle.dumps(scope)).decide("http://a.test/x.png", 1) == "type_rejected"
