"""``crawler explain URL --db JOB``: whether a job fetched a URL, and if not, which rule decided.

For a URL the job has seen, the answer comes from what the job recorded: the URL's state, its
exclusion code and detail (the robots.txt line, the trap rule's measure, the SSRF guard's reason),
the page that first linked it, and its latest fetch (status, time, error, duplicate of which URL).
For a URL the job never saw, the same decision functions the crawl uses (``Scope.decide``, the trap
rules, ``AddressPolicy``) are run against the job's stored settings; robots.txt is not fetched
(``explain`` makes no request), so that answer says so.

A fetched page that extraction ran on also shows its page type, the fields that matched nothing
(empty) or failed their type, and its extraction error (``EXTRACTION``): a 200 page is still a 200
page when a required field is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crawler.addresses import AddressPolicy
from crawler.config import Settings
from crawler.content_types import ContentTypes
from crawler.errors import UsageError
from crawler.printable import printable
from crawler.revisit import in_words
from crawler.scope import Scope
from crawler.storage.extracted_read import page_extraction
from crawler.storage.read import JobReader
from crawler.urls import canonicalize, hostname, strip_params

# What each exclusion code means, in words; ``{...}`` names a job setting.
RULES: dict[str, str] = {
    "off_host": "its host is not one of the seeds' hosts (scope host)",
    "off_domain": "it is not on a seed's registrable domain (scope domain)",
    "too_deep": "it is more link hops from a seed than max_depth ({max_depth})",
    "excluded": "it matches an --exclude pattern ({exclude})",
    "not_included": "it matches no --include pattern ({include})",
    "nofollow": "every link to it found so far is rel=nofollow (or on a nofollow page)",
    "robots_disallowed": "robots.txt disallows it for our user agent",
    "host_budget": "its host had reached max_pages_per_host ({max_pages_per_host})",
    "trap_url_length": "a trap rule: it is longer than trap_max_url_length ({trap_max_url_length}) characters",
    "trap_repeated_segment": "a trap rule: a path segment repeats more than trap_max_segment_repeats "
                             "({trap_max_segment_repeats}) times",
    "trap_query_variants": "a trap rule: its path had more than trap_max_query_variants ({trap_max_query_variants}) "
                           "distinct query strings already",
    "trap_pattern_chain": "a trap rule: it continues a chain of more than trap_max_pattern_chain "
                          "({trap_max_pattern_chain}) pages of one URL pattern, each found on the one before",
    "canonical": "a page already fetched names it as its rel=canonical: the two count once",
    "session_guard": "the crawl was logged in (--login, --cookies) and the URL looks like logging out or deleting "
                     "(the login recipe's guard words, or the default list): one request could end the session",
    "type_rejected": "its media type is one --reject-type refuses",
    "type_not_accepted": "its media type is neither HTML nor one --accept-type asks for",
    "not_checked": "it is a page's stylesheet, script, image or other reference, not a page link, and "
                   "check_references is off",
    "blocked_address": "the SSRF guard: the address is private, loopback or reserved, no seed names the host, "
                       "and --allow-private is off",
}

# What the page error codes of extraction mean (recorded on a page that was fetched: never fatal).
EXTRACTION: dict[str, str] = {
    "extract_missing": "a field marked required in the extraction rules has no value on the page",
    "extract_failed": "the extraction plugin (--plugin) failed on the page",
}


def _rule(code: str, settings: dict[str, Any]) -> str:
    text = RULES.get(code, code)
    try:
        return text.format(**{k: v for k, v in settings.items()})
    except (KeyError, IndexError):
        return text.split(" (", 1)[0] if "{" in text else text


def explain(db: str | Path, text: str) -> dict[str, Any]:
    """Why the job ``db`` did or did not fetch the URL ``text``, as plain JSON-ready values:
    ``url``, ``seen``, ``fetched``, ``decision`` (an exclusion or error code, or None), ``reason``
    (one sentence), and what the job recorded (``depth``, ``first_linked_from``, ``page``, ...)."""
    url = canonicalize(text)
    if url is None:
        raise UsageError(f"not an absolute http(s) URL: {text!r}")
    with JobReader(db) as job:
        meta = job.meta()
        stored = dict(meta.get("job_settings") or {})
        names = frozenset(p.lower() for p in stored.get("session_params", Settings().session_params))
        facts = job.url_facts(url)
        if facts is None and strip_params(url, names) != url:
            facts = job.url_facts(strip_params(url, names))
        extraction = page_extraction(job, facts["url"]) if facts is not None and facts["page"] is not None else None
    settings = {f: getattr(Settings(), f) for f in Settings.__dataclass_fields__} | stored
    if facts is None:
        return _unseen(strip_params(url, names), settings, frozenset(meta.get("seed_hosts") or []))
    return _seen(facts, settings) | {"extraction": extraction}


def _seen(facts: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    page, state = facts["page"], facts["state"]
    result = {"url": facts["url"], "seen": True, "fetched": page is not None, "state": state,
              "depth": facts["depth"], "first_linked_from": facts["first_linked_from"],
              "linked_as": facts.get("linked_as"),
              "lastmod": facts["lastmod"], "page": page, "host": facts["host"]}
    if state == "excluded":
        code = facts["exclusion"]
        reason = _rule(code, settings) + (f": {facts['detail']}" if facts["detail"] else "")
        return result | {"decision": code, "reason": f"not fetched: {reason}"}
    if page is not None:
        if page["error"] and page["status"] is None:
            reason = f"fetched, and it failed: {page['error']}" + (
                f" ({page['error_message']})" if page["error_message"] else "")
        else:
            reason = f"fetched: status {page['status']}"
            if page["final_url"] and page["final_url"] != facts["url"]:
                reason += f", redirected to {page['final_url']}"
            if page["duplicate_of"]:
                reason += f"; the same content as {page['duplicate_of']} (stored once as its duplicate)"
            if page["canonical"] and page["canonical"] != facts["url"]:
                reason += f"; its rel=canonical is {page['canonical']}"
            if page["error"] in EXTRACTION:
                reason += f"; then {page['error']}: {EXTRACTION[page['error']]}" + (
                    f" ({page['error_message']})" if page["error_message"] else "")
        return result | {"decision": page["error"], "reason": reason}
    host = facts["host"] or {}
    why = "queued, not fetched yet"
    if host.get("state") == "parked":
        why += f": its host is parked until {host['until']} ({host['reason']})"
    elif host.get("state") == "backoff":
        why += f": its host is backed off ({host['reason']})"
    elif host.get("state") == "budget":
        why = "queued, but its host reached max_pages_per_host"
    return result | {"decision": None, "reason": why}


def _unseen(url: str, settings: dict[str, Any], seed_hosts: frozenset[str]) -> dict[str, Any]:
    """A URL the job never found: what its rules would say, at any depth within max_depth."""
    result: dict[str, Any] = {"url": url, "seen": False, "fetched": False, "state": None, "depth": None,
                              "first_linked_from": None, "lastmod": None, "page": None, "host": None,
                              "extraction": None}
    policy = AddressPolicy(seed_hosts, bool(settings.get("allow_private")))
    refusal = policy.refusal(hostname(url))
    if refusal is not None:
        return result | {"decision": "blocked_address", "reason": f"never found; it would be refused: {refusal}"}
    scope = Scope(settings["scope"], seed_hosts, frozenset(settings.get("allow_domains") or ()),
                  tuple(settings.get("include") or ()), tuple(settings.get("exclude") or ()), -1,
                  int(settings.get("trap_max_url_length") or 0), int(settings.get("trap_max_segment_repeats") or 0),
                  ContentTypes.of(settings.get("accept_type") or (), settings.get("reject_type") or ()))
    code = scope.decide(url, 0)
    if code is not None:
        return result | {"decision": code, "reason": f"never found; it would be excluded: {_rule(code, settings)}"}
    robots = " (robots.txt not consulted: explain makes no request)" if settings.get("robots", True) else ""
    return result | {"decision": None,
                     "reason": f"never found: no page of the job links to it; its rules would allow it{robots}"}


def render(answer: dict[str, Any]) -> str:
    """The answer in a few aligned lines, control characters escaped."""
    lines = [f"url      {answer['url']}", f"verdict  {answer['reason']}"]
    if answer["seen"]:
        found = f"at depth {answer['depth']}"
        linked_as = answer.get("linked_as")
        as_kind = f" (as {_a(linked_as)})" if linked_as and linked_as != "page" else ""
        found += f", first linked from {answer['first_linked_from']}{as_kind}" if answer["first_linked_from"] else \
            (" (a seed)" if answer["depth"] == 0 else " (from a sitemap)" if answer["lastmod"] else "")
        lines.append(f"found    {found}")
    page = answer["page"]
    if page is not None:
        fetched = f"{page['fetched_at']}, status {page['status'] if page['status'] is not None else '-'}"
        fetched += f", error {page['error']}" if page["error"] else ""
        fetched += {"check": " (checked: its status only)", "requisite": " (a page requisite)"}.get(
            page.get("fetched_as") or "page", "")
        fetched += f", pass {page['pass']}" + (f" ({page['earlier_fetches']} earlier versions)"
                                               if page["earlier_fetches"] else "")
        lines.append(f"fetched  {fetched}")
        if page.get("revisit_interval"):   # crawler.revisit: --recrawl --due fetches it again then
            lines.append(f"revisit  every {in_words(page['revisit_interval'])}, next due {page['due_at']}")
        if page.get("rendered"):
            lines.append(f"rendered {page['rendered']}")
    if (extraction := answer.get("extraction")) is not None:
        kind = f"page type {extraction['page_type']}" if extraction["page_type"] is not None else "no page type"
        for what, names in (("empty", extraction["empty"]), ("failed its type", extraction["bad_type"])):
            kind += f"; {what}: {', '.join(names)}" if names else ""
        lines.append(f"extract  {kind}")
    if answer["lastmod"]:
        lines.append(f"lastmod  {answer['lastmod']} (sitemap)")
    return "\n".join(printable(line) for line in lines)   # URLs, redirect targets, error messages: a server's words


def _a(kind: str) -> str:
    """``an image``, ``a stylesheet``."""
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"
