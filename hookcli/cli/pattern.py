"""``hook pattern``: EventBridge pattern matching, offline."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from hookcli.cli import options as o
from hookcli.cli.inputs import open_lines, read_text
from hookcli.errors import InvalidEventError

group = typer.Typer(help="Work with EventBridge event patterns offline.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Attach ``hook pattern`` to the root app."""
    app.add_typer(group, name="pattern")


@group.command("test")
def test(
    pattern: Annotated[str, typer.Argument(help="Pattern: JSON text, @file, or - for stdin.")],
    event: Annotated[
        str | None, typer.Argument(help="Event: JSON text, @file, or - for stdin.")
    ] = None,
    events: Annotated[
        str | None,
        typer.Option("--events", help="A JSONL file of events (or -): one result line each."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help='Print {"match": true|false} lines.')
    ] = False,
    verbose: o.Verbose = False,
    quiet: o.Quiet = False,
) -> None:
    """Test whether EVENT matches PATTERN with EventBridge's exact semantics.

    Prints "match" (exit 0) or "no match" (exit 1); an invalid pattern or event is an error
    (exit 2) with EventBridge's own reason text. With --events, prints one line per event and
    exits 0 if any matched.
    """
    from hookcli.events import load_json_object
    from hookcli.patterns import compile_pattern

    if (event is None) == (events is None):
        raise InvalidEventError("give exactly one of EVENT or --events FILE")
    compiled = compile_pattern(read_text(pattern, "pattern"))
    if event is not None:
        documents = [load_json_object(read_text(event, "event"), "event")]
    else:
        assert events is not None
        documents = [
            load_json_object(line, f"{events} line {n}")
            for n, line in open_lines(events, "--events")
        ]
    results = [compiled.matches(doc) for doc in documents]
    for matched in results:
        line = json.dumps({"match": matched}) if as_json else ("match" if matched else "no match")
        sys.stdout.write(line + "\n")
    raise typer.Exit(0 if any(results) else 1)
