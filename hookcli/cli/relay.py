"""``hook relay``: run the relay (emulated AWS, or a real EventBridge bus) and tear it down."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hookcli.cli import options as o
from hookcli.errors import UsageError

group = typer.Typer(help="Run or remove the relay.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Attach ``hook relay``."""
    app.add_typer(group, name="relay")


Bus = Annotated[
    str | None,
    typer.Option(
        "--bus",
        envvar="HOOK_BUS",
        help="EventBridge bus to serve (real AWS). Without it: --local.",
        show_default=False,
    ),
]
Region = Annotated[
    str | None,
    typer.Option(
        "--region",
        envvar="AWS_REGION",
        help="AWS region (default: your AWS config).",
        show_default=False,
    ),
]
Profile = Annotated[
    str | None,
    typer.Option(
        "--profile",
        envvar="AWS_PROFILE",
        help="AWS profile (default: the standard credential chain).",
        show_default=False,
    ),
]
Name = Annotated[
    str,
    typer.Option(
        "--name",
        envvar="HOOK_RELAY_NAME",
        help="Relay name: tags its AWS resources (hook:relay=NAME) and names its store.",
    ),
]


@group.command("serve")
def serve(
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="Emulated EventBridge + SQS on loopback (moto); the default without --bus.",
        ),
    ] = False,
    bus: Bus = None,
    region: Region = None,
    profile: Profile = None,
    name: Name = "hook",
    host: Annotated[
        str,
        typer.Option(
            "--host",
            envvar="HOOK_HOST",
            help="Address to listen on; anything but loopback needs tokens of 16+ characters.",
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            "--port", envvar="HOOK_PORT", min=0, max=65535, help="Port (0: any free port)."
        ),
    ] = 8750,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar="HOOK_DATA_DIR",
            help="Where the store lives. Default: the platform's user data dir.",
            show_default=False,
        ),
    ] = None,
    token: o.Token = None,
    tokens: Annotated[
        Path | None,
        typer.Option(
            "--tokens",
            envvar="HOOK_TOKENS_FILE",
            help="File of name:token lines, one per team member: each member's listeners, "
            "cursors and results live under its name (no '/' in names), and members see only "
            "their own results. Excludes --token (put that token in the file under a name).",
            show_default=False,
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="TLS certificate (PEM).", show_default=False)
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="TLS private key (PEM).", show_default=False)
    ] = None,
    max_body: Annotated[
        str, typer.Option("--max-body", help="Largest ingest body (413 above it), e.g. 1MiB.")
    ] = "1MiB",
    retention: Annotated[
        str, typer.Option("--retention", help="Keep events this long, e.g. 7d, 12h.")
    ] = "7d",
    max_events: Annotated[
        int, typer.Option("--max-events", min=1, help="Keep at most this many events.")
    ] = 100_000,
    ingest_secret: Annotated[
        list[str] | None,
        typer.Option(
            "--ingest-secret",
            envvar="HOOK_INGEST_SECRET",
            help="CHANNEL=SECRET: require an HMAC-SHA256 signature on that ingest channel "
            "(* = every channel). Repeatable.",
        ),
    ] = None,
    signature_header: Annotated[
        str, typer.Option("--signature-header", help="Header carrying sha256=<hex HMAC> on ingest.")
    ] = "X-Hook-Signature",
    detail_type_header: Annotated[
        str,
        typer.Option(
            "--detail-type-header",
            help="Header whose value becomes an ingested event's detail-type. Without it, "
            "webhooks from GitHub, Stripe, Shopify, Slack, ... get their own event type, "
            "others 'webhook'.",
        ),
    ] = "X-Hook-Detail-Type",
    ingest_only: Annotated[
        bool,
        typer.Option(
            "--ingest-only", help="No EventBridge source at all: webhooks via /v1/ingest only."
        ),
    ] = False,
    max_connections: Annotated[
        int,
        typer.Option(
            "--max-connections",
            min=0,
            help="Open connections in total (0: as many as the open-file limit allows); "
            "kept below the open-file limit. At the cap the oldest idle unauthenticated "
            "connection is closed, or a newcomer answered 503.",
        ),
    ] = 1024,
    max_per_address: Annotated[
        int,
        typer.Option(
            "--max-connections-per-address",
            min=0,
            help="Unauthenticated connections per client address (IPv6: per /64; 0: no cap). "
            "Connections that passed the token check do not count. Raise it behind a proxy.",
        ),
    ] = 128,
    header_timeout: Annotated[
        str,
        typer.Option(
            "--header-timeout", help="Close a request whose headers take longer (408), e.g. 10s."
        ),
    ] = "10s",
    body_timeout: Annotated[
        str,
        typer.Option("--body-timeout", help="Cut a request whose body takes longer, e.g. 60s."),
    ] = "60s",
    idle_timeout: Annotated[
        str,
        typer.Option(
            "--idle-timeout",
            help="Close an unauthenticated connection idle this long (authenticated: 75s).",
        ),
    ] = "20s",
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-host",
            metavar="NAME",
            envvar="HOOK_ALLOW_HOST",
            help="Also answer requests whose Host is NAME (the relay's public name behind a "
            "proxy or DNS). Loopback names and IP addresses are always answered; any other "
            "Host is refused (no DNS rebinding). Repeatable.",
            show_default=False,
        ),
    ] = None,
    allow_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-origin",
            metavar="ORIGIN",
            envvar="HOOK_ALLOW_ORIGIN",
            help="Let web pages from ORIGIN (e.g. https://dash.example.com) call the relay; "
            "they still need a token. Requests from other pages (an Origin header or "
            "Sec-Fetch-Site: cross-site/same-site) are refused. Repeatable.",
            show_default=False,
        ),
    ] = None,
    verbose: o.Verbose = False,
    quiet: o.Quiet = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Activity as one JSON object per line on stdout (the banner goes to stderr).",
        ),
    ] = False,
) -> None:
    """Run the relay: poll the bus's queue and /v1/ingest, keep every event, stream to listeners.

    After its banner it prints a line per event received (time, seq, detail-type, source, short
    id, size) and per listener connecting, resuming (from which seq, how many events after
    it) or leaving (why); -q for none, --json for JSON lines.

    With --bus it ensures (idempotently) an SQS queue and a rule on that bus, tagged
    hook:relay=NAME. Without --bus it starts an emulated EventBridge + SQS on loopback (moto),
    so everything works with no AWS account. Stop with Ctrl-C or SIGTERM (exit 143).

    On loopback without --token/--tokens the relay uses the local token, made on first start
    and kept owner-only in your state directory, where every hook command on this machine
    finds it. /v1/health and /v1/ingest need no token. One relay per store: a second one on
    the same --data-dir and --name is refused.
    """
    from hookcli.cli.inputs import parse_duration, parse_size
    from hookcli.relay.connections import ConnectionLimits
    from hookcli.relay.guard import GuardSettings
    from hookcli.relay.server import IngestSettings
    from hookcli.relay.service import RelaySettings, load_tokens

    if local and bus:
        raise UsageError("--local and --bus exclude each other", hint="drop one of them")
    if token and tokens:
        # A shared token has no scope: it would read every member's results and could take
        # over any member's listener, silently undoing the file's separation.
        raise UsageError(
            "--token (or HOOK_TOKEN) and --tokens exclude each other",
            hint=f"put that token in {tokens} under a name (name:token) and drop --token",
        )
    scopes: dict[str, str] = {}
    if token:
        scopes[token] = ""
    if tokens:
        scopes.update(load_tokens(tokens))
    settings = RelaySettings(
        name=name,
        host=host,
        port=port,
        data_dir=data_dir,
        bus=bus,
        region=region,
        profile=profile,
        tokens=scopes,
        tls_cert=tls_cert,
        tls_key=tls_key,
        ingest=IngestSettings(
            max_body=parse_size(max_body, "--max-body"),
            secrets=_secrets(ingest_secret or []),
            signature_header=signature_header,
            detail_type_header=detail_type_header,
        ),
        max_age=parse_duration(retention, "--retention"),
        max_count=max_events,
        source=not ingest_only,
        connections=ConnectionLimits(
            max_connections=max_connections,
            max_per_address=max_per_address,
            header_timeout=parse_duration(header_timeout, "--header-timeout"),
            body_timeout=parse_duration(body_timeout, "--body-timeout"),
            idle_timeout=parse_duration(idle_timeout, "--idle-timeout"),
        ),
        guard=GuardSettings(
            allow_hosts=tuple(allow_host or ()), allow_origins=tuple(allow_origin or ())
        ),
    )
    import asyncio

    from hookcli.cli.render import Level

    # -q here or at the root (`hook -q relay serve`): only the banner.
    asyncio.run(_serve(settings, quiet=o.level() is Level.QUIET, as_json=as_json))


def _secrets(values: list[str]) -> dict[str, str]:
    secrets: dict[str, str] = {}
    for value in values:
        channel, sep, secret = value.partition("=")
        if not sep or not channel or not secret:
            raise UsageError(f"--ingest-secret takes CHANNEL=SECRET, got {value.split('=')[0]!r}=…")
        secrets[channel] = secret
    return secrets


async def _serve(settings: object, *, quiet: bool, as_json: bool) -> None:
    import asyncio
    import signal

    from hookcli.cli.render import print_lines, relay_activity_renderer
    from hookcli.relay.service import RelaySettings, banner, start_relay

    assert isinstance(settings, RelaySettings)
    _configure_logging()
    activity = None if quiet else relay_activity_renderer(as_json=as_json)
    running = await start_relay(settings, activity=activity)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        print_lines(banner(running, settings), err=as_json)
        await stop.wait()
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        await running.stop()
    # Only SIGTERM ends the wait: exit "terminated", like every other hook command.
    raise typer.Exit(143)


def _configure_logging() -> None:
    import logging

    from hookcli.cli import _State

    logging.basicConfig(
        level=logging.DEBUG if _State.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("botocore", "boto3", "urllib3", "werkzeug", "aiohttp.access", "moto"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@group.command("teardown")
def teardown(
    bus: Annotated[
        str,
        typer.Option("--bus", envvar="HOOK_BUS", help="The bus whose relay resources to remove."),
    ] = "default",
    region: Region = None,
    profile: Profile = None,
    name: Name = "hook",
    verbose: o.Verbose = False,
    quiet: o.Quiet = False,
) -> None:
    """Remove the queue and rule this relay created on the bus (found by tag, nothing else)."""
    from hookcli.sources.eventbridge import AwsSettings
    from hookcli.sources.eventbridge import teardown as remove

    removed = remove(AwsSettings(bus=bus, region=region, profile=profile, relay_name=name))
    if not removed:
        typer.echo(f"Nothing to remove: no resources tagged hook:relay={name} on bus {bus}.")
    for line in removed:
        typer.echo(f"removed {line}")


@group.command("archives")
def archives(
    as_json: o.JsonOut = False,
    relay: o.Relay = None,
    token: o.Token = None,
) -> None:
    """List the EventBridge archives of the relay's bus: state, retention, events and size.

    Replay one onto the relay only with `hook replay --archive NAME --since TIME`.
    """
    from hookcli.cli.archive import archives as run

    run(relay, token, as_json)
