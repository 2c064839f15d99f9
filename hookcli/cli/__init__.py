"""The ``hook`` command: the one error boundary, and the root app loaded only when needed.

``hook --version`` answers here without importing typer; the Typer app (``hookcli.cli.root``)
lists its commands from a static table and imports a command's module only to run it or show
its help. Command modules import nothing heavy at module level (boto3, aiohttp, moto,
websockets, rich and hook's own adapters load inside the command that uses them).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from hookcli import __version__
from hookcli.errors import HookError

if TYPE_CHECKING:
    from hookcli.cli.root import app as app

EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 no match / a delivery failed / expect timed out; "
    "2 bad usage, pattern or event; "
    "3 relay unreachable or protocol error; 4 auth refused; 5 not found; 6 AWS source error; "
    "7 store error; 8 target setup error; 130 interrupted (Ctrl-C); 143 terminated (SIGTERM)."
)

#: The root options a ``--version`` may stand beside: it is eager, so with only these its
#: answer is the version whatever else they say, and ``main`` can give it without typer.
_VERSION_ARGS = frozenset({"--version", "--debug", "--verbose", "-v", "--quiet", "-q"})


class _ReaderLeft(Exception):
    """Our stdout's reader went away (``hook tail | head``): not an error."""


class _State:
    """Process-wide flags set by the root callback (only ``--debug`` today)."""

    debug = False


def __getattr__(name: str) -> Any:
    """``hookcli.cli.app``: the Typer app, imported on first use (tests run it in CliRunner)."""
    if name == "app":
        from hookcli.cli.root import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _report(exc: HookError) -> int:
    sys.stderr.write(f"Error: {exc.message}\n")
    if exc.hint:
        sys.stderr.write(f"Hint: {exc.hint}\n")
    if _State.debug:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    return exc.exit_code


def main(argv: list[str] | None = None) -> None:
    """Run ``hook``; the single place that turns errors into messages and exit codes."""
    args = sys.argv[1:] if argv is None else argv
    if "--version" in args and _VERSION_ARGS.issuperset(args):
        # What the root's eager --version prints, without importing typer and the app.
        sys.stdout.write(f"hook {__version__}\n")
        sys.exit(0)
    import typer

    from hookcli.cli.root import app

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
