"""Delivery targets: where ``hook listen`` and ``hook replay`` hand one event to local code.

Three adapters share one contract (``Target``): an HTTP server on loopback (``http.py``), a
shell command per event (``exec.py``) and a Lambda-style Python handler in a long-lived worker
process (``handler.py``). A target turns one delivery into an ``Outcome`` and never raises for
a failed delivery; retries and backoff live in ``hookcli.delivery``, the one delivery path.

This module stays light (no aiohttp, no watchfiles): the handler worker imports the package,
and ``make_target`` validates options before any network I/O, importing an adapter only once
its options are known to be good.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import SplitResult, urlsplit

from hookcli.config import is_loopback
from hookcli.errors import UsageError
from hookcli.events import Event, short_text

#: Longest one-line ``Outcome.error``.
ERROR_LIMIT = 200
#: Longest ``Outcome.detail`` (a response body's start, a stderr tail, a traceback).
DETAIL_LIMIT = 2048
#: Longest ``Outcome.output`` and ``Outcome.value``: what local code printed or returned, from
#: its start (the lines shown under the event come from there).
OUTPUT_LIMIT = 4096


class Notice(Protocol):
    """Reports something about the target that is not an event (a reload, a broken watcher)."""

    def __call__(self, text: str, level: Literal["info", "warning"] = "info") -> None:
        """Say ``text``; ``warning`` when the user has something to fix."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one delivery attempt did: delivered or not, and whether another attempt may help."""

    delivered: bool
    #: Worth another attempt: 5xx, 408/429, timeouts, refused or reset connections, a command's
    #: non-zero exit or timeout, a handler worker that died. Not: other 4xx, exit 126/127, a
    #: handler exception (the same code would raise again), a handler that does not import.
    retryable: bool
    latency_ms: float
    #: HTTP status, or the command's exit code (negative: killed by that signal).
    code: int | None = None
    #: One line: the start of the response body, the last stderr line, ``Type: message``.
    error: str | None = None
    #: More, bounded: response body start, stderr tail, traceback, the handler's return value.
    detail: str | None = None
    #: What was done, e.g. ``POST http://127.0.0.1:3000/hooks`` or ``exec ./notify.sh``.
    action: str = ""
    #: What the local code printed, from its start, bounded: a command's stdout and stderr as
    #: they arrived, a handler's prints. Shown under the event's line (the first lines; all with
    #: -v), so ``--exec "jq .detail"`` shows jq's answer.
    output: str | None = None
    #: A handler's return value as JSON text, bounded.
    value: str | None = None


class Target(Protocol):
    """Somewhere an event can be delivered; ``make_target`` builds one from the CLI options."""

    #: Shown in the "listening" line, e.g. ``http://localhost:3000/hooks``.
    description: str

    async def start(self) -> None:
        """Open connection pools, spawn workers, start watchers."""

    async def deliver(self, event: Event, attempt: int, timeout: float) -> Outcome:
        """One attempt: a failed delivery is an Outcome; only impossible setup raises."""

    async def probe(self) -> str | None:
        """A warning if the target looks down right now (nothing listening), else None."""

    async def close(self) -> None:
        """Release everything ``start`` acquired; safe to call twice."""


def make_target(
    *,
    url: str | None = None,
    command: str | None = None,
    handler: str | None = None,
    allow_remote: bool = False,
    keep_host: bool = False,
    retry_4xx: bool = False,
    watch: Sequence[Path] = (),
    on_notice: Notice | None = None,
    concurrency: int | None = None,
) -> Target:
    """Validate the target options and build the target; no network or process I/O happens here.

    Exactly one of ``url`` (``--target``), ``command`` (``--exec``) and ``handler``
    (``--handler``). ``concurrency`` sizes the HTTP connection pool (default 100 connections).
    Raises UsageError with a hint for anything that cannot work.
    """
    given = [
        name
        for name, value in (("--target", url), ("--exec", command), ("--handler", handler))
        if value is not None
    ]
    if len(given) != 1:
        raise UsageError(
            "give exactly one of --target, --exec and --handler"
            + (f" (got {', '.join(given)})" if given else ""),
            hint="e.g. --target localhost:3000/hooks, --exec './on-event.sh' or "
            "--handler app.py:handler",
        )
    if watch and handler is None:
        raise UsageError("--watch only applies to --handler (it reloads the handler's worker)")
    if url is not None:
        from hookcli.targets.http import HttpTarget

        parts = parse_target_url(url, allow_remote=allow_remote)
        return HttpTarget(
            parts.geturl(), keep_host=keep_host, retry_4xx=retry_4xx, concurrency=concurrency
        )
    if command is not None:
        if not command.strip():
            raise UsageError("--exec needs a command", hint="e.g. --exec './on-event.sh'")
        from hookcli.targets.exec import ExecTarget

        return ExecTarget(command)
    assert handler is not None
    path, function = parse_handler_spec(handler)
    watched = []
    for item in watch:
        candidate = Path(item).expanduser()
        if not candidate.exists():
            raise UsageError(f"--watch path {item} does not exist")
        watched.append(candidate.resolve())
    from hookcli.targets.handler import HandlerTarget

    return HandlerTarget(path, function, watch=watched, on_notice=on_notice)


_BARE_PORT = re.compile(r"^:?(\d+)(/.*)?$")


def parse_target_url(text: str, *, allow_remote: bool = False) -> SplitResult:
    """Normalize ``--target``: ``3000``, ``:3000``, ``localhost:3000/path``, ``http(s)://...``.

    A bare port means ``localhost``. The host must be loopback unless ``allow_remote``; nothing
    is resolved, so a remote name is refused by its spelling alone.
    """
    raw = text.strip()
    bare = _BARE_PORT.match(raw)
    if bare:
        raw = f"http://localhost:{bare.group(1)}{bare.group(2) or ''}"
    elif "://" not in raw:
        raw = "http://" + raw
    parts = urlsplit(raw)
    hint = "--target takes localhost:3000[/path], :3000, 3000 or an http(s):// URL."
    if parts.scheme not in ("http", "https"):
        raise UsageError(f"target {text!r}: scheme must be http or https", hint=hint)
    host = parts.hostname
    if not host:
        raise UsageError(f"target {text!r} has no host", hint=hint)
    try:
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"target {text!r}: bad port ({exc})", hint=hint) from exc
    if port == 0:
        raise UsageError(f"target {text!r}: port 0 is not a port anything listens on", hint=hint)
    if not allow_remote and not is_loopback(host):
        raise UsageError(
            f"refusing to forward events to {host}: it is not a loopback address",
            hint="hook delivers only to localhost, 127.0.0.0/8 and ::1 by default; pass "
            "--allow-remote-target to deliver to another host.",
        )
    return parts._replace(path=parts.path or "/", fragment="")


def parse_handler_spec(spec: str) -> tuple[Path, str]:
    """Split ``path/app.py:func`` (or ``app.py``, meaning ``handler``, or Lambda's ``app.func``).

    Returns the resolved file and the function name; a missing file is a UsageError.
    """
    hint = "--handler takes path/to/app.py:function (Lambda's app.function works too)."
    text = spec.strip()
    file_part, sep, function = text.rpartition(":")
    if not sep or "/" in function or function.endswith(".py"):
        file_part, function = text, ""
    if not function:
        if file_part.endswith(".py"):
            function = "handler"
        else:  # Lambda's "module.function" spelling: app.handler -> app.py:handler
            module, dot, function = file_part.rpartition(".")
            if not dot:
                raise UsageError(f"handler {spec!r} names no Python file", hint=hint)
            folder, slash, name = module.rpartition("/")
            file_part = folder + slash + name.replace(".", "/") + ".py"
    if not function.isidentifier() or keyword.iskeyword(function):
        raise UsageError(f"handler function {function!r} is not a Python name", hint=hint)
    path = Path(file_part).expanduser()
    if not path.is_file():
        raise UsageError(f"handler file {file_part} does not exist", hint=hint)
    return path.resolve(), function


def first_line(text: str, *, last: bool = False, limit: int = ERROR_LIMIT) -> str | None:
    """The first (or last) non-blank line of ``text``, whitespace collapsed and shortened."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    return short_text(lines[-1] if last else lines[0], limit)


def clip(text: str, limit: int = DETAIL_LIMIT, *, tail: bool = False) -> str:
    """At most ``limit`` characters of ``text``: its start, or its end with ``tail``."""
    if len(text) <= limit:
        return text
    return "\u2026" + text[-(limit - 1) :] if tail else text[: limit - 1] + "\u2026"
