"""``hook send``: put test events on the bus (the relay's emulated one, or an AWS bus)."""

from __future__ import annotations

from typing import Annotated

import typer

from hookcli.cli import options as o


def register(app: typer.Typer) -> None:
    """Attach ``hook send``."""
    app.command("send")(send)


def send(
    source: Annotated[
        str | None, typer.Option("--source", help="The event's source, e.g. shop.orders.")
    ] = None,
    detail_type: Annotated[
        str | None,
        typer.Option("--detail-type", help="The event's detail-type, e.g. OrderCreated."),
    ] = None,
    detail: Annotated[
        str, typer.Option("--detail", help="The detail object: JSON text, @file or -.")
    ] = "{}",
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            "-f",
            help="JSONL: an event per line (PutEvents entry or EventBridge event); - for stdin.",
        ),
    ] = None,
    bus: Annotated[
        str | None,
        typer.Option(
            "--bus",
            envvar="HOOK_BUS",
            help="Put on this AWS bus directly (boto3's credential chain) instead of the relay's.",
            show_default=False,
        ),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            "--region", envvar="AWS_REGION", help="AWS region for --bus.", show_default=False
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile", envvar="AWS_PROFILE", help="AWS profile for --bus.", show_default=False
        ),
    ] = None,
    as_json: o.JsonOut = False,
    verbose: o.Verbose = False,
    quiet: o.Quiet = False,
    relay: o.Relay = None,
    token: o.Token = None,
) -> None:
    """Put events on the bus: one from --source/--detail-type/--detail, or many from --file.

    Without --bus, asks the relay (/v1/info) which bus it serves; a local relay's emulated bus
    makes events travel the real path (PutEvents -> rule -> SQS -> relay). Prints each event id.
    Exit 1 if any entry was rejected (each is reported), 3 if no relay answers.
    """
    import asyncio

    from hookcli.cli.inputs import open_lines, read_text
    from hookcli.cli.render import render_sent
    from hookcli.errors import DeliveryFailedError, UsageError
    from hookcli.send import entries_from_lines, entry_from, resolve_target
    from hookcli.send import send as put

    if file is not None and (source or detail_type):
        raise UsageError("--file and --source/--detail-type exclude each other")
    if file is None and not (source and detail_type):
        raise UsageError("give --source and --detail-type (and --detail), or --file events.jsonl")
    if file is not None:
        entries = entries_from_lines(open_lines(file, "--file"), file)
    else:
        from hookcli.events import load_json_object

        body = load_json_object(read_text(detail, "--detail"), "--detail")
        entries = [
            entry_from({"source": source, "detail-type": detail_type, "detail": body}, "event")
        ]
    if not entries:
        raise UsageError(f"{file} has no events")
    target = asyncio.run(resolve_target(relay, token, bus, region, profile))
    results = render_sent(target, entries, put, as_json=as_json, level=o.level())
    rejected = [r for r in results if not r.ok]
    if rejected:
        raise DeliveryFailedError(
            f"{len(rejected)} of {len(results)} events were rejected by EventBridge",
            hint="each rejected entry is listed above with EventBridge's reason",
        )
