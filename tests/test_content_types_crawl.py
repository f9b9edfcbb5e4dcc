"""Content types end to end, against a loopback server that logs the body bytes it sent: a type not
wanted is never downloaded (judged by extension before any request, or by its header before its
body), and a file that is wanted is stored whole, streamed, and exported byte for byte."""

from __future__ import annotations

import hashlib
import json
import random
import select
import socket
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.site_server import Hit, Raw, Site, html, reply
from tests.test_export_formats import warc_records, warcio_check


class HeldBody(Raw):
    """An answer whose header goes at once and whose body goes only to a client that still holds the
    connection ``hold`` seconds later: one that abandoned the answer after its header has closed it
    by then, and is sent nothing more. ``sent`` logs the body bytes written, by path."""

    def __init__(self, content_type: str, body: bytes, hold: float = 0.3) -> None:
        self.content_type, self.body, self.hold = content_type, body, hold
        self.sent: dict[str, int] = {}
        self._lock = threading.Lock()

    def serve(self, site: Site, hit: Hit, handler: BaseHTTPRequestHandler) -> None:
        handler.wfile.write(f"HTTP/1.1 200 OK\r\nContent-Type: {self.content_type}\r\n"
                            f"Content-Length: {len(self.body)}\r\nConnection: close\r\n\r\n".encode())
        handler.wfile.flush()
        sent = 0
        if not self._client_left(handler.connection):
            try:
                handler.wfile.write(self.body)
                handler.wfile.flush()
                sent = len(self.body)
            except OSError:
                pass
        with self._lock:
            self.sent[hit.path] = self.sent.get(hit.path, 0) + sent

    def _client_left(self, conn: socket.socket) -> bool:
        readable, _, _ = select.select([conn], [], [], self.hold)
        if not readable:
            return False
        try:
            return conn.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True


def explain(cli: Any, db: Path, url: str) -> dict[str, Any]:
    done = cli.in_process("explain", url, "--db", db, "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_rejected_images_are_never_downloaded_judged_by_extension_or_by_header(tmp_path: Path, cli: Any) -> None:
    image = HeldBody("image/png", b"\x89PNG\r\n\x1a\n" + bytes(20_000))
    by_name = [f"/img/{n}.png" for n in range(500)]          # judged by extension: never requested
    by_header = [f"/pic/{n}" for n in range(500)]             # judged by Content-Type: header only
    with Site({"/": html("Gallery", *by_name, *by_header, "/about"), "/about": html("About")}) as site:
        site.routes.update(dict.fromkeys(by_name + by_header, image))
        db = tmp_path / "job.db"
        done = cli.in_process("crawl", site.url("/"), "--db", db, "--no-robots", "--reject-type", "image/*",
                              "--timeout", "10")
        assert done.returncode == 0, done.stderr
        assert sum(site.count(p) for p in by_name) == 0
        assert all(site.count(p) == 1 for p in by_header)
        assert sum(image.sent.values()) == 0, f"{sum(image.sent.values())} image body bytes sent"
        origin = site.origin
    assert {r["url"] for r in cli.export(db)} == {origin + "/", origin + "/about"}
    named = explain(cli, db, origin + "/img/7.png")
    assert (named["decision"], named["fetched"]) == ("type_rejected", False)
    headed = explain(cli, db, origin + "/pic/7")
    assert (headed["decision"], headed["fetched"]) == ("type_rejected", False)
    assert headed["reason"].endswith("image/png matches --reject-type image/*")
    assert cli.stats(db)["queue"]["excluded"] == 1000
    assert explain(cli, db, origin + "/never/linked.gif")["decision"] == "type_rejected"   # the job's rules, run on it


def test_accepting_pdf_keeps_html_and_pdf_and_excludes_other_types(tmp_path: Path, cli: Any) -> None:
    pdf = b"%PDF-1.7\n" + bytes(1000)
    with Site({"/": html("Docs", "/a.pdf", "/b", "/c.zip", "/d", "/e"),
               "/a.pdf": reply(200, pdf, "application/pdf"), "/b": reply(200, pdf, "application/pdf"),
               "/c.zip": reply(200, b"PK", "application/zip"), "/d": reply(200, b"PK", "application/zip"),
               "/e": reply(200, "<p>no type</p>")}) as site:
        db = tmp_path / "job.db"
        done = cli.in_process("crawl", site.url("/"), "--db", db, "--no-robots", "--accept-type", "application/pdf")
        assert done.returncode == 0, done.stderr
        assert site.count("/c.zip") == 0
        origin = site.origin
    pages = cli.export_by_url(db)
    assert set(pages) == {origin + "/", origin + "/a.pdf", origin + "/b"}
    assert pages[origin + "/b"]["content_type"] == "application/pdf"
    assert explain(cli, db, origin + "/c.zip")["decision"] == "type_not_accepted"
    assert explain(cli, db, origin + "/d")["decision"] == "type_not_accepted"
    assert explain(cli, db, origin + "/e")["reason"].endswith(
        "application/octet-stream matches no --accept-type (application/pdf)")


def test_a_big_pdf_is_stored_whole_and_exports_byte_identical_in_a_warc(tmp_path: Path, cli: Any) -> None:
    body = b"%PDF-1.7\n" + random.Random(24).randbytes(6 * 1024 * 1024)   # past the 1 MiB kept in memory
    with Site({"/": html("Docs", "/report.pdf"), "/report.pdf": reply(200, body, "application/pdf")}) as site:
        db = tmp_path / "job.db"
        done = cli.in_process("crawl", site.url("/"), "--db", db, "--no-robots", "--accept-type", "application/pdf")
        assert done.returncode == 0, done.stderr
        url = site.url("/report.pdf")
    assert not (tmp_path / "job.db.spool").exists()   # the spooled file went into the job file
    assert cli.export_by_url(db)[url]["bytes"] == len(body)
    assert cli.in_process("export", "--db", db, "--format", "warc", "--out", tmp_path / "job.warc").returncode == 0
    assert warcio_check(tmp_path / "job.warc") == 0
    (record,) = [r for r in warc_records(tmp_path / "job.warc")
                 if r.rec_type == "response" and r.rec_headers.get_header("WARC-Target-URI") == url]
    assert hashlib.sha256(record.payload).hexdigest() == hashlib.sha256(body).hexdigest()
    assert record.http_headers.get_header("Content-Length") == str(len(body))


def test_the_spool_keeps_nothing_neither_a_body_too_large_nor_one_a_killed_run_left(tmp_path: Path, cli: Any) -> None:
    db = tmp_path / "job.db"
    (tmp_path / "job.db.spool").mkdir()
    (tmp_path / "job.db.spool" / "body-left-by-a-kill").write_bytes(bytes(1000))
    with Site({"/": html("Docs", "/big.bin"),
               "/big.bin": reply(200, bytes(3 * 1024 * 1024), "application/octet-stream")}) as site:
        done = cli.in_process("crawl", site.url("/"), "--db", db, "--no-robots", "--max-bytes", str(2 * 1024 * 1024))
        assert done.returncode == 0, done.stderr
        url = site.url("/big.bin")
    assert cli.export_by_url(db)[url]["error"] == "too_large"
    assert not (tmp_path / "job.db.spool").exists()


def test_a_bad_type_pattern_stops_the_crawl_in_one_line(tmp_path: Path, cli: Any) -> None:
    line = cli.fails(2, "crawl", "http://127.0.0.1:9/", "--db", tmp_path / "job.db", "--reject-type", "images")
    assert line == ("crawler: error: bad reject_type (--reject-type) 'images': "
                    "give a media type such as application/pdf or image/*")
    assert not (tmp_path / "job.db").exists()


def test_a_recrawl_replaces_a_stored_file_and_a_304_keeps_it(tmp_path: Path, cli: Any) -> None:
    first, second = (b"%PDF-1.7\n" + random.Random(seed).randbytes(2 * 1024 * 1024) for seed in (1, 2))
    db = tmp_path / "job.db"
    with Site({"/": html("Docs", "/a.pdf", "/b.pdf"), "/a.pdf": reply(200, first, "application/pdf"),
               "/b.pdf": reply(200, first, "application/pdf", Last_Modified="Mon, 01 Jun 2026 00:00:00 GMT")}) as site:
        assert cli.in_process("crawl", site.url("/"), "--db", db, "--no-robots").returncode == 0
        site.routes["/a.pdf"] = reply(200, second, "application/pdf")
        site.routes["/b.pdf"] = reply(304, b"")
        done = cli.in_process("crawl", "--db", db, "--recrawl")
        assert done.returncode == 0, done.stderr
        a, b = site.url("/a.pdf"), site.url("/b.pdf")
    from crawler.storage.read import JobReader
    with JobReader(db) as job:
        ids = dict(job.conn.execute("SELECT u.url, u.id FROM urls u"))
        assert b"".join(job.body_chunks(ids[a])) == second
        assert b"".join(job.body_chunks(ids[b])) == first
