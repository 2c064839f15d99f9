"""``hook replay``: deliver stored events again through the same targets and retries as listen."""

from __future__ import annotations

from typing import Annotated

import typer

from hookcli.cli import options as o
from hookcli.errors import DeliveryFailedError


def register(app: typer.Typer) -> None:
    """Attach ``hook replay``."""
    app.command("replay")(replay)


def replay(
    event_ids: Annotated[
        list[str] | None, typer.Argument(help="Event ids to deliver again.", show_default=False)
    ] = None,
    failed: Annotated[
        bool, typer.Option("--failed", help="Replay every event whose latest delivery failed.")
    ] = False,
    listener: Annotated[
        str | None, typer.Option("--listener", help="With --failed: only that listener's failures.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="With --failed: failures recorded since this ISO time."),
    ] = None,
    target: o.TargetUrl = None,
    exec_: o.ExecCmd = None,
    handler: o.Handler = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            envvar="HOOK_NAME",
            help="Record results under this listener name. Default: the listener whose "
            "delivery failed (with --failed), else user@host.",
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
) -> None:
    """Deliver stored events again, through the same delivery path and targets as `hook listen`.

    Webhooks are replayed byte for byte (signatures still verify). Each result is recorded in
    the relay's history. Exit 0 when every replay was delivered, 1 when any failed, 5 for an
    unknown event id.
    """
    from hookcli.cli.listen import run_rendered
    from hookcli.config import resolve
    from hookcli.delivery import RetryPolicy
    from hookcli.listen import TargetSpec
    from hookcli.replay import ReplaySettings
    from hookcli.replay import replay as run

    settings = ReplaySettings(
        connection=resolve(relay, token),
        target=TargetSpec(target, exec_, handler, allow_remote_target, keep_host, retry_4xx),
        listener=name,
        default_listener=o.default_name(),
        ids=tuple(event_ids or ()),
        failed=failed,
        failed_listener=listener,
        since=since,
        policy=RetryPolicy(retries=retries, timeout=timeout),
    )
    settings.target.build()
    summary = run_rendered(
        "replay",
        as_json,
        lambda emit: run(settings, emit, getattr(emit, "set_total", None)),
    )
    if summary.failed:
        raise DeliveryFailedError(
            f"{summary.failed} of {summary.delivered + summary.failed} replays failed",
            hint="see `hook events --status failed`; fix the target and run `hook replay --failed`",
        )
