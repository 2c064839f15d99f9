"""``hook demo``: the whole loop in one command, on the embedded default."""

from __future__ import annotations

import typer

from hookcli.cli import options as o


def register(app: typer.Typer) -> None:
    """Attach ``hook demo``."""
    app.command("demo")(demo)


def demo(as_json: o.JsonOut = False, verbose: o.Verbose = False, quiet: o.Quiet = False) -> None:
    """A self-contained tour: embedded relay, a sample app, a listener, a failure and a replay.

    No AWS account and no second terminal needed; finishes in seconds. Exit 0 when every event
    ended delivered.
    """
    from hookcli.cli.listen import run_rendered
    from hookcli.demo import demo as run
    from hookcli.errors import DeliveryFailedError

    summary = run_rendered("listen", as_json, lambda emit: run(emit))
    if not summary.ok:
        raise DeliveryFailedError("the demo did not end with every event delivered")
