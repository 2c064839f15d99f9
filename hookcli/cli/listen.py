"""``hook listen`` and ``hook tail``: parse options into settings, run the library, render."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from hookcli.cli import options as o
from hookcli.cli import transform as t
from hookcli.errors import HookError

if TYPE_CHECKING:
    from hookcli.cli.render import Kind
    from hookcli.updates import Update

T = TypeVar("T")

FROM_HELP = (
    "Where to start: now, last (after this listener's cursor), a sequence number, or an ISO time. "
    "Default: last (now for a name the relay has never seen)."
)


def register(app: typer.Typer) -> None:
    """Attach ``hook listen`` and ``hook tail``."""
    app.command("listen")(listen)
    app.command("tail")(tail)


def run_async(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work``; SIGTERM cancels it (so it can clean up) and exits 143, Ctrl-C exits 130."""
    import asyncio
    import signal

    async def main() -> T:
        # SIGTERM (a supervisor stopping us) cancels the work so targets, worker processes and
        # the embedded relay shut down cleanly; the exit code then says "terminated" (143).
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        terminated = asyncio.Event()

        def on_term() -> None:
            terminated.set()
            if task is not None:
                task.cancel()

        loop.add_signal_handler(signal.SIGTERM, on_term)
        try:
            return await work
        except asyncio.CancelledError:
            if terminated.is_set():
                raise typer.Exit(143) from None
            raise
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    return asyncio.run(main())


def run_rendered(
    kind: Kind,
    as_json: bool,
    work: Callable[[Callable[[Update], None]], Coroutine[Any, Any, T]],
) -> T:
    """Run a library coroutine with a renderer at the -v/-q level; fatal errors are rendered,
    then raised."""
    from hookcli.cli.render import make_renderer

    renderer = make_renderer(kind, as_json=as_json, level=o.level())
    try:
        return run_async(work(renderer))
    except HookError as exc:
        renderer.error(exc)
        raise
    finally:
        renderer.close()


def listen(
    target: o.TargetUrl = None,
    exec_: o.ExecCmd = None,
    handler: o.Handler = None,
    source: o.Sources = None,
    detail_type: o.DetailTypes = None,
    pattern: o.PatternOpt = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            envvar="HOOK_NAME",
            help="Listener identity whose cursor the relay keeps. Default: user@host:TARGET"
            " (user@host:3000, user@host:exec:<hash>, user@host:handler:app.py), so listeners"
            " side by side never replace each other and the same command resumes its cursor.",
            show_default=False,
        ),
    ] = None,
    from_: Annotated[str, typer.Option("--from", help=FROM_HELP)] = "last",
    pattern_change: Annotated[
        str,
        typer.Option(
            "--pattern-change",
            help="When the relay knows this --name with another pattern: refuse (exit 2),"
            " keep-cursor (resume from its cursor, matching the new pattern) or restart"
            " (start from new events).",
        ),
    ] = "refuse",
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency",
            "-c",
            min=1,
            max=256,
            help="Deliveries at once; 1 keeps strict relay order.",
        ),
    ] = 1,
    retries: o.Retries = 3,
    timeout: o.Timeout = 10.0,
    watch: o.Watch = None,
    allow_remote_target: o.AllowRemote = False,
    keep_host: o.KeepHost = False,
    retry_4xx: o.Retry4xx = False,
    exit_on_disconnect: o.ExitOnDisconnect = False,
    as_json: o.JsonOut = False,
    ui: Annotated[
        bool,
        typer.Option(
            "--ui",
            help="Show a full-screen view (events, details, replay, issues) instead of lines;"
            " delivery, cursor and exit codes are the same. Needs a terminal.",
        ),
    ] = False,
    verbose: o.Verbose = False,
    quiet: o.Quiet = False,
    relay: o.Relay = None,
    token: o.Token = None,
    input_path: t.InputPathOpt = None,
    input_transformer: t.InputTransformerOpt = None,
    from_rule: Annotated[
        str | None,
        typer.Option(
            "--from-rule",
            help="Listen with this EventBridge rule's pattern, and deliver what its target gets"
            " (Input, InputPath or InputTransformer). Read from --bus, else the relay's bus.",
            show_default=False,
        ),
    ] = None,
    bus: Annotated[
        str | None,
        typer.Option("--bus", help="With --from-rule: the rule's bus on AWS.", show_default=False),
    ] = None,
    target_id: Annotated[
        str | None,
        typer.Option(
            "--target-id",
            help="With --from-rule: which of the rule's targets to imitate.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Deliver matching events to local code: an HTTP server, a command, or a Python handler.

    Events the relay kept while you were away arrive first, in order; after a disconnect or a
    laptop sleep the listener resumes where it stopped, and nothing is delivered twice.
    Failed deliveries are retried with backoff, then recorded as failed (see `hook replay
    --failed`). Runs until Ctrl-C (exit 130). Exit 2: bad option or pattern, or a pattern other
    than the one the relay knows for this --name (see --pattern-change); 3: relay
    unreachable with --exit-on-disconnect; 4: token refused.
    """
    from hookcli.config import resolve
    from hookcli.delivery import RetryPolicy
    from hookcli.listen import ListenSettings, TargetSpec, default_identity
    from hookcli.listen import listen as run

    if ui:
        from hookcli.cli.ui import require_terminal

        require_terminal("hook listen --ui", "plain `hook listen` (add --json for JSON lines)")
    spec = TargetSpec(
        target,
        exec_,
        handler,
        allow_remote_target,
        keep_host,
        retry_4xx,
        tuple(watch or ()),
        concurrency,
    )
    spec.build()  # a bad --target/--exec/--handler fails before any network I/O
    identity = name or default_identity(o.default_name(), spec)
    settings = ListenSettings(
        connection=resolve(relay, token),
        name=identity,
        pattern=o.build_pattern(source, detail_type, pattern),
        target=spec,
        start=o.parse_start(from_),
        policy=RetryPolicy(retries=retries, timeout=timeout),
        concurrency=concurrency,
        exit_on_disconnect=exit_on_disconnect,
        pattern_change=o.parse_pattern_change(pattern_change),
        rule_target=t.rule_target(input_path, input_transformer, identity),
        from_rule=t.rule_source(
            from_rule,
            bus,
            target_id,
            given=(source, detail_type, pattern, input_path, input_transformer),
        ),
    )
    if ui:
        from hookcli.cli.ui import run_app
        from hookcli.ui.app import listen_app

        return run_app(listen_app(settings, me=o.default_name()))
    run_rendered("listen", as_json, lambda emit: run(settings, emit))


def tail(
    source: o.Sources = None,
    detail_type: o.DetailTypes = None,
    pattern: o.PatternOpt = None,
    from_: Annotated[
        str, typer.Option("--from", help="now, a sequence number, or an ISO time.")
    ] = "now",
    count: Annotated[
        int | None, typer.Option("--count", "-n", min=1, help="Stop after N events.")
    ] = None,
    exit_on_disconnect: o.ExitOnDisconnect = False,
    as_json: o.JsonOut = False,
    verbose: o.Verbose = False,
    quiet: o.Quiet = False,
    relay: o.Relay = None,
    token: o.Token = None,
) -> None:
    """Stream matching events to the terminal (or as JSON lines, ready for jq).

    A tail never answers events and never moves any listener's cursor. Piped or with --json,
    stdout carries one EventBridge event per line and status lines go to stderr.
    """
    from hookcli.config import resolve
    from hookcli.listen import TailSettings
    from hookcli.listen import tail as run

    settings = TailSettings(
        connection=resolve(relay, token),
        pattern=o.build_pattern(source, detail_type, pattern),
        start=o.parse_start(from_),
        count=count,
        exit_on_disconnect=exit_on_disconnect,
    )
    run_rendered("tail", as_json, lambda emit: run(settings, emit))
