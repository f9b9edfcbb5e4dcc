"""Peak memory of a crawl that keeps a 100 MB PDF, against the same crawl without it (issue 24).

    .venv/bin/python benchmarks/big_file.py              # 100 MB, 3 alternated pairs
    .venv/bin/python benchmarks/big_file.py --mb 20 --pairs 1 --old /tmp/old-tree

A loopback server (a process of its own, not counted) serves a page linking to
``/report.pdf``: 100 MB of pseudo-random bytes sent in 64 KiB pieces, never held whole. Each crawl
is a subprocess (``python -m crawler crawl``, default ``--workers``); its peak memory is the most
resident memory of its whole process tree (the crawl and its worker processes, summed), sampled
with psutil every 20 ms. "with" keeps the PDF (``--accept-type application/pdf --max-bytes
200000000``), "without" never requests it (``--reject-type application/pdf``). ``--old TREE`` adds
the crawler of that source tree (before issue 24) keeping the PDF with ``--max-bytes 200000000``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import multiprocessing
import multiprocessing.queues
import os
import random
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil

PIECE = 64 * 1024


def pdf_pieces(size: int) -> list[bytes]:
    """The body's distinct pieces: the body is these, repeated, up to ``size``."""
    rng = random.Random(24)
    return [b"%PDF-1.7\n" + rng.randbytes(PIECE - 9)] + [rng.randbytes(PIECE) for _ in range(15)]


def serve(size: int) -> ThreadingHTTPServer:
    pieces = pdf_pieces(size)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path == "/":
                body = b'<!doctype html><title>Docs</title><a href="/report.pdf">report</a>'
                self._head("text/html", len(body))
                self.wfile.write(body)
            elif self.path == "/report.pdf":
                self._head("application/pdf", size)
                sent = 0
                while sent < size:
                    piece = pieces[(sent // PIECE) % len(pieces)][: size - sent]
                    self.wfile.write(piece)
                    sent += len(piece)
            else:
                self._head("text/plain", 0)

        def _head(self, kind: str, length: int) -> None:
            self.send_response(200 if length or self.path == "/" else 404)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(length))
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


def run_server(size: int, ports: multiprocessing.queues.Queue[int]) -> None:
    server = serve(size)
    ports.put(server.server_address[1])
    server.serve_forever()


def peak_of(command: list[str], env: dict[str, str], cwd: str) -> tuple[int, float]:
    """Peak resident bytes of the process tree of ``command``, and its seconds. Run in ``cwd``, away
    from a source tree (``python -m`` puts the current folder before PYTHONPATH)."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    root = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        total = 0
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            tree = []
        for p in tree:
            with contextlib.suppress(psutil.Error):   # a process that ended meanwhile
                total += p.memory_info().rss
        peak = max(peak, total)
        time.sleep(0.02)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"crawl failed ({proc.returncode}): {err[-500:]}")
    return peak, time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--old", help="a source tree of the crawler before issue 24, run as a third variant")
    args = ap.parse_args()
    size = args.mb * 1000 * 1000
    context = multiprocessing.get_context("spawn")
    ports: multiprocessing.queues.Queue[int] = context.Queue()
    server = context.Process(target=run_server, args=(size, ports), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{ports.get(timeout=30)}/"
    variants = {"with": (["--accept-type", "application/pdf", "--max-bytes", "200000000"], None),
                "without": (["--reject-type", "application/pdf"], None)}
    if args.old:
        variants["old, with"] = (["--max-bytes", "200000000"], args.old)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLER_")}
    results: dict[str, list[tuple[int, float]]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as folder:
        for pair in range(args.pairs):
            for name, (flags, tree) in variants.items():
                db = Path(folder) / f"{pair}-{len(results[name])}-{name.replace(', ', '-')}.db"
                run_env = dict(env, PYTHONPATH=tree) if tree else env
                results[name].append(peak_of([sys.executable, "-m", "crawler", "crawl", url, "--db", str(db),
                                              "--no-robots", "--quiet", *flags], run_env, folder))
                if name == "with" and pair == 0:
                    check(db, size)
    server.terminate()
    server.join()
    print(f"machine load: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores; a {args.mb} MB PDF")
    for name, runs in results.items():
        peaks = sorted(p for p, _ in runs)
        print(f"{name:10} peak MiB {' '.join(f'{p / 2**20:.1f}' for p, _ in runs)}  median {peaks[len(peaks) // 2] / 2**20:.1f}"
              f"   seconds {' '.join(f'{s:.1f}' for _, s in runs)}")


def check(db: Path, size: int) -> None:
    """The stored PDF, read back through ``JobReader.body_chunks``, is the one served."""
    from crawler.storage.read import JobReader
    pieces = pdf_pieces(size)
    want = hashlib.sha256()
    sent = 0
    while sent < size:
        piece = pieces[(sent // PIECE) % len(pieces)][: size - sent]
        want.update(piece)
        sent += len(piece)
    with JobReader(db) as job:
        url_id = job.conn.execute("SELECT url_id FROM pages WHERE content_type = 'application/pdf'").fetchone()[0]
        got = hashlib.sha256()
        for chunk in job.body_chunks(url_id):
            got.update(chunk)
    assert got.hexdigest() == want.hexdigest(), "the stored PDF differs from the one served"
    print(f"stored PDF: {size:,} bytes, sha256 {got.hexdigest()[:16]}... matches")


if __name__ == "__main__":
    main()
