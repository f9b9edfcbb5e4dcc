#!/usr/bin/env python3
"""Scrapy baseline: crawl one site in scope, store url/status/title/description/links as JSON lines.

usage: scrapy_spider.py START_URL OUT.jsonl [CONCURRENCY]

Runs in benchmarks/.venv-scrapy (run.py makes it). Settings: CONCURRENT_REQUESTS and
CONCURRENT_REQUESTS_PER_DOMAIN = CONCURRENCY (default 64), robots.txt obeyed, no delay, no
autothrottle, every HTTP status kept (so 404 pages are records too). LOG=INFO for Scrapy's log.
"""
import os
import sys
from typing import ClassVar
from urllib.parse import urlsplit

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.linkextractors import LinkExtractor


class Site(scrapy.Spider):
    name = "site"
    custom_settings: ClassVar[dict] = {"HTTPERROR_ALLOW_ALL": True}

    def __init__(self, start, **kw):
        super().__init__(**kw)
        self.start_urls = [start]
        self.allowed_domains = [urlsplit(start).hostname]
        self.netloc = urlsplit(start).netloc
        self.le = LinkExtractor()

    def parse(self, response):
        if not isinstance(response, scrapy.http.HtmlResponse):
            return
        links = [link.url for link in self.le.extract_links(response) if urlsplit(link.url).netloc == self.netloc]
        yield {"url": response.url, "status": response.status,
               "title": response.css("title::text").get(),
               "description": response.css('meta[name="description"]::attr(content)').get(),
               "links": links}
        if response.status == 200:
            for u in links:
                yield response.follow(u, self.parse)


if __name__ == "__main__":
    start, out = sys.argv[1], sys.argv[2]
    conc = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    p = CrawlerProcess({
        "FEEDS": {out: {"format": "jsonlines", "overwrite": True}},
        "CONCURRENT_REQUESTS": conc, "CONCURRENT_REQUESTS_PER_DOMAIN": conc,
        "ROBOTSTXT_OBEY": True, "LOG_LEVEL": os.environ.get("LOG", "WARNING"), "TELNETCONSOLE_ENABLED": False,
        "DOWNLOAD_DELAY": 0, "AUTOTHROTTLE_ENABLED": False, "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
    })
    p.crawl(Site, start=start)
    p.start()
