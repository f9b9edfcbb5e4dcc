"""``python -m crawler`` is ``crawler``."""

from crawler.cli import run

run()
