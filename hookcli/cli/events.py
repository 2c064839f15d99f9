"""``hook events``: the relay's history (what arrived, who got it, with what result)."""

from __future__ import annotations

from typing import Annotated

import typer

from hookcli.cli import options as o

group = typer.Typer(
    help="Show the relay's history: what arrived, who got it, with what result.",
    invoke_without_command=True,
)


def register(app: typer.Typer) -> None:
    """Attach ``hook events``."""
    app.add_typer(group, name="events")


@group.callback()
def events(
    ctx: typer.Context,
    issues: Annotated[
        bool,
        typer.Option(
            "--issues",
            help="Failures grouped by cause (listener, target, status or exit code, first line"
            " of the error), oldest group first: count, first and last seen, newest example."
            " `hook replay --issue N` replays a group.",
        ),
    ] = False,
    status: Annotated[
        str | None,
        typer.Option("--status", help="delivered, failed or pending (pending needs --listener)."),
    ] = None,
    listener: Annotated[
        str | None, typer.Option("--listener", help="Only this listener's deliveries.")
    ] = None,
    source: o.Sources = None,
    detail_type: o.DetailTypes = None,
    pattern: o.PatternOpt = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Received at or after this ISO time (with --issues: failures recorded since).",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            "-n",
            min=1,
            max=1000,
            help="At most this many events (default 20; with --issues, groups: default all).",
            show_default=False,
        ),
    ] = None,
    wide: Annotated[
        bool,
        typer.Option("--wide", "-w", help="Full ids, dates and results (wider than 80 columns)."),
    ] = False,
    as_json: o.JsonOut = False,
    verbose: o.Verbose = False,
    quiet: o.Quiet = False,
    relay: o.Relay = None,
    token: o.Token = None,
) -> None:
    """List recent events, newest first, with each listener's result.

    Ids are shortened to 8 characters; every command that takes an id accepts them.
    With --issues: the current failures grouped by cause instead (a group shrinks as its
    events succeed; `hook replay --issue N` replays one).
    """
    if ctx.invoked_subcommand is not None:
        ctx.obj = (relay, token, as_json)
        return
    import asyncio
    import json

    from hookcli.cli.render import render_history
    from hookcli.client import RelayApi
    from hookcli.config import resolve
    from hookcli.errors import UsageError

    if issues:
        filters: dict[str, object] = {"listener": listener, "since": since, "limit": limit}
        return _issues(filters, status, pattern, source, detail_type, wide, as_json, relay, token)
    if status not in (None, "delivered", "failed", "pending"):
        raise UsageError(f"--status must be delivered, failed or pending, not {status!r}")
    if status == "pending" and not listener:
        raise UsageError("--status pending needs --listener NAME", hint="pending is per listener")
    sources, detail_types = source or [], detail_type or []
    # One value uses the relay's index; repeats (any of them) and --pattern go in as a pattern.
    several = len(sources) > 1 or len(detail_types) > 1
    combined = o.build_pattern(
        sources if several else None, detail_types if several else None, pattern
    )
    filters = {
        "status": status,
        "listener": listener,
        "source": None if several or not sources else sources[0],
        "detail_type": None if several or not detail_types else detail_types[0],
        "pattern": json.dumps(combined) if combined else None,
        "since": since,
        "limit": limit or 20,
    }
    connection = resolve(relay, token)

    async def fetch() -> list[dict[str, object]]:
        async with RelayApi.open(connection) as api:
            return await api.events(**filters)

    render_history(asyncio.run(fetch()), as_json=as_json, wide=wide, me=o.default_name())


def _issues(
    filters: dict[str, object],
    status: str | None,
    pattern: str | None,
    sources: list[str] | None,
    detail_types: list[str] | None,
    wide: bool,
    as_json: bool,
    relay: str | None,
    token: str | None,
) -> None:
    """``hook events --issues``: the relay's failure groups (``GET /v1/issues``), rendered."""
    import asyncio

    from hookcli.cli.render import render_issues
    from hookcli.client import RelayApi
    from hookcli.config import resolve
    from hookcli.errors import UsageError

    if status is not None or pattern is not None:
        raise UsageError(
            "--issues lists failures by cause: it takes no --status or --pattern",
            hint="filter with --listener, one --source, one --detail-type, --since, --limit",
        )
    if len(sources or []) > 1 or len(detail_types or []) > 1:
        raise UsageError("--issues takes one --source and one --detail-type")
    filters["source"] = sources[0] if sources else None
    filters["detail_type"] = detail_types[0] if detail_types else None
    connection = resolve(relay, token)

    async def fetch() -> list[dict[str, object]]:
        async with RelayApi.open(connection) as api:
            return await api.issues(**filters)

    render_issues(asyncio.run(fetch()), as_json=as_json, wide=wide, me=o.default_name())


@group.command("show")
def show(
    ctx: typer.Context,
    event_id: Annotated[
        str,
        typer.Argument(help="The event id, or a unique prefix of it (as hook prints ids)."),
    ],
    as_json: o.JsonOut = False,
    verbose: o.Verbose = False,
    quiet: o.Quiet = False,
    relay: o.Relay = None,
    token: o.Token = None,
) -> None:
    """Print one event (and its raw webhook request) with every delivery attempt."""
    import asyncio

    from hookcli.cli.render import render_event_record
    from hookcli.client import RelayApi
    from hookcli.config import resolve

    parent_relay, parent_token, parent_json = ctx.obj or (None, None, False)
    connection = resolve(relay or parent_relay, token or parent_token)

    async def fetch() -> dict[str, object]:
        async with RelayApi.open(connection) as api:
            return await api.event(event_id)

    render_event_record(asyncio.run(fetch()), as_json=as_json or parent_json)
