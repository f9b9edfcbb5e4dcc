"""``--out`` (crawler.output): a regular file replaced all or nothing; a FIFO, a device or an open
descriptor written in place, never replaced; a symlink followed to the file it names."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import CLI, cli_command, cli_env
from job_files import small_job

RECORDS = ["http://a.test/0", "http://a.test/1", "http://a.test/2"]


def urls(text: str) -> list[str]:
    return [json.loads(line)["url"] for line in text.splitlines()]


@pytest.mark.parametrize("command", ["export", "report"])
def test_a_fifo_is_written_in_place_and_its_reader_gets_the_output(cli: CLI, tmp_path: Path, command: str) -> None:
    db = small_job(tmp_path / "job.db")
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True, encoding="utf-8")
    try:
        done = cli(command, "--db", db, "--out", fifo)
        assert done.returncode == 0, done.stderr
        received = reader.communicate(timeout=10)[0]
    finally:
        CLI.stop(reader)   # a reader left waiting on a FIFO that was replaced
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    if command == "export":
        assert urls(received) == RECORDS
    else:
        assert received.startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.db", "out.fifo"]


@pytest.mark.parametrize("command", ["export", "report"])
def test_a_symlink_stays_a_link_and_the_file_it_names_gets_the_output(cli: CLI, tmp_path: Path, command: str) -> None:
    db = small_job(tmp_path / "job.db")
    (tmp_path / "kept").mkdir()
    target = tmp_path / "kept" / "latest.out"
    target.write_text("an earlier export\n", encoding="utf-8")
    link = tmp_path / "out"
    link.symlink_to(target)
    done = cli(command, "--db", db, "--out", link)
    assert done.returncode == 0, done.stderr
    assert link.is_symlink()
    assert os.readlink(link) == str(target)
    written = target.read_text(encoding="utf-8")
    if command == "export":
        assert urls(written) == RECORDS
    else:
        assert written.startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == ["latest.out"]   # no temporary file left


def test_a_dangling_symlink_creates_the_file_it_names(cli: CLI, tmp_path: Path) -> None:
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "new.jsonl")
    done = cli("export", "--db", small_job(tmp_path / "job.db"), "--out", link)
    assert done.returncode == 0, done.stderr
    assert link.is_symlink()
    assert urls((tmp_path / "new.jsonl").read_text(encoding="utf-8")) == RECORDS


def test_a_character_device_is_written_and_stays_a_device(cli: CLI, tmp_path: Path) -> None:
    null = tmp_path / "null"
    try:
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))   # what /dev/null is, in a folder of our own
    except PermissionError:
        pytest.skip("making a device node needs root")
    done = cli("export", "--db", small_job(tmp_path / "job.db"), "--out", null)
    assert done.returncode == 0, done.stderr
    assert stat.S_ISCHR(null.lstat().st_mode)


def test_dev_stdout_appends_where_the_shell_points_it(tmp_path: Path) -> None:
    db = small_job(tmp_path / "job.db")
    out = tmp_path / "all.jsonl"
    out.write_text('{"url": "from before"}\n', encoding="utf-8")
    with out.open("ab") as appended:   # crawler export --out /dev/stdout >> all.jsonl
        done = subprocess.run(cli_command("export", "--db", db, "--out", "/dev/stdout"), env=cli_env(),
                              stdout=appended, stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert urls(out.read_text(encoding="utf-8")) == ["from before", *RECORDS]


def test_an_open_descriptor_of_a_pipe_is_written_as_bash_process_substitution_does(tmp_path: Path) -> None:
    db = small_job(tmp_path / "job.db")
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as pipe:
        # crawler export --out >(gzip > f): the shell hands over a pipe as /dev/fd/N
        proc = subprocess.Popen(cli_command("export", "--db", db, "--out", f"/dev/fd/{write_end}"), env=cli_env(),
                                pass_fds=(write_end,), stderr=subprocess.PIPE, text=True)
        os.close(write_end)
        received = pipe.read().decode()
        errors = proc.communicate(timeout=60)[1]
    assert proc.returncode == 0, errors
    assert urls(received) == RECORDS


def test_export_to_a_directory_is_refused_in_one_line(cli: CLI, tmp_path: Path) -> None:
    line = cli.fails(2, "export", "--db", small_job(tmp_path / "job.db"), "--out", tmp_path)
    assert line == f"crawler: error: cannot write {tmp_path}: it is a directory"
