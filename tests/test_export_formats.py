"""The export formats end to end: a site served on loopback, crawled once by the CLI, read back as
JSON lines, CSV, Parquet, the link graph and WARC (checked with warcio's reader and its ``check``),
with the filters, merged jobs, standard output, and the refusals (one line, exit 2)."""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import signal
import sqlite3
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import CLI, cli_command, cli_env
from site_server import Reply, Site, Wire, gzipped, html
from warcio.archiveiterator import ArchiveIterator

from crawler.export import parquet as parquet_format
from crawler.storage.schema import SCHEMA

FAST = ("--timeout", "2", "--retries", "0", "--no-robots")
SAME = html("Same words", "/")   # served at /a and /same: one payload, so the second is a revisit
GZ_PAGE = html("Zipped", "/a")


def routes() -> dict[str, Reply | Any]:
    return {
        "/": html("Home", "/a", "/same", "/gz", "/missing", "http://other.invalid/x",
                  extra='<a href="/b" rel="nofollow">  Bee\n\t page </a><a href="/b">B again</a>'),
        "/a": SAME,
        "/same": SAME,
        "/b": html("B"),
        "/gz": gzipped(GZ_PAGE),
    }


@dataclass
class Crawled:
    site: Site
    cli: CLI
    db: Path
    folder: Path

    def export(self, *args: object) -> subprocess.CompletedProcess[str]:
        done = self.cli.in_process("export", "--db", self.db, *args)
        assert done.returncode == 0, done.stderr
        return done


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crawled]:
    """One crawl of the site for the module; tests only read the job, and export into their own files."""
    folder = tmp_path_factory.mktemp("formats")
    with Site(routes()) as site:
        cli = CLI(folder)
        done = cli.in_process("crawl", site.url("/"), "--db", "job.db", *FAST)
        assert done.returncode == 0, done.stderr
        yield Crawled(site, cli, folder / "job.db", folder)


def warcio_check(path: Path) -> int:
    """``warcio check -v PATH`` (every digest checked) in this process: its exit status; what it found
    wrong is printed, and pytest shows it beside a failure."""
    from warcio.checker import Checker

    return int(Checker(argparse.Namespace(inputs=[str(path)], verbose=True)).process_all())


def warc_records(path: Path | bytes) -> list[Any]:
    """Every record of a WARC, its payload read (``content_stream``, as replay tools read it)."""
    stream = io.BytesIO(path) if isinstance(path, bytes) else path.open("rb")
    found = []
    with stream:
        for record in ArchiveIterator(stream):
            record.payload = record.content_stream().read()
            found.append(record)
    return found


# -- the record formats -----------------------------------------------------------------------


def test_jsonl_csv_and_parquet_hold_the_same_pages_with_real_types_in_parquet(crawled: Crawled) -> None:
    jsonl = [json.loads(line) for line in crawled.export("--format", "jsonl").stdout.splitlines()]
    urls = {r["url"] for r in jsonl}
    assert urls == {crawled.site.url(p) for p in ("/", "/a", "/same", "/b", "/gz", "/missing")}
    rows = list(csv.DictReader(io.StringIO(crawled.export("--format", "csv").stdout)))
    assert {r["url"] for r in rows} == urls

    crawled.export("--format", "parquet", "--out", "pages.parquet")
    table = pq.read_table(crawled.folder / "pages.parquet")
    # The same columns as the JSON lines' keys, but `data`, which Parquet spreads into one typed
    # column per field (`data.NAME`): this job has no rules, so none.
    assert table.column_names == [key for key in jsonl[0] if key != "data"]
    assert set(table.column("url").to_pylist()) == urls
    assert table.schema.field("status").type == pa.int64()
    fetched_at = table.schema.field("fetched_at").type
    assert pa.types.is_timestamp(fetched_at)         # Parquet has no seconds unit: milliseconds
    assert fetched_at.tz == "UTC"
    by_url = {r["url"]: r for r in table.to_pylist()}
    missing = by_url[crawled.site.url("/missing")]
    assert missing["status"] == 404
    assert missing["title"] is None                      # null, not an empty string
    home = by_url[crawled.site.url("/")]
    expected = next(r for r in jsonl if r["url"] == crawled.site.url("/"))
    assert home["fetched_at"].strftime("%Y-%m-%dT%H:%M:%SZ") == expected["fetched_at"]


def test_parquet_is_written_in_row_groups_with_the_fields_asked_for(crawled: Crawled,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parquet_format, "ROW_GROUP", 4)
    crawled.export("--format", "parquet", "--out", "groups.parquet", "--fields", "url,noindex,bytes")
    parquet = pq.ParquetFile(crawled.folder / "groups.parquet")
    assert parquet.metadata.num_rows == 6
    assert parquet.metadata.num_row_groups == 2
    assert parquet.schema_arrow.names == ["url", "noindex", "bytes"]
    assert parquet.schema_arrow.field("noindex").type == pa.bool_()


# -- the link graph -----------------------------------------------------------------------------


def test_the_link_graph_has_a_row_for_every_link_with_its_anchor(crawled: Crawled) -> None:
    out = crawled.export("--format", "links").stdout
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["source", "target", "nofollow", "anchor", "kind"]
    url = crawled.site.url
    home = {(r[1], r[2], r[3]) for r in rows[1:] if r[0] == url("/")}
    assert home == {
        (url("/a"), "0", "/a"), (url("/same"), "0", "/same"), (url("/gz"), "0", "/gz"),
        (url("/missing"), "0", "/missing"), ("http://other.invalid/x", "0", "http://other.invalid/x"),
        # followed once, so not nofollow; the first anchor text, whitespace collapsed
        (url("/b"), "0", "Bee page"),
    }
    conn = sqlite3.connect(crawled.db)
    try:
        stored = conn.execute("SELECT COUNT(*) FROM links").fetchone()[0]
    finally:
        conn.close()
    assert len(rows) - 1 == stored == 6 + 1 + 1 + 1   # home's six, /a and /same link home, /gz links /a


# -- WARC ---------------------------------------------------------------------------------------


def test_warc_holds_a_request_and_a_response_per_fetch_and_passes_warcio_check(crawled: Crawled) -> None:
    done = crawled.export("--format", "warc", "--out", "job.warc")
    assert "6 fetches written to job.warc" in done.stderr
    path = crawled.folder / "job.warc"
    assert warcio_check(path) == 0

    records = warc_records(path)
    assert records[0].rec_type == "warcinfo"
    assert b"crawler-job: job.db" in records[0].payload
    assert all(r.rec_headers.protocol == "WARC/1.1" for r in records)
    fetches = [r for r in records if r.rec_type in ("response", "revisit")]
    requests = {r.rec_headers.get_header("WARC-Concurrent-To"): r for r in records if r.rec_type == "request"}
    assert len(fetches) == len(requests) == 6
    exported = {r["url"]: r for r in json.loads("[" + ",".join(crawled.export().stdout.splitlines()) + "]")}
    for record in fetches:
        uri = record.rec_headers.get_header("WARC-Target-URI")
        assert record.rec_headers.get_header("WARC-Date") == exported[uri]["fetched_at"]
        assert record.rec_headers.get_header("WARC-IP-Address") == "127.0.0.1"
        request = requests[record.rec_headers.get_header("WARC-Record-ID")]
        assert request.rec_headers.get_header("WARC-Target-URI") == uri
        assert request.http_headers.protocol == "GET"
        assert request.http_headers.get_header("User-Agent").startswith("crawler/")
        assert request.http_headers.get_header("Host") == f"127.0.0.1:{crawled.site.port}"

    by_uri = {r.rec_headers.get_header("WARC-Target-URI"): r for r in fetches}
    url = crawled.site.url
    assert by_uri[url("/b")].payload == routes()["/b"].body            # byte for byte what was served
    assert by_uri[url("/missing")].http_headers.get_statuscode() == "404"
    # /a and /same serve one payload: whichever was fetched second is a revisit of the first
    pair = [by_uri[url("/a")], by_uri[url("/same")]]
    original, revisit = sorted(pair, key=lambda r: r.rec_type == "revisit")
    assert (original.rec_type, revisit.rec_type) == ("response", "revisit")
    assert original.payload == SAME.body
    assert revisit.rec_headers.get_header("WARC-Profile").endswith("/revisit/identical-payload-digest")
    assert revisit.rec_headers.get_header("WARC-Refers-To-Target-URI") == original.rec_headers.get_header("WARC-Target-URI")
    assert revisit.rec_headers.get_header("WARC-Refers-To-Date") == original.rec_headers.get_header("WARC-Date")
    assert (revisit.rec_headers.get_header("WARC-Payload-Digest")
            == original.rec_headers.get_header("WARC-Payload-Digest"))


@pytest.mark.parametrize("transport", ["aiohttp", "httpcore"])
def test_a_warc_response_record_says_the_http_version_the_server_answered_in(tmp_path: Path, transport: str) -> None:
    page = html("An old server").body
    answer = b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s" % (len(page), page)
    cli = CLI(tmp_path)
    with Site({"/": Wire(answer)}) as site:
        done = cli.in_process("crawl", site.url("/"), "--db", "job.db", *FAST, env={"CRAWLER_TRANSPORT": transport})
        assert done.returncode == 0, done.stderr
    assert cli.in_process("export", "--db", "job.db", "--format", "warc", "--out", "old.warc").returncode == 0
    records = warc_records(tmp_path / "old.warc")
    (response,) = [r for r in records if r.rec_type == "response"]
    (request,) = [r for r in records if r.rec_type == "request"]
    assert (response.http_headers.protocol, response.http_headers.get_statuscode()) == ("HTTP/1.0", "200")
    assert response.payload == page
    assert request.http_headers.statusline == "/ HTTP/1.1"   # the crawler asked in HTTP/1.1 all the same


def test_a_gzip_encoded_response_is_archived_decoded_with_headers_that_say_so(crawled: Crawled) -> None:
    crawled.export("--format", "warc", "--out", "gz.warc")
    (record,) = [r for r in warc_records(crawled.folder / "gz.warc")
                 if r.rec_type == "response" and r.rec_headers.get_header("WARC-Target-URI") == crawled.site.url("/gz")]
    headers = record.http_headers
    assert headers.get_header("Content-Encoding") is None
    assert headers.get_header("X-Archive-Orig-Content-Encoding") == "gzip"
    assert headers.get_header("Content-Length") == str(len(GZ_PAGE.body))
    assert headers.get_header("X-Archive-Orig-Content-Length") == str(len(gzip.compress(GZ_PAGE.body)))
    assert record.payload == GZ_PAGE.body     # what a replay tool serves: the page, not gzip bytes


def test_warc_gz_compresses_each_record_as_its_own_member(crawled: Crawled) -> None:
    crawled.export("--format", "warc", "--out", "job.warc.gz")
    path = crawled.folder / "job.warc.gz"
    data = path.read_bytes()
    members = 0
    while data:
        member = zlib.decompressobj(16 + zlib.MAX_WBITS)
        member.decompress(data)
        assert member.eof
        data = member.unused_data
        members += 1
    records = warc_records(path)
    assert members == len(records) == 1 + 6 * 2
    assert warcio_check(path) == 0


def test_warc_and_links_stream_to_standard_output(crawled: Crawled) -> None:
    done = subprocess.run(cli_command("export", "--db", crawled.db, "--format", "warc", "--out", "-"),
                          capture_output=True, cwd=crawled.folder, env=cli_env(), check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(b"WARC/1.1\r\n")
    assert len([r for r in warc_records(done.stdout) if r.rec_type == "request"]) == 6


# -- filters ----------------------------------------------------------------------------------


def test_status_codes_and_classes_filter_every_format(crawled: Crawled) -> None:
    def urls(*args: str) -> list[str]:
        return sorted(json.loads(line)["url"].removeprefix(crawled.site.origin)
                      for line in crawled.export(*args).stdout.splitlines())

    assert urls("--status", "404") == ["/missing"]
    assert urls("--status", "4xx") == ["/missing"]
    assert urls("--status", "2XX", "--status", "404") == ["/", "/a", "/b", "/gz", "/missing", "/same"]
    assert urls("--status", "5xx") == []
    assert urls("--since", "2999-01-01") == []
    links = crawled.export("--format", "links", "--status", "404").stdout.splitlines()
    assert links == ["source,target,nofollow,anchor,kind"]       # the 404 page has no links
    crawled.export("--format", "warc", "--status", "404", "--out", "404.warc")
    assert [r.rec_type for r in warc_records(crawled.folder / "404.warc")] == ["warcinfo", "response", "request"]


@pytest.mark.parametrize(("args", "says"), [
    (("--status", "abc"), "bad --status 'abc'"),
    (("--status", "6xx"), "bad --status '6xx'"),
    (("--status", "99"), "bad --status '99'"),
    (("--format", "parquet"), "--format parquet needs a file"),
    (("--format", "warc", "--fields", "url"), "--fields applies to csv, jsonl, parquet, not to warc"),
    (("--format", "pdf"), "unknown format 'pdf'"),
])
def test_bad_export_options_are_one_line_and_exit_2(crawled: Crawled, args: tuple[str, ...], says: str) -> None:
    line = crawled.cli.fails(2, "export", "--db", crawled.db, *args)
    assert says in line


# -- refusals ---------------------------------------------------------------------------------


def test_a_job_without_bodies_cannot_be_a_warc(tmp_path: Path, crawled: Crawled) -> None:
    cli = CLI(tmp_path)
    done = cli.in_process("crawl", crawled.site.url("/b"), "--db", "bare.db", "--no-bodies", *FAST)
    assert done.returncode == 0, done.stderr
    line = cli.fails(2, "export", "--db", "bare.db", "--format", "warc", "--out", "bare.warc")
    assert "crawled with --no-bodies" in line
    assert sorted(p.name for p in tmp_path.iterdir() if "warc" in p.name) == []


def test_parquet_without_pyarrow_names_the_install_command(crawled: Crawled, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)          # as if it were not installed
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    done = crawled.cli.in_process("export", "--db", crawled.db, "--format", "parquet", "--out", "none.parquet")
    assert done.returncode == 2
    assert done.stderr.strip() == "crawler: error: --format parquet needs pyarrow: pip install 'crawler[parquet]'"
    assert not [p for p in crawled.folder.iterdir() if "none.parquet" in p.name]


# -- merged jobs --------------------------------------------------------------------------------


def test_merged_jobs_give_one_record_per_url_the_latest_fetch_winning(tmp_path: Path) -> None:
    with Site(routes()) as site:
        cli = CLI(tmp_path)
        assert cli.in_process("crawl", site.url("/"), "--db", "old.db", *FAST).returncode == 0
        time.sleep(1.1)                          # fetch times are to the second
        site.routes["/b"] = html("B, later")
        site.routes["/missing"] = html("Found now")
        # the second job on the other transport, whose peer address is read another way
        done = cli.in_process("crawl", site.url("/"), "--db", "new.db", "--max-pages", "3", *FAST,
                   env={"CRAWLER_TRANSPORT": "httpcore"})
        assert done.returncode == 0, done.stderr
        old = {r["url"]: r for r in cli.export(tmp_path / "old.db")}
        new = {r["url"]: r for r in cli.export(tmp_path / "new.db")}
        assert len(new) == 3

        merged = cli.export(tmp_path / "old.db", "--db", tmp_path / "new.db")
        assert sorted(r["url"] for r in merged) == sorted(old)
        for record in merged:
            assert record == new.get(record["url"], old[record["url"]])
        titles = {r["url"]: r["title"] for r in merged}
        if site.url("/b") in new:
            assert titles[site.url("/b")] == "B, later"
        # the filters judge the winner: an old 404 fetched again as 200 is no longer a 404
        assert ([r["url"] for r in cli.export(tmp_path / "old.db", "--db", tmp_path / "new.db", "--status", "404")]
                == ([] if site.url("/missing") in new else [site.url("/missing")]))
        # the same job twice is one job
        assert len(cli.export(tmp_path / "old.db", "--db", tmp_path / "old.db")) == 6

        # the link graph follows the winning fetch; the WARC keeps every fetch of both
        links = cli.in_process("export", "--db", "old.db", "--db", "new.db", "--format", "links").stdout
        assert len({row.split(",")[0] for row in links.splitlines()[1:]}) == 4   # /, /a, /same, /gz link out
        cli.in_process("export", "--db", "old.db", "--db", "new.db", "--format", "warc", "--out", "both.warc")
        fetches = [r for r in warc_records(tmp_path / "both.warc") if r.rec_type in ("response", "revisit")]
        assert len(fetches) == 6 + 3
        assert {r.rec_headers.get_header("WARC-IP-Address") for r in fetches} == {"127.0.0.1"}


# -- atomic -------------------------------------------------------------------------------------


def big_job(path: Path, pages: int) -> Path:
    """A job file written straight through the schema: ``pages`` pages with 4 KB bodies."""
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    body = zlib.compress(b"".join(b"%06d lorem ipsum dolor sit amet " % n for n in range(110)), 1)
    headers = zlib.compress(b"Content-Type: text/html\r\n")
    conn.executemany("INSERT INTO urls (id, url, host, depth, state) VALUES (?, ?, 'a.test', 0, 2)",
                     ((n, f"http://a.test/{n}") for n in range(1, pages + 1)))
    conn.executemany("INSERT INTO pages (url_id, status, reason_phrase, fetched_at, headers, body, content_hash) "
                     "VALUES (?, 200, 'OK', '2026-11-29T00:00:00Z', ?, ?, ?)",
                     ((n, headers, body, f"h{n}") for n in range(1, pages + 1)))
    conn.commit()
    conn.close()
    return path


def test_a_killed_export_leaves_no_file_under_the_final_name(tmp_path: Path) -> None:
    db = big_job(tmp_path / "big.db", 20_000)
    out = tmp_path / "big.warc.gz"
    proc = subprocess.Popen(cli_command("export", "--db", db, "--format", "warc", "--out", out),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path, env=cli_env())
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if any(p.name.endswith(".part") and p.stat().st_size > 100_000 for p in tmp_path.iterdir()):
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the export finished before it could be killed: the test proves nothing"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")]   # the temporary file, never renamed


def test_an_export_of_a_big_job_streams_with_one_record_per_page(tmp_path: Path, cli: CLI) -> None:
    db = big_job(tmp_path / "big.db", 3_000)
    done = cli.in_process("export", "--db", db, "--format", "warc", "--out", "big.warc")
    assert done.returncode == 0, done.stderr
    records = warc_records(tmp_path / "big.warc")
    assert len(records) == 1 + 3_000           # no request headers stored: a response alone, no revisit
    assert {r.rec_type for r in records[1:]} == {"response"}
