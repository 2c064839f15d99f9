"""The root ``hook`` command: the Typer app, its options, and the table of its commands.

Commands load on demand: ``hook --help`` lists them from ``COMMANDS`` without importing a
command module, and ``hook CMD ...`` imports and builds only CMD's module (building every
command's options costs as much as importing typer itself).

A new command: a module ``hookcli/cli/NAME.py`` whose ``register(app)`` attaches it, and a row
in ``COMMANDS`` (tests/test_startup.py fails while a module's command has no row).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, MutableMapping
from typing import Annotated, Any, NamedTuple

import typer
import typer.core
import typer.main

from hookcli import __version__
from hookcli.cli import EXIT_CODES_HELP, _ReaderLeft, _State, options


class Entry(NamedTuple):
    """A command's row: the module that registers it, and the first paragraph of its help."""

    module: str
    summary: str


#: Every command, in the order ``hook --help`` lists them (Typer's own order: plain commands,
#: then groups). ``summary`` is the first paragraph of the command's help, word for word: the
#: help lists it (shortened to the terminal's width) without importing the module.
COMMANDS: dict[str, Entry] = {
    "listen": Entry(
        "listen",
        "Deliver matching events to local code: an HTTP server, a command, or a Python handler.",
    ),
    "tail": Entry(
        "listen", "Stream matching events to the terminal (or as JSON lines, ready for jq)."
    ),
    "expect": Entry(
        "expect",
        "Wait until N events matching the filters have arrived, for CI scripts and tests.",
    ),
    "replay": Entry(
        "replay",
        "Deliver stored events again, through the same delivery path and targets as `hook listen`.",
    ),
    "send": Entry(
        "send",
        "Put events on the bus: one from --source/--detail-type/--detail, many from --file, "
        "or a ready-made --sample.",
    ),
    "demo": Entry(
        "demo",
        "A self-contained tour: embedded relay, a sample app, a listener, a failure and a replay.",
    ),
    "events": Entry(
        "events", "Show the relay's history: what arrived, who got it, with what result."
    ),
    "relay": Entry("relay", "Run or remove the relay."),
    "pattern": Entry("pattern", "Work with EventBridge event patterns offline."),
    "transform": Entry(
        "transform", "See the input an EventBridge rule's target would receive, offline."
    ),
    "ui": Entry("ui", "Browse, inspect and replay the relay's events in a full-screen view, live."),
}

#: The app's settings, shared by the per-module apps that build its commands, so a command
#: is built exactly as it would be as part of the root app.
_SETTINGS: dict[str, Any] = {
    "add_completion": False,
    "pretty_exceptions_enable": False,
    "rich_markup_mode": None,
}


def load(module: str) -> dict[str, Any]:
    """The click commands (by name) that ``hookcli.cli.MODULE``'s ``register`` attaches."""
    holder = typer.Typer(**_SETTINGS)
    importlib.import_module(f"hookcli.cli.{module}").register(holder)
    return dict(typer.main.get_group(holder).commands)


class _Commands(MutableMapping[str, Any]):
    """The root's commands by name: the names come from ``COMMANDS``; a command's module is
    imported, and its commands built, on the first lookup of one of them.

    Typer reads ``TyperGroup.commands`` for lookups and for its "Did you mean" suggestions,
    which need only the names.
    """

    def __init__(self) -> None:
        self._built: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            entry = COMMANDS[name]  # KeyError: no such command (Mapping.get answers None)
            self._built.update(load(entry.module))
        return self._built[name]

    def __contains__(self, name: object) -> bool:
        return name in COMMANDS or name in self._built

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*COMMANDS, *self._built]))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __setitem__(self, name: str, command: Any) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._built[name]


class _Group(typer.core.TyperGroup):
    """The root group: commands load on demand; it lifts EPIPE past Typer, which would turn it
    into exit 1, and starts each run at the default output level."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _Commands()

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # the names only: TyperGroup's own would build them all

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The "Commands" section from the table, as TyperGroup writes it from the commands."""
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [
            # A bare command carrying only the summary shortens it as the real one would.
            (name, typer.core.TyperCommand(name, help=entry.summary).get_short_help_str(limit))
            for name, entry in COMMANDS.items()
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def make_context(self, info_name: Any, args: Any, parent: Any = None, **extra: Any) -> Any:
        options.reset_level()  # before any -v/-q on this command line is parsed
        return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise _ReaderLeft() from None


app = typer.Typer(
    name="hook",
    cls=_Group,
    help=(
        "Tunnel cloud events (EventBridge, webhooks) to local code, with nothing lost.\n\n"
        + EXIT_CODES_HELP
    ),
    no_args_is_help=True,
    **_SETTINGS,
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"hook {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar="HOOK_DEBUG",
            help="Show tracebacks and debug logs (never tokens).",
        ),
    ] = False,
    verbose: options.Verbose = False,
    quiet: options.Quiet = False,
) -> None:
    _State.debug = debug
