"""Plain-text ``--help`` for the commands: arguments named by their metavar (``URL...``, not typer's
``urls... <list[str]>``)."""

from __future__ import annotations

import typer
from typer.core import TyperCommand


class PlainHelp(TyperCommand):
    """A command whose help names its arguments as its usage line does."""

    def format_options(self, ctx: typer._click.Context, formatter: typer._click.HelpFormatter) -> None:
        arguments, options = [], []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument" and not getattr(param, "hidden", False):
                name = (param.metavar or (param.name or "").upper()) + ("..." if param.nargs == -1 else "")
                arguments.append((name, getattr(param, "help", None) or ""))
            elif (record := param.get_help_record(ctx)) is not None:
                options.append(record)
        if arguments:
            with formatter.section("Arguments"):
                formatter.write_dl(arguments)
        if options:
            with formatter.section("Options"):
                formatter.write_dl(options)
