"""Extraction in the job file and out of it: what the parse stage extracted is stored with the page,
exported in JSON lines, CSV and Parquet, run again over stored bodies all or nothing, and an old job
reads as it did."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import CLI

from crawler import export
from crawler.errors import StorageError
from crawler.export.base import FIELDS, Selection
from crawler.models import Extracted, FrontierItem, PageRecord
from crawler.storage import extracted, extracted_read
from crawler.storage.jobfile import JobFile
from crawler.storage.pages import PageStore
from crawler.storage.read import JobReader
from crawler.storage.schema import SCHEMA, SCHEMA_VERSION

PRODUCT = Extracted(
    page_type="product",
    data={"heading": "Widget", "price": 9.5, "count": 3, "in_stock": True, "tags": ["red", "small"],
          "published": "2026-11-01T09:30:00+00:00"},
    jsonld=({"@context": "https://schema.org", "@type": "Product", "name": "Widget", "offers": {"price": "9.50"}},),
    opengraph={})
ARTICLE = Extracted(
    page_type="product",
    data={"heading": "A post", "price": None, "count": None, "in_stock": False, "tags": [], "published": None},
    empty=("price", "count", "published"),
    jsonld=(), opengraph={"og:title": "A post", "og:type": "article", "twitter:card": "summary"})
BROKEN = Extracted(
    page_type="product",
    data={"heading": "Broken", "price": None, "count": None, "in_stock": None, "tags": ["x"], "published": None},
    empty=("price", "in_stock", "published"), bad_type=("count",),
    error="extract_missing", error_message="required field price matched nothing",
    jsonld=(), jsonld_error="JSON-LD block 1 is not JSON: Expecting ',' delimiter: line 1 column 12", opengraph={})
BODY = b"<html lang=en><body><nav>menu</nav><h1>Widget</h1><p>A small red widget.</p></body></html>"


def record(url_id: int, e: Extracted | None, *, status: int = 200, at: str = "2026-11-29T00:00:00Z",
           **more: Any) -> PageRecord:
    if e is None:
        return PageRecord(url_id, 0, at, status=status, error="http_error" if status >= 400 else None, **more)
    return PageRecord(url_id, 0, at, final_url=f"http://a.test/{url_id}", status=status, content_type="text/html",
                      title=f"page {url_id}", h1=e.data.get("heading"), lang="en", word_count=5, extracted=e,
                      body=BODY, headers=(("Content-Type", "text/html; charset=utf-8"),), **more)


def stored(path: Path, records: list[PageRecord]) -> Path:
    async def go() -> None:
        async with JobFile(path) as job:
            pages = PageStore(job)
            await pages.remember([FrontierItem(r.url_id, f"http://a.test/{r.url_id}", 0, host="a.test") for r in records])
            await pages.store(records)
    asyncio.run(go())
    return path


def three_pages(path: Path) -> Path:
    return stored(path, [record(1, PRODUCT, at="2026-11-29T00:00:01Z"), record(2, ARTICLE, at="2026-11-29T00:00:02Z"),
                         record(3, BROKEN, at="2026-11-29T00:00:03Z"), record(4, None, status=404, at="2026-11-29T00:00:04Z")])


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_json_lines_carry_data_jsonld_and_opengraph_of_each_page(tmp_path: Path) -> None:
    db = three_pages(tmp_path / "job.db")
    out = tmp_path / "out.jsonl"
    assert export.write_file(out, "jsonl", [db], Selection()) == 4
    product, article, broken, missing = lines(out)
    assert list(product) == [*FIELDS, "h1", "lang", "word_count", "data", "jsonld", "opengraph"]
    assert product["data"] == PRODUCT.data
    assert product["jsonld"] == list(PRODUCT.jsonld or ())
    assert (product["h1"], product["lang"], product["word_count"]) == ("Widget", "en", 5)
    assert article["opengraph"] == {"og:title": "A post", "og:type": "article", "twitter:card": "summary"}
    assert article["data"]["price"] is None
    assert article["jsonld"] == []
    assert broken["jsonld"] == []
    assert broken["error"] == "extract_missing"
    assert missing["data"] is None
    assert missing["jsonld"] is None
    assert missing["error"] == "http_error"


def test_csv_has_a_column_per_data_field_in_rules_order_with_lists_as_json(tmp_path: Path) -> None:
    db = three_pages(tmp_path / "job.db")
    out = tmp_path / "out.csv"
    export.write_file(out, "csv", [db], Selection())
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    header = list(rows[0])
    assert header[len(FIELDS):] == ["h1", "lang", "word_count", "data.heading", "data.price", "data.count",
                                    "data.in_stock", "data.tags", "data.published", "jsonld", "opengraph"]
    assert rows[0]["data.price"] == "9.5"
    assert rows[0]["data.tags"] == '["red", "small"]'
    assert json.loads(rows[0]["jsonld"])[0]["@type"] == "Product"
    assert json.loads(rows[1]["opengraph"])["og:type"] == "article"
    assert rows[1]["data.price"] == ""
    assert rows[2]["jsonld"] == "[]"
    assert rows[2]["data.tags"] == '["x"]'
    assert rows[3]["data.heading"] == ""
    assert rows[3]["jsonld"] == ""


def test_parquet_types_each_data_column_from_its_values(tmp_path: Path) -> None:
    db = three_pages(tmp_path / "job.db")
    out = tmp_path / "out.parquet"
    export.write_file(out, "parquet", [db], Selection())
    table = pq.read_table(out)
    types = {f.name: f.type for f in table.schema}
    assert types["data.heading"] == pa.string()
    assert types["data.price"] == pa.float64()
    assert types["data.count"] == pa.int64()
    assert types["data.in_stock"] == pa.bool_()
    assert types["data.tags"] == pa.list_(pa.string())
    assert types["data.published"] == pa.string()
    assert types["word_count"] == pa.int64()
    assert types["jsonld"] == pa.string()
    rows = table.to_pylist()
    assert [r["data.price"] for r in rows] == [9.5, None, None, None]
    assert [r["data.in_stock"] for r in rows] == [True, False, None, None]
    assert [r["data.tags"] for r in rows] == [["red", "small"], [], ["x"], None]
    assert rows[0]["data.published"] == "2026-11-01T09:30:00+00:00"
    assert json.loads(rows[0]["jsonld"])[0]["offers"] == {"price": "9.50"}
    assert json.loads(rows[1]["opengraph"])["og:title"] == "A post"
    assert rows[3]["opengraph"] is None


def test_fields_pick_data_fields_builtins_and_the_main_text(tmp_path: Path, cli: CLI) -> None:
    db = three_pages(tmp_path / "job.db")
    done = cli("export", "--db", db, "--fields", "data.heading,url,h1,word_count,lang,text,data.nothing")
    assert done.returncode == 0, done.stderr
    first = json.loads(done.stdout.splitlines()[0])
    assert first == {"data.heading": "Widget", "url": "http://a.test/1", "h1": "Widget", "word_count": 5, "lang": "en",
                     "text": "Widget A small red widget.", "data.nothing": None}
    done = cli("export", "--db", db, "--format", "csv", "--fields", "url,data.tags")
    assert done.stdout.splitlines()[:2] == ["url,data.tags", 'http://a.test/1,"[""red"", ""small""]"']
    done = cli("export", "--db", db, "--fields", "url,datum")
    assert done.returncode == 2
    assert "data.NAME" in done.stderr


def test_merged_jobs_take_the_latest_fetchs_data_and_the_union_of_fields(tmp_path: Path) -> None:
    old = three_pages(tmp_path / "old.db")
    later = Extracted(page_type="doc", data={"heading": "Widget v2", "author": "Ann"})
    new = stored(tmp_path / "new.db", [record(1, later, at="2026-11-30T00:00:00Z")])
    out = tmp_path / "out.csv"
    export.write_file(out, "csv", [old, new], Selection(("url", "data")))
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert list(rows[0]) == ["url", "data.heading", "data.price", "data.count", "data.in_stock", "data.tags",
                             "data.published", "data.author"]
    assert [(r["url"], r["data.heading"], r["data.author"]) for r in rows] == [
        ("http://a.test/1", "Widget v2", "Ann"), ("http://a.test/2", "A post", ""), ("http://a.test/3", "Broken", ""),
        ("http://a.test/4", "", "")]


def schema_5_job(path: Path) -> Path:
    """A job file as schema 5 wrote it: no extracted or bodies table, no column added since."""
    conn = sqlite3.connect(path)
    # The pages table without the columns added after schema 5 (every column after its then last, body).
    schema_5, found = re.subn(r"(\n\s+body BLOB),[^\n]*\n(?:[^\n]*\n)*?\);", r"\1\n);", SCHEMA, count=1)
    assert found == 1
    schema_5 = "\n".join(line for line in schema_5.splitlines() if not line.startswith("ALTER TABLE"))   # references
    conn.executescript(schema_5)
    conn.executescript("DROP TABLE extracted; DROP TABLE bodies; "
                       "UPDATE meta SET value = '5' WHERE key = 'schema_version';"
                       "INSERT INTO urls (id, url, host, depth, state) VALUES (1, 'http://a.test/', 'a.test', 0, 2);"
                       "INSERT INTO pages (url_id, status, title, fetched_at) VALUES (1, 200, 'home', '2026-11-01T00:00:00Z');")
    conn.close()
    return path


def test_a_schema_5_job_migrates_and_exports_as_before(tmp_path: Path) -> None:
    db = schema_5_job(tmp_path / "old.db")
    for fmt in ("jsonl", "csv", "parquet"):
        export.write_file(tmp_path / f"out.{fmt}", fmt, [db], Selection())
    assert list(lines(tmp_path / "out.jsonl")[0]) == list(FIELDS)
    assert (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()[0] == ",".join(FIELDS)
    assert pq.read_table(tmp_path / "out.parquet").column_names == list(FIELDS)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    assert conn.execute("SELECT COUNT(*) FROM extracted").fetchone()[0] == 0
    conn.close()


def values(db: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT e.url_id, e.h1, e.page_type, e.data, e.empty, p.error, p.error_message "
                            "FROM extracted e JOIN pages p USING (url_id) ORDER BY url_id").fetchall()
    finally:
        conn.close()


def test_rules_run_again_replace_the_data_and_the_extraction_error_only(tmp_path: Path) -> None:
    db = three_pages(tmp_path / "job.db")
    stored(db, [record(5, PRODUCT, status=500, error="http_error", error_message="server error")])

    async def go() -> None:
        async with JobFile(db) as job:
            await extracted.replace(job, [(n, Extracted(page_type="v2", data={"title": f"t{n}"})) for n in (1, 3, 5)])
    asyncio.run(go())
    rows = {r[0]: r for r in values(db)}
    assert rows[1][1:] == ("Widget", "v2", '{"title":"t1"}', None, None, None)
    assert rows[3][2:] == ("v2", '{"title":"t3"}', None, None, None)   # its extract_missing is gone
    assert rows[5][5:] == ("http_error", "server error")             # a fetch error stays
    assert rows[2][2] == "product"


def test_rules_run_again_are_all_or_nothing_when_the_batch_fails_midway(tmp_path: Path) -> None:
    db = three_pages(tmp_path / "job.db")
    before = values(db)
    conn = sqlite3.connect(db)   # the third page's update fails, after the first two were written
    conn.execute("CREATE TRIGGER fail BEFORE UPDATE ON extracted WHEN new.url_id = 3 "
                 "BEGIN SELECT RAISE(ABORT, 'disk gone'); END")
    conn.commit()
    conn.close()

    async def go() -> None:
        async with JobFile(db) as job:
            await extracted.replace(job, [(n, Extracted(page_type="v2", data={})) for n in (1, 2, 3)])
    with pytest.raises(StorageError, match="disk gone"):
        asyncio.run(go())
    assert values(db) == before


def test_stored_html_bodies_stream_in_batches_without_other_pages(tmp_path: Path) -> None:
    db = three_pages(tmp_path / "job.db")
    stored(db, [PageRecord(6, 0, "2026-11-29T00:00:06Z", status=200, content_type="image/png", body=b"\x89PNG")])
    with JobReader(db) as job:
        batches = list(extracted_read.html_bodies(job, batch=2))
    assert [[b.url_id for b in batch] for batch in batches] == [[1, 2], [3]]
    first = batches[0][0]
    assert (first.url, first.final_url, first.status, first.body) == ("http://a.test/1", "http://a.test/1", 200, BODY)
    assert first.headers == [("Content-Type", "text/html; charset=utf-8")]


def test_coverage_counts_each_fields_matches_empties_and_type_failures_per_page_type(tmp_path: Path) -> None:
    db = three_pages(tmp_path / "job.db")
    with JobReader(db) as job:
        found = {(c.page_type, c.field): (c.pages, c.matched, c.empty, c.bad_type) for c in extracted_read.coverage(job)}
    assert found[("product", "price")] == (3, 1, 2, 0)
    assert found[("product", "count")] == (3, 1, 1, 1)
    assert found[("product", "heading")] == (3, 3, 0, 0)


RERUN = """
import asyncio, os, sys
from crawler.models import Extracted
from crawler.storage.extracted import Rerun
from crawler.storage.jobfile import JobFile

async def go():
    async with JobFile(sys.argv[1]) as job:
        async with Rerun(job) as run:
            await run.add([(1, Extracted(page_type="v2", data={"title": "new"}))])
            await run.add([(3, Extracted(page_type="v2", data={}))])
            os._exit(9)   # killed before the run ends
asyncio.run(go())
"""


def test_a_rerun_of_the_rules_over_a_job_replaces_every_page_at_its_end_or_none_if_killed(tmp_path: Path) -> None:
    db = three_pages(tmp_path / "job.db")
    before = values(db)
    killed = subprocess.run([sys.executable, "-c", RERUN, str(db)], capture_output=True, text=True, check=False)
    assert killed.returncode == 9, killed.stderr
    assert values(db) == before

    async def go(fail: bool) -> None:
        async with JobFile(db) as job, extracted.Rerun(job) as run:
            await run.add([(1, Extracted(page_type="v2", data={"title": "t1"}))])
            await run.add([(3, Extracted(page_type="v2", data={"title": "t3"}))])
            if fail:
                raise OSError("rules file vanished")
    with pytest.raises(OSError, match="vanished"):
        asyncio.run(go(fail=True))
    assert values(db) == before
    asyncio.run(go(fail=False))
    rows = {r[0]: r for r in values(db)}
    assert rows[1][2:] == ("v2", '{"title":"t1"}', None, None, None)
    assert rows[3][2:] == ("v2", '{"title":"t3"}', None, None, None)   # its extract_missing is gone
    assert rows[2] == before[1]
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'extracted_next'").fetchall() == []
    conn.close()


BIG_RERUN = """
import asyncio, resource, sys
from crawler.models import Extracted
from crawler.storage.extracted import Rerun
from crawler.storage.jobfile import JobFile

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

async def go():
    async with JobFile(sys.argv[1]) as job:
        async with Rerun(job) as run:
            for start in range(0, 30000, 1000):   # 30,000 pages of 1.5 KB values: a 45 MB staging table
                await run.add([(i, Extracted(page_type="p", data={"text": str(i) * (1500 // len(str(i)))}))
                               for i in range(start, start + 1000)])
            staged = peak_mb()
    print(staged, peak_mb())
asyncio.run(go())
"""


def test_the_end_of_a_rerun_holds_no_copy_of_its_staged_values_in_memory(tmp_path: Path) -> None:
    # A staging table dropped in the swap's transaction was journaled in memory, page by page: the
    # end of `crawler extract --db` grew by the size of the whole job's values (82 MB at 20,000 pages).
    done = subprocess.run([sys.executable, "-c", BIG_RERUN, str(tmp_path / "job.db")], capture_output=True,
                          text=True, check=True)
    staged, final = map(float, done.stdout.split())
    assert final - staged < 16, f"peak memory grew from {staged:.0f} MB to {final:.0f} MB at the swap"


def test_a_page_fetched_again_without_extraction_loses_the_old_data(tmp_path: Path) -> None:
    db = three_pages(tmp_path / "job.db")

    async def recrawl() -> None:
        async with JobFile(db) as job:
            await PageStore(job, crawl_pass=2).store([record(1, None, status=404, at="2026-11-30T00:00:00Z")])
    asyncio.run(recrawl())
    out = tmp_path / "out.jsonl"
    export.write_file(out, "jsonl", [db], Selection())
    again = next(r for r in lines(out) if r["url"] == "http://a.test/1")
    assert (again["status"], again["data"], again["h1"], again["jsonld"]) == (404, None, None, None)


def test_a_value_json_cannot_hold_is_null_and_the_job_still_exports(tmp_path: Path) -> None:
    odd = Extracted(page_type="product", data={"heading": "Odd", "price": float("nan"), "count": float("inf")},
                    jsonld=({"@type": "Offer", "price": float("-inf")},))
    db = stored(tmp_path / "job.db", [record(1, odd)])
    out = tmp_path / "out.csv"
    export.write_file(out, "csv", [db], Selection(("url", "data", "jsonld")))
    assert out.read_text(encoding="utf-8").splitlines() == [
        "url,data.heading,data.price,data.count,jsonld", 'http://a.test/1,Odd,,,"[{""@type"": ""Offer"", ""price"": null}]"']
