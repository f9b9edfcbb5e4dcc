"""The export stage: the format registry, and files written all or nothing."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from pathlib import Path

import pytest
from job_files import small_job

from crawler import export
from crawler.errors import StorageError
from crawler.export.base import FIELDS, Selection
from crawler.storage.read import JobReader


def test_every_format_is_registered_and_writes_the_interface_fields(tmp_path: Path) -> None:
    db = small_job(tmp_path / "job.db")
    assert set(export.FORMATS) >= {"jsonl", "csv"}
    out = tmp_path / "out.jsonl"
    assert export.write_file(out, "jsonl", [db], Selection()) == 3
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [list(r) for r in records] == [list(FIELDS)] * 3
    assert [r["title"] for r in records] == ["page 0", "page 1", "page 2"]
    out_csv = tmp_path / "out.csv"
    assert export.write_file(out_csv, "csv", [db], Selection(("url", "status"))) == 3
    assert out_csv.read_text(encoding="utf-8").splitlines() == [
        "url,status", "http://a.test/0,200", "http://a.test/1,200", "http://a.test/2,200"]


def test_a_failed_export_leaves_the_earlier_file_and_no_partial_one(tmp_path: Path) -> None:
    good = small_job(tmp_path / "good.db")
    bad = tmp_path / "bad.db"
    conn = sqlite3.connect(bad)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.close()
    out = tmp_path / "out.jsonl"
    out.write_text("an earlier export\n", encoding="utf-8")
    with pytest.raises(StorageError, match="not a crawler job"):
        export.write_file(out, "jsonl", [good, bad], Selection())   # the second job is no job
    assert out.read_text(encoding="utf-8") == "an earlier export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.db", "good.db", "out.jsonl"]


def test_an_export_file_gets_the_usual_permissions(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    export.write_file(out, "jsonl", [small_job(tmp_path / "job.db")], Selection())
    assert out.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    import os
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_merged_export_stopped_halfway_leaves_the_jobs_attached_to_nothing_and_no_scratch_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with JobReader(small_job(tmp_path / "a.db")) as a, JobReader(small_job(tmp_path / "b.db")) as b:
        pages = Selection().pages([a, b])
        assert next(pages)[1].url == "http://a.test/0"
        pages.close()   # a format that failed on its first record
        for reader in (a, b):
            assert [name for _, name, _ in reader.conn.execute("PRAGMA database_list")] == ["main"]
    assert list(scratch.iterdir()) == []
