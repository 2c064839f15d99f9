"""``hook expect``: wait for matching events in a CI script; exit 0 when they came, 1 when not."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from hookcli.cli import options as o

if TYPE_CHECKING:
    from hookcli.protocol import Start
    from hookcli.updates import Update


def register(app: typer.Typer) -> None:
    """Attach ``hook expect``."""
    app.command("expect")(expect)


def expect(
    source: o.Sources = None,
    detail_type: o.DetailTypes = None,
    pattern: o.PatternOpt = None,
    count: Annotated[
        int, typer.Option("--count", "-n", min=1, help="How many matching events to wait for.")
    ] = 1,
    timeout: Annotated[
        str, typer.Option("--timeout", help="How long to wait: 30s, 2m, or plain seconds.")
    ] = "30s",
    from_: Annotated[
        str,
        typer.Option(
            "--from",
            help="Count events from: now (the default), a sequence number, or an ISO time "
            "(events that arrived before the wait began count too).",
        ),
    ] = "now",
    relay: o.Relay = None,
    token: o.Token = None,
    verbose: o.Verbose = False,
    quiet: o.Quiet = False,
) -> None:
    """Wait until N events matching the filters have arrived, for CI scripts and tests.

    Prints the matching events as JSON lines on stdout as they arrive (status lines go to
    stderr as JSON) and exits as soon as N have matched. Never answers events or moves any
    listener's cursor. Exit 0: N events matched; 1: the timeout passed first (stderr says how
    many matched and what else arrived; the matched ones are printed); 2: bad option or
    pattern; 3: relay not reachable within the timeout; 4: token refused.
    """
    from hookcli.cli.inputs import parse_duration
    from hookcli.cli.listen import run_rendered
    from hookcli.config import resolve
    from hookcli.expect import ExpectSettings
    from hookcli.expect import expect as run

    settings = ExpectSettings(
        connection=resolve(relay, token),
        pattern=o.build_pattern(source, detail_type, pattern),
        count=count,
        timeout=parse_duration(timeout, "--timeout"),
        start=_start(from_),
    )

    async def wait(emit: Callable[[Update], None]) -> None:
        expected = await run(settings, emit)
        if not expected.complete:
            raise expected.error()

    # Always JSON lines: the output is data for the script that waits (`| jq`, `wc -l`).
    run_rendered("tail", True, wait)


def _start(value: str) -> Start:
    """``--from``: now, SEQ or TIME; ``last`` means a listener's cursor, which expect has not."""
    from hookcli.errors import UsageError

    if value == "last":
        raise UsageError(
            "hook expect has no cursor to resume after (--from last)",
            hint="use --from now, a sequence number (`hook events` shows them) or an ISO time",
        )
    return o.parse_start(value)
