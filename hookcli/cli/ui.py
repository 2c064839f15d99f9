"""``hook ui``: the full-screen view of a relay's events; also runs ``hook listen --ui``.

Textual is imported only inside these commands, so ``hook --version`` stays fast.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from hookcli.cli import options as o

if TYPE_CHECKING:
    from hookcli.ui.app import HookApp


def register(app: typer.Typer) -> None:
    """Attach ``hook ui``."""
    app.command("ui")(ui)


def require_terminal(command: str, instead: str) -> None:
    """The view needs a terminal on stdin and stdout; scripts get a hint at the plain command."""
    if sys.stdin.isatty() and sys.stdout.isatty():
        return
    from hookcli.errors import UsageError

    raise UsageError(
        f"{command} needs a terminal (stdin and stdout are not both one)",
        hint=f"for scripts and pipes use {instead}",
    )


def run_app(app: HookApp) -> None:
    """Run the view; raise the error that ended it, or exit 130 after Ctrl-C."""
    from hookcli.cli.listen import run_async

    run_async(app.run_async())
    if app.error is not None:
        raise app.error
    if app.exit_code:
        raise typer.Exit(app.exit_code)


def ui(
    status: Annotated[
        str | None,
        typer.Option("--status", help="Show only delivered, failed or pending events."),
    ] = None,
    listener: Annotated[
        str | None,
        typer.Option("--listener", help="Show this listener's results (others' are left out)."),
    ] = None,
    source: o.Sources = None,
    detail_type: o.DetailTypes = None,
    pattern: o.PatternOpt = None,
    since: Annotated[
        str | None, typer.Option("--since", help="History from this ISO time on.")
    ] = None,
    limit: Annotated[
        int,
        typer.Option("--limit", "-n", min=1, max=1000, help="How many past events to load."),
    ] = 200,
    relay: o.Relay = None,
    token: o.Token = None,
) -> None:
    """Browse, inspect and replay the relay's events in a full-screen view, live.

    Events (newest at the bottom, followed), Details (enter or d), Issues (i or tab: failures
    grouped by cause). Keys: r replay, y copy id, / filter (text, status:failed, or an
    EventBridge pattern), ? all keys, q quit. Needs a terminal; scripts use `hook events
    --json`. Exit 0 on q, 130 on Ctrl-C, 143 on SIGTERM, 3 when the relay cannot be reached, 4
    token refused.
    """
    import json

    from hookcli.config import resolve
    from hookcli.errors import UsageError

    require_terminal("hook ui", "`hook events --json` (and `hook events show ID --json`)")
    if status not in (None, "delivered", "failed", "pending"):
        raise UsageError(f"--status must be delivered, failed or pending, not {status!r}")
    combined = o.build_pattern(source, detail_type, pattern)
    connection = resolve(relay, token)
    from hookcli.ui.app import ui_app
    from hookcli.ui.feed import RelayQuery

    query = RelayQuery(
        pattern=combined,
        filters={
            "listener": listener,
            "pattern": json.dumps(combined) if combined else None,
            "since": since,
            # pending is per listener at the relay; without one it is judged here.
            "status": status if status != "pending" or listener else None,
        },
        listener=listener,
        limit=limit,
    )
    run_app(ui_app(connection, query, me=o.default_name(), status=status or ""))
