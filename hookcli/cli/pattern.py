"""``hook pattern``: EventBridge pattern matching, offline."""

from __future__ import annotations

from typing import Annotated

import typer

from hookcli.cli import options as o
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
        typer.Option(
            "--events",
            help="A file of events as `hook send --file` takes it (JSON Lines, a JSON array or "
            "one object; PutEvents entries or EventBridge events), or -: one verdict per event.",
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help='Print {"match": true|false, ...} lines.'),
    ] = False,
    verbose: o.Verbose = False,
    quiet: o.Quiet = False,
) -> None:
    """Test whether EVENT matches PATTERN with EventBridge's exact semantics.

    Prints "match" (exit 0) or "no match" (exit 1); an invalid pattern or event is an error
    (exit 2) with EventBridge's own reason text. With --events, each event is first made into
    what the relay would store after `hook send --file` (PutEvents entries get the envelope
    the bus adds), then one line per event says its line (or entry), verdict, source and
    detail-type; exit 0 if any matched, 1 if none did, 2 if the file or an event is invalid.
    """
    from datetime import UTC, datetime

    from hookcli.cli.inputs import read_documents, read_text
    from hookcli.cli.render import render_verdicts
    from hookcli.events import Document, format_time, load_json_object, new_event_id
    from hookcli.patterns import compile_pattern, load_event
    from hookcli.send import as_stored, is_put_entry

    if (event is None) == (events is None):
        raise InvalidEventError("give exactly one of EVENT or --events FILE")
    compiled = compile_pattern(read_text(pattern, "pattern"))
    now = format_time(datetime.now(UTC))
    if event is not None:
        text = read_text(event, "event")
        document = load_json_object(text, "event")  # a clear error for text that is no object
        if is_put_entry(document):  # a PutEvents entry: test the event the bus makes of it
            document = as_stored(Document("", document), "event", event_id=new_event_id(), time=now)
        else:
            document = load_event(text)  # keys given twice keep every value (issue 11)
        matched = compiled.matches(document)
        render_verdicts([(None, matched, document)], as_json=as_json)
        raise typer.Exit(0 if matched else 1)
    assert events is not None
    stored = [
        (doc, as_stored(doc, events, event_id=new_event_id(), time=now))
        for doc in read_documents(events, "--events")
    ]
    if not stored:
        raise InvalidEventError(f"{events} has no events")
    verdicts = [(doc, compiled.matches(envelope), envelope) for doc, envelope in stored]
    render_verdicts(verdicts, as_json=as_json)
    raise typer.Exit(0 if any(matched for _, matched, _ in verdicts) else 1)
