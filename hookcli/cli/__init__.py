"""The ``hook`` command: Typer app, one module per command group, and the one error boundary.

Command modules import nothing heavy at module level (boto3, aiohttp, moto, websockets and rich
load inside the command that uses them), so ``hook --version`` and ``hook --help`` stay fast.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Annotated, Any

import typer
import typer.core

from hookcli import __version__
from hookcli.cli import options
from hookcli.errors import HookError

EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 no match / a delivery failed / expect timed out; "
    "2 bad usage, pattern or event; "
    "3 relay unreachable or protocol error; 4 auth refused; 5 not found; 6 AWS source error; "
    "7 store error; 8 target setup error; 130 interrupted (Ctrl-C); 143 terminated (SIGTERM)."
)


class _ReaderLeft(Exception):
    """Our stdout's reader went away (``hook tail | head``): not an error."""


class _Group(typer.core.TyperGroup):
    """The root group; it lifts EPIPE past Typer, which would turn it into exit 1, and starts
    each run at the default output level."""

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
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class _State:
    """Process-wide flags set by the root callback (only ``--debug`` today)."""

    debug = False


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


def _register() -> None:
    """Attach every command group; each module keeps its heavy imports inside its commands."""
    from hookcli.cli import (
        demo,
        events,
        expect,
        listen,
        pattern,
        relay,
        replay,
        send,
        transform,
        ui,
    )

    listen.register(app)
    expect.register(app)
    replay.register(app)
    send.register(app)
    events.register(app)
    relay.register(app)
    pattern.register(app)
    transform.register(app)
    demo.register(app)
    ui.register(app)


_register()


def _report(exc: HookError) -> int:
    sys.stderr.write(f"Error: {exc.message}\n")
    if exc.hint:
        sys.stderr.write(f"Hint: {exc.hint}\n")
    if _State.debug:
        traceback.print_exception(exc, file=sys.stderr)
    return exc.exit_code


def main(argv: list[str] | None = None) -> None:
    """Run ``hook``; the single place that turns errors into messages and exit codes."""
    try:
        code = app(args=argv, prog_name="hook", standalone_mode=False)
        if code == 130:  # Typer turns Ctrl-C inside a command into Exit(130)
            sys.stderr.write("Interrupted.\n")
    except HookError as exc:
        code = _report(exc)
    except (KeyboardInterrupt, typer.Abort):
        sys.stderr.write("Interrupted.\n")
        code = 130
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.TyperException as exc:  # usage errors: shown with the usage line, exit 2
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            sys.stderr.write(f"Error: {exc.format_message()}\n")
        code = exc.exit_code
    except (BrokenPipeError, _ReaderLeft):
        # `hook tail | head`: the reader left. Exit 0, and point stdout at /dev/null so the
        # interpreter's final flush cannot fail on the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code if isinstance(code, int) else 0)
