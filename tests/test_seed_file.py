"""Seed files as people save them (crawler/seed_file.py): a byte-order mark, a spreadsheet's table,
a title after a space, and a file of many bad lines, through ``crawler crawl --seeds``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import FAST
from site_server import Site, html

QUICK = (*FAST, "--no-robots")


def crawl_seeds(cli: Any, tmp_path: Path, text: str, *, encoding: str = "utf-8",
                job: str = "job.db") -> tuple[list[str], list[str]]:
    """Crawl the seeds file ``text`` in this process, into a new job ``job``: the URLs the job
    fetched, and the lines on stderr."""
    (tmp_path / "seeds.txt").write_text(text, encoding=encoding)
    done = cli.in_process("crawl", "--seeds", "seeds.txt", "--db", job, *QUICK)
    assert done.returncode == 0, done.stderr
    return sorted(rec["url"] for rec in cli.export(tmp_path / job)), done.stderr.splitlines()


def test_a_byte_order_mark_before_the_first_url_is_dropped(site: Site, cli: Any, tmp_path: Path) -> None:
    site.routes.update({"/a": html("A"), "/b": html("B")})
    fetched, said = crawl_seeds(cli, tmp_path, f"{site.url('/a')}\r\n{site.url('/b')}\r\n", encoding="utf-8-sig")
    assert fetched == [site.url("/a"), site.url("/b")]
    assert said == []


def test_a_url_typed_after_a_byte_order_mark_gets_a_hint_that_works(cli: Any) -> None:
    line = cli.fails(2, "crawl", "\ufeffhttp://example.com/", "--db", "job.db")
    assert line.endswith("(did you mean 'http://example.com/'?)")


def test_a_comma_separated_table_gives_its_first_column_and_skips_its_header(site: Site, cli: Any,
                                                                             tmp_path: Path) -> None:
    site.routes.update({"/a": html("A"), "/b": html("B")})
    fetched, said = crawl_seeds(cli, tmp_path, f'url,title\n{site.url("/a")},Page A\n"{site.url("/b")}","B, the second"\n')
    assert fetched == [site.url("/a"), site.url("/b")]
    assert said == ["crawler: seeds.txt: read as a comma-separated table: the first column of each line is its URL",
                    "crawler: seeds.txt:1: header line 'url,title' skipped"]


def test_tab_and_semicolon_separated_tables_too(site: Site, cli: Any, tmp_path: Path) -> None:
    site.routes.update({"/a": html("A"), "/b": html("B")})
    fetched, said = crawl_seeds(cli, tmp_path, f"{site.url('/a')}\tA\n{site.url('/b')}\tB, b\n")
    assert fetched == [site.url("/a"), site.url("/b")]
    assert said == ["crawler: seeds.txt: read as a tab-separated table: the first column of each line is its URL"]
    fetched, said = crawl_seeds(cli, tmp_path, f"URL;Title\n{site.url('/a')};A\n", job="two.db")
    assert fetched == [site.url("/a")]
    assert said == ["crawler: seeds.txt: read as a semicolon-separated table: the first column of each line is its URL",
                    "crawler: seeds.txt:1: header line 'URL;Title' skipped"]


def test_a_line_with_a_space_is_skipped_with_a_warning_not_percent_encoded(site: Site, cli: Any,
                                                                          tmp_path: Path) -> None:
    site.routes.update({"/a": html("A"), "/a%20b": html("AB")})
    fetched, said = crawl_seeds(cli, tmp_path, f"{site.url('/a')}\n{site.url('/a')} b\n")
    assert fetched == [site.url("/a")]
    assert said == [f"crawler: seeds.txt:2: a URL holds no space: '{site.url('/a')} b' "
                    "(write %20 for a space that belongs to it) (skipped)"]


def test_many_bad_lines_are_summarised_after_the_first_ten(site: Site, cli: Any, tmp_path: Path) -> None:
    site.routes.update({"/a": html("A")})
    fetched, said = crawl_seeds(cli, tmp_path, site.url("/a") + "\n" + "not a url\n" * 100_000)
    assert fetched == [site.url("/a")]
    assert said[:2] == ["crawler: seeds.txt:2: not an absolute http(s) URL: 'not a url' (skipped)",
                        "crawler: seeds.txt:3: not an absolute http(s) URL: 'not a url' (skipped)"]
    assert said[10:] == ["crawler: seeds.txt: ... and 99,990 more bad lines (skipped)"]
