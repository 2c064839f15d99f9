"""``hook replay``: deliver stored events again through the same targets and retries as listen."""

from __future__ import annotations

from typing import Annotated

import typer

from hookcli.cli import options as o
from hookcli.cli import transform as t
from hookcli.errors import DeliveryFailedError


def register(app: typer.Typer) -> None:
    """Attach ``hook replay``."""
    app.command("replay")(replay)


def replay(
    event_ids: Annotated[
        list[str] | None,
        typer.Argument(
            help="Event ids (or unique prefixes, as listen prints them) to deliver again.",
            show_default=False,
        ),
    ] = None,
    failed: Annotated[
        bool,
        typer.Option(
            "--failed",
            help="Replay the failed deliveries of the listener this command would listen as"
            " (--name, else user@host:TARGET as `hook listen` with the same target).",
        ),
    ] = False,
    issue: Annotated[
        str | None,
        typer.Option(
            "--issue",
            help="Replay every event of this failure group: its number or key as `hook events"
            " --issues` lists them. Without --target/--exec/--handler, to the group's recorded"
            " HTTP target. Each result is recorded for the group's listener, so the group"
            " shrinks as they succeed.",
            show_default=False,
        ),
    ] = None,
    listener: Annotated[
        str | None,
        typer.Option("--listener", help="With --failed: that listener's failures instead."),
    ] = None,
    all_listeners: Annotated[
        bool,
        typer.Option(
            "--all-listeners",
            help="With --failed: every listener's failures (each result recorded for its"
            " listener, with the target it really went to).",
        ),
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="With --failed: failures recorded since this ISO time. With --archive: "
            "archived events from this time (ISO, or 2h / 1d for that long ago).",
        ),
    ] = None,
    archive: Annotated[
        str | None,
        typer.Option(
            "--archive",
            help="Replay this EventBridge archive of the relay's bus onto the relay only "
            "(its own rule; production targets see nothing). Needs --since.",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="With --archive: events up to this time (default: now)."),
    ] = None,
    poll: Annotated[
        float,
        typer.Option("--poll", min=0.1, help="With --archive: seconds between progress checks."),
    ] = 5.0,
    target: o.TargetUrl = None,
    exec_: o.ExecCmd = None,
    handler: o.Handler = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            envvar="HOOK_NAME",
            help="Who replays: results of EVENT_IDs are recorded under this name, and --failed"
            " replays its failures. Default: user@host:TARGET, as `hook listen` names itself.",
            show_default=False,
        ),
    ] = None,
    retries: o.Retries = 3,
    timeout: o.Timeout = 10.0,
    allow_remote_target: o.AllowRemote = False,
    keep_host: o.KeepHost = False,
    retry_4xx: o.Retry4xx = False,
    as_json: o.JsonOut = False,
    verbose: o.Verbose = False,
    quiet: o.Quiet = False,
    relay: o.Relay = None,
    token: o.Token = None,
    input_path: t.InputPathOpt = None,
    input_transformer: t.InputTransformerOpt = None,
) -> None:
    """Deliver stored events again, through the same delivery path and targets as `hook listen`.

    EVENT_ID may be the short id hook prints (a unique prefix of 4+ characters). Webhooks are
    replayed byte for byte (signatures still verify). Each result is recorded in the relay's
    history with its target, who replayed it and the failure it answers. Exit 0 when every
    replay was delivered, 1 when any failed, 2 for an ambiguous id (the candidates are
    listed), 5 for an unknown event id.

    With --issue N|KEY: every event of that failure group (`hook events --issues`), with
    progress, to the group's target unless you give one; an unknown group exits 2 with a hint.

    With --archive NAME --since TIME: EventBridge replays that archive of the relay's bus to
    the relay's rule only; progress is shown until it completes, Ctrl-C cancels it (exit 130).
    The relay receives the events marked with replay-name, and listeners get them as usual.
    Exit 0 when it completed, 6 when it failed or AWS refused.
    """
    if archive is not None:
        from hookcli.cli.archive import replay_archive

        mixed = bool(event_ids) or failed or issue is not None
        return replay_archive(archive, since, until, poll, relay, token, as_json, mixed=mixed)
    from hookcli.cli.listen import run_rendered
    from hookcli.config import resolve
    from hookcli.delivery import RetryPolicy
    from hookcli.listen import TargetSpec, default_identity
    from hookcli.replay import ReplaySettings
    from hookcli.replay import replay as run

    spec = TargetSpec(target, exec_, handler, allow_remote_target, keep_host, retry_4xx)
    # --issue alone replays to the group's recorded target (resolved once the group is read).
    chosen = issue is None or any(v is not None for v in (target, exec_, handler))
    if chosen:
        spec.build()
    identity = name or (default_identity(o.default_name(), spec) if chosen else o.default_name())
    settings = ReplaySettings(
        connection=resolve(relay, token),
        target=spec,
        identity=identity,
        ids=tuple(event_ids or ()),
        failed=failed,
        failed_listener=listener,
        all_listeners=all_listeners,
        since=since,
        issue=issue,
        policy=RetryPolicy(retries=retries, timeout=timeout),
        rule_target=t.rule_target(input_path, input_transformer, identity),
    )
    summary = run_rendered(
        "replay",
        as_json,
        lambda emit: run(settings, emit, getattr(emit, "set_total", None)),
    )
    if summary.failed:
        again = f"--issue {issue}" if issue is not None else "--failed"
        raise DeliveryFailedError(
            f"{summary.failed} of {summary.delivered + summary.failed} replays failed",
            hint=f"see `hook events --status failed`; fix the target and run `hook replay {again}`",
        )
