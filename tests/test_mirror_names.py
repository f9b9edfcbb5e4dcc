"""The file names of a mirror (``crawler.export.mirror.names``): pure, no files written."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawler.export.mirror.names import MAX_PATH, MAX_SEGMENT, file_name, folded, relative, with_hash
from crawler.storage.mirror_index import MirrorIndex
from crawler.urls import canonicalize

_WINDOWS_FORBIDDEN = set('<>:"|?*\\\0')


def _safe(name: str) -> None:
    assert name.isascii()
    assert len(name.encode()) <= MAX_PATH
    for part in name.split("/"):
        assert part not in ("", ".", "..")
        assert not _WINDOWS_FORBIDDEN & set(part)
        assert not part.endswith((".", " "))
        assert len(part) <= MAX_SEGMENT
        assert part.split(".")[0].lower() not in ("con", "prn", "aux", "nul", "com1", "lpt9")


@pytest.mark.parametrize(("url", "media", "name"), [
    ("http://h.test/", "text/html", "h.test/index.html"),
    ("http://h.test/dir/", "text/html", "h.test/dir/index.html"),
    ("http://h.test/page", "text/html", "h.test/page.html"),
    ("http://h.test/page.htm", "text/html", "h.test/page.htm"),
    ("http://h.test:8080/a/b.png", "image/png", "h.test+8080/a/b.png"),
    ("http://h.test/style.php", "text/css", "h.test/style.php.css"),
    ("http://h.test/file.zip", "application/octet-stream", "h.test/file.zip"),
    ("http://h.test/a?b=1", "text/html", "h.test/a%3Fb=1.html"),
    ("http://h.test/..%2F..%2Fetc/passwd", None, "h.test/..%2F..%2Fetc/passwd"),
    ("http://h.test/CON", "text/html", "h.test/%43ON.html"),
    ("http://h.test/aux.txt", "text/plain", "h.test/%61ux.txt"),
    ("http://h.test/Com1.tar.gz", None, "h.test/%43om1.tar.gz"),
    ("http://h.test/a%5Cb%00c.", None, "h.test/a%5Cb%00c%2E"),
    ("http://h.test/caf%C3%A9", None, "h.test/caf%C3%A9"),
    ("http://h.test/a%3Cb%3E%7C%22%2A", None, "h.test/a%3Cb%3E%7C%22%2A"),
    ("http://h.test/%25", None, "h.test/%25"),
])
def test_a_url_is_named_readably_and_safely(url: str, media: str | None, name: str) -> None:
    assert file_name(url, media) == name
    _safe(name)


def test_dot_segments_never_leave_their_folder() -> None:
    # The crawler removes dot segments; a URL that kept them (another tool's job) still stays inside.
    assert file_name("http://h.test/../..", None) == "h.test/%2E%2E/%2E%2E"
    assert file_name("http://h.test/./x", None) == "h.test/%2E/x"


def test_an_over_long_segment_or_path_is_cut_and_keeps_its_extension() -> None:
    long_segment = file_name("http://h.test/" + "a" * 3000, "text/html")
    assert long_segment.endswith(".html")
    _safe(long_segment)
    deep = file_name("http://h.test/" + "/".join(["segment"] * 60) + "/x.png", "image/png")
    assert deep.startswith("h.test/~long/")
    assert deep.endswith(".png")
    _safe(deep)
    assert file_name("http://h.test/" + "a" * 3000, "text/html") != file_name("http://h.test/" + "a" * 2999, "text/html")


@given(st.text(min_size=0, max_size=300), st.sampled_from([None, "text/html", "text/css", "image/png"]))
def test_every_path_gives_a_safe_name_inside_its_host_folder(path: str, media: str | None) -> None:
    url = canonicalize("http://h.test/" + path)
    if url is None:
        return
    name = file_name(url, media)
    assert name.startswith("h.test/")
    _safe(name)


def test_a_clash_gets_a_hash_before_the_extension() -> None:
    assert with_hash("h/page.html", "http://h/page").startswith("h/page~")
    assert with_hash("h/page.html", "http://h/page").endswith(".html")
    assert with_hash(with_hash("h/page.html", "u"), "u", 1).count("~") == 1


def test_links_between_files_are_relative_and_url_encoded() -> None:
    assert relative("h/docs/intro.html", "h/index.html") == "docs/intro.html"
    assert relative("cdn/a.png", "h/docs/index.html") == "../../cdn/a.png"
    assert relative("h/a%3Fb=1.html", "h/index.html") == "a%253Fb=1.html"


def _index() -> MirrorIndex:
    return MirrorIndex(file_name, folded, with_hash)


def test_two_urls_that_differ_by_case_get_two_files_on_a_case_folding_file_system() -> None:
    with _index() as index:
        index.add("http://h/Page", "http://h/Page", "text/html")
        index.add("http://h/page", "http://h/page", "text/html")
        index.settle()
        first, second = index.name("http://h/Page"), index.name("http://h/page")
        assert first == "h/Page.html"
        assert second is not None
        assert folded(second) != folded(first)


def test_a_file_that_is_also_a_folder_is_renamed() -> None:
    with _index() as index:
        index.add("http://h/a", "http://h/a", "application/octet-stream")
        index.add("http://h/a/b", "http://h/a/b", "application/octet-stream")
        index.add("http://h/A/c", "http://h/A/c", "application/octet-stream")
        index.settle()
        assert index.name("http://h/a/b") == "h/a/b"
        assert index.name("http://h/A/c") == "h/A/c"
        renamed = index.name("http://h/a")
        assert renamed is not None
        assert renamed.startswith("h/a~")


def test_a_redirect_resolves_to_its_target_and_the_target_own_fetch_is_written() -> None:
    with _index() as index:
        index.add("http://h/old", "http://h/new", "text/html")
        index.add("http://h/new", "http://h/new", "text/html")
        index.add("http://h/moved", "http://h/elsewhere", "text/html")
        index.settle()
        assert index.name("http://h/old") == index.name("http://h/new") == "h/new.html"
        assert index.owned("http://h/new") == "h/new.html"
        assert index.owned("http://h/old") is None
        assert index.owned("http://h/moved") == "h/elsewhere.html"   # the only copy of its target
        assert index.name("http://h/never") is None
