"""Options shared by several commands, declared once with their ``HOOK_*`` env vars.

Imported by every command module, so its top level imports only typer (``hook CMD --help``
stays fast); what the helpers below need loads when they run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from hookcli.cli.render import Level
    from hookcli.protocol import PatternChange, Start


class _Output:
    """The output level that -v/-q set, wherever on the command line they stand (``hook -v
    listen`` and ``hook listen -v`` alike); the root callback resets it for each run."""

    verbose = False
    quiet = False


def reset_level() -> None:
    """Back to the default level (each ``hook`` run starts here)."""
    _Output.verbose = _Output.quiet = False


def level() -> Level:
    """The output level this run asked for; -v and -q together are a usage error."""
    from hookcli.cli.render import Level

    if _Output.verbose and _Output.quiet:
        from hookcli.errors import UsageError

        raise UsageError("-v/--verbose and -q/--quiet contradict each other: give one")
    if _Output.quiet:
        return Level.QUIET
    return Level.VERBOSE if _Output.verbose else Level.NORMAL


def _set_verbose(value: bool) -> bool:
    _Output.verbose = _Output.verbose or value
    return value


def _set_quiet(value: bool) -> bool:
    _Output.quiet = _Output.quiet or value
    return value


#: ``-v`` means the same on every command: more output (a target's output, response bodies,
#: stderr and tracebacks in full); ``--debug`` (the root option) is for hook's own tracebacks.
Verbose = Annotated[
    bool,
    typer.Option(
        "--verbose",
        "-v",
        callback=_set_verbose,
        help="More output: local code's output, response bodies, stderr and a handler's "
        "tracebacks in full (--debug is for hook's own).",
    ),
]
Quiet = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        callback=_set_quiet,
        help="Less output: no local code's output under events, no summaries; errors still show.",
    ),
]

Relay = Annotated[
    str | None,
    typer.Option(
        "--relay",
        envvar="HOOK_RELAY",
        help="Relay URL (http, https, ws or wss). Default: the config file, else a local relay.",
        show_default=False,
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token", envvar="HOOK_TOKEN", help="Bearer token for the relay.", show_default=False
    ),
]
Sources = Annotated[
    list[str] | None,
    typer.Option("--source", help="Only events from this source (repeatable: any of them)."),
]
DetailTypes = Annotated[
    list[str] | None,
    typer.Option("--detail-type", help="Only events of this detail-type (repeatable)."),
]
PatternOpt = Annotated[
    str | None,
    typer.Option(
        "--pattern",
        help="EventBridge event pattern: JSON, @file or - (ANDed with --source, --detail-type).",
    ),
]
JsonOut = Annotated[
    bool,
    typer.Option(
        "--json", help="One JSON object per line (automatic when stdout is not a terminal)."
    ),
]
ExitOnDisconnect = Annotated[
    bool,
    typer.Option(
        "--exit-on-disconnect",
        help="Exit (code 3) when the relay connection drops instead of reconnecting.",
    ),
]
TargetUrl = Annotated[
    str | None,
    typer.Option(
        "--target",
        "-t",
        "--forward-to",  # the Stripe CLI's spelling, for hands that know it
        help="POST events to this local URL: localhost:3000[/path], 127.0.0.1:3000, http://... "
        "(--forward-to is the same option).",
    ),
]
ExecCmd = Annotated[
    str | None,
    typer.Option(
        "--exec",
        help="Run this shell command per event (event JSON on stdin, HOOK_EVENT_ID, "
        "HOOK_SOURCE, HOOK_DETAIL_TYPE, HOOK_ATTEMPT in the environment).",
    ),
]
Handler = Annotated[
    str | None,
    typer.Option("--handler", help="Call a Lambda-style handler: path/app.py:handler."),
]
Watch = Annotated[
    list[Path] | None,
    typer.Option("--watch", help="Reload the handler when files under PATH change (repeatable)."),
]
Retries = Annotated[
    int,
    typer.Option(
        "--retries", min=0, max=100, help="Retries after a failed attempt (5xx, timeout, refused)."
    ),
]
Timeout = Annotated[
    float,
    typer.Option("--timeout", min=0.1, help="Seconds per delivery attempt."),
]
AllowRemote = Annotated[
    bool,
    typer.Option("--allow-remote-target", help="Allow a target that is not on this machine."),
]
KeepHost = Annotated[
    bool,
    typer.Option("--keep-host", help="Replay webhooks with their original Host header."),
]
Retry4xx = Annotated[
    bool,
    typer.Option(
        "--retry-4xx", help="Retry 4xx answers too (by default only 5xx, timeouts, refused)."
    ),
]


def default_name() -> str:
    """The default listener identity: ``user@host``."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "user"
    return f"{user}@{socket.gethostname().split('.')[0]}"


def build_pattern(
    sources: list[str] | None, detail_types: list[str] | None, pattern: str | None
) -> dict[str, Any]:
    """The subscription pattern from the filter options, validated before any network I/O."""
    from hookcli.cli.inputs import read_text
    from hookcli.patterns import pattern_from_filters

    text = read_text(pattern, "--pattern") if pattern is not None else None
    return pattern_from_filters(sources or [], detail_types or [], text)


def parse_start(value: str) -> Start:
    """``--from``: now | last | SEQ | ISO time, checked before connecting."""
    from hookcli.errors import ProtocolError, UsageError
    from hookcli.protocol import Start

    try:
        return Start.parse(value)
    except ProtocolError as exc:
        raise UsageError(exc.message.replace("'from'", "--from")) from None


def parse_pattern_change(value: str) -> PatternChange:
    """``--pattern-change``: refuse | keep-cursor | restart."""
    from hookcli.errors import UsageError

    if value not in ("refuse", "keep-cursor", "restart"):
        raise UsageError(
            f"--pattern-change must be refuse, keep-cursor or restart, not {value!r}",
            hint="keep-cursor resumes where this --name stopped; restart starts from new events",
        )
    return value  # type: ignore[return-value]
