"""Plain-text ``--help`` for the commands: arguments named by their metavar (``URL...``, not typer's
``urls... <list[str]>``), and a long list of options in panels, as wget's help groups its own.

An option's panel is its typer ``rich_help_panel=`` where it has one, else the panel the command's
table (``CRAWL``) names it in; an option in neither comes last, under "Options", with ``--help``.
"""

from __future__ import annotations

from typing import ClassVar

import typer
from typer.core import TyperCommand

# ``crawler crawl``'s options by panel: panels in the order the help shows them, options as declared.
CRAWL: dict[str, tuple[str, ...]] = {
    "Job": ("seeds", "db", "config_file", "recrawl", "older_than", "due", "wait"),
    "Scope": ("max_depth", "max_pages", "max_pages_per_host", "scope", "allow_domain", "include", "exclude", "sitemaps",
              "accept_type", "reject_type"),
    "Politeness": ("concurrency", "per_host", "delay", "no_robots", "user_agent"),
    "Requests": ("timeout", "retries", "max_bytes", "allow_private", "ca_bundle", "insecure",
                 "login", "cookies"),
    "Parsing": ("parse_mode", "parse_workers", "extract", "plugin", "no_structured_data"),
    "Rendering": ("render", "browser", "render_concurrency", "render_block"),
    "Access": ("header", "auth", "auth_password_env", "auth_scheme", "auth_origin", "proxy", "proxies"),
    "References": ("no_check_references", "check_external", "page_requisites"),
    "Workers & sharing": ("workers", "frontier", "job_name", "lease"),
    "Output": ("no_bodies", "quiet", "metrics", "events"),
}


class PlainHelp(TyperCommand):
    """A command whose help names its arguments as its usage line does, and groups its options in
    the panels of ``panels`` (panel -> option names)."""

    panels: ClassVar[dict[str, tuple[str, ...]]] = {}

    def format_options(self, ctx: typer._click.Context, formatter: typer._click.HelpFormatter) -> None:
        arguments = []
        by_panel: dict[str, list[tuple[str, str]]] = {panel: [] for panel in self.panels}
        table = {name: panel for panel, names in self.panels.items() for name in names}
        for param in self.get_params(ctx):
            if param.param_type_name == "argument" and not getattr(param, "hidden", False):
                name = (param.metavar or (param.name or "").upper()) + ("..." if param.nargs == -1 else "")
                arguments.append((name, getattr(param, "help", None) or ""))
            elif (record := param.get_help_record(ctx)) is not None:
                panel = getattr(param, "rich_help_panel", None) or table.get(param.name or "", "Options")
                by_panel.setdefault(panel, []).append(record)
        if arguments:
            with formatter.section("Arguments"):
                formatter.write_dl(arguments)
        for panel, records in by_panel.items():
            if records:
                with formatter.section(panel):
                    formatter.write_dl(records)


class CrawlHelp(PlainHelp):
    panels = CRAWL
