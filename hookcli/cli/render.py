"""The one place updates become output: rich lines on a terminal, JSON lines otherwise.

Output contract (DESIGN.md): on a terminal, one line per event plus a live status line; piped or
``--json``, one JSON object per line on stdout for every kind of line, diagnostics on stderr, no
colour and no live region. rich is imported only by the terminal renderer.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from enum import IntEnum
from json.encoder import encode_basestring as _string
from typing import TYPE_CHECKING, Any, Literal, Protocol, TextIO

from hookcli.errors import HookError
from hookcli.events import Event, short_text
from hookcli.targets import Outcome
from hookcli.updates import (
    ArchiveReplay,
    Caught,
    ConnectionState,
    Delivered,
    Notice,
    Ready,
    Received,
    Retry,
    State,
    Update,
)

if TYPE_CHECKING:
    from hookcli.sources.eventbridge import ArchiveInfo

Kind = Literal["listen", "tail", "replay"]


class Level(IntEnum):
    """How much a command prints: ``-q``, the default, ``-v`` (the same on every command)."""

    QUIET = -1
    NORMAL = 0
    VERBOSE = 1


#: Lines of a command's or handler's output shown under its event's line (all with -v).
PREVIEW_LINES = 3
#: Columns of the event line's detail-type and source: cut or padded, so rows stay aligned.
DETAIL_TYPE_WIDTH = 20
SOURCE_WIDTH = 16


class Renderer(Protocol):
    """Turns updates into output; ``close`` ends any live region."""

    def __call__(self, update: Update) -> None:
        """Render one update."""

    def error(self, exc: HookError) -> None:
        """Render a fatal error as a line of the output (the CLI boundary prints it too)."""

    def close(self) -> None:
        """Stop live output."""


def use_json(as_json: bool, stream: TextIO | None = None) -> bool:
    """JSON lines when asked, or when stdout is not a terminal (pipes, CI, supervisors)."""
    out = stream or sys.stdout
    return as_json or not (hasattr(out, "isatty") and out.isatty())


def make_renderer(kind: Kind, *, as_json: bool, level: Level = Level.NORMAL) -> Renderer:
    """The renderer for ``kind`` in the mode the output stream calls for."""
    if use_json(as_json):
        return JsonRenderer(kind)
    return TerminalRenderer(kind, level=level)


# ------------------------------------------------------------------ JSON lines


def _event_fields(event: Event) -> dict[str, Any]:
    return {"id": event.id, "source": event.source, "detail_type": event.detail_type}


def update_to_json(update: Update) -> dict[str, Any]:
    """The ``--json`` object for one update: ``type`` plus its fields."""
    match update:
        case Ready():
            return {
                "type": "ready",
                "relay": update.relay,
                "relay_name": update.relay_name,
                "listener": update.listener,
                "pattern": update.pattern,
                "target": update.target,
                "start": update.start,
                "head": update.head,
                "resumed": update.resumed,
                "reconnect": update.reconnect,
            }
        case Received():
            return {"type": "event", "seq": update.seq, "event": update.event.to_dict()}
        case Retry():
            return {
                "type": "retry",
                "seq": update.seq,
                **_event_fields(update.event),
                "attempt": update.attempt,
                "code": update.outcome.code,
                "error": update.outcome.error,
                "retry_in": round(update.delay, 3),
            }
        case Delivered():
            outcome = update.outcome
            return {
                "type": "result",
                "seq": update.seq,
                **_event_fields(update.event),
                "status": "delivered" if outcome.delivered else "failed",
                "code": outcome.code,
                "latency_ms": round(outcome.latency_ms, 3),
                "attempts": update.attempts,
                "action": outcome.action,
                "error": outcome.error,
                "duplicate": update.duplicate,
                "output": outcome.output,
                "value": outcome.value,
            }
        case State():
            return {
                "type": "state",
                "state": update.state.value,
                "error": update.error,
            }
        case Notice():
            return {"type": "notice", "level": update.level, "message": update.message}
        case Caught():
            return {"type": "live", "seq": update.seq}
    raise TypeError(f"unknown update {update!r}")  # pragma: no cover


def _json_or_null(value: str | None) -> str:
    return "null" if value is None else _string(value)


def result_line(update: Delivered) -> str:
    """``update_to_json(update)`` as text, built directly: one per delivered event, the hot path
    of ``--json`` output (tests check it equals the dict form)."""
    outcome, event = update.outcome, update.event
    code = "null" if outcome.code is None else str(outcome.code)
    latency = round(outcome.latency_ms, 3) if math.isfinite(outcome.latency_ms) else 0.0
    return (
        f'{{"type":"result","seq":{update.seq},"id":{_string(event.id)},'
        f'"source":{_string(event.source)},"detail_type":{_string(event.detail_type)},'
        f'"status":"{"delivered" if outcome.delivered else "failed"}","code":{code},'
        f'"latency_ms":{latency!r},"attempts":{update.attempts},'
        f'"action":{_string(outcome.action)},"error":{_json_or_null(outcome.error)},'
        f'"duplicate":{"true" if update.duplicate else "false"},'
        f'"output":{_json_or_null(outcome.output)},"value":{_json_or_null(outcome.value)}}}'
    )


class JsonRenderer:
    """One compact JSON object per line on stdout, flushed at once (scripts wait for lines).

    For ``tail`` stdout carries the bare EventBridge events (ready for jq) and every other
    line goes to stderr as JSON.
    """

    def __init__(self, kind: Kind, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.kind = kind
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def __call__(self, update: Update) -> None:
        if isinstance(update, Delivered) and self.kind != "tail":
            self._write_text(self.out, result_line(update))
            return
        if isinstance(update, Received):
            # The hot path: reuse the event's JSON text rather than encoding a dict again.
            if self.kind == "tail":
                self._write_text(self.out, update.event.to_json())
            else:
                text = update.event.to_json()
                self._write_text(self.out, f'{{"type":"event","seq":{update.seq},"event":{text}}}')
            return
        stream = self.err if self.kind == "tail" else self.out
        self._write(stream, update_to_json(update))

    def error(self, exc: HookError) -> None:
        stream = self.err if self.kind == "tail" else self.out
        self._write(
            stream,
            {"type": "error", "message": exc.message, "hint": exc.hint, "exit_code": exc.exit_code},
        )

    def close(self) -> None:
        self.out.flush()

    @staticmethod
    def _write(stream: TextIO, data: dict[str, Any]) -> None:
        JsonRenderer._write_text(
            stream, json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        )

    @staticmethod
    def _write_text(stream: TextIO, line: str) -> None:
        if id(stream) in _broken:
            raise BrokenPipeError("the reader of our output went away")
        try:
            stream.write(line + "\n")
        except UnicodeEncodeError:
            # JSON allows lone surrogates ("\ud800") that UTF-8 cannot carry: write them back as
            # the JSON escapes they came from, so the line stays valid and nothing crashes.
            stream.write(line.encode("utf-8", "backslashreplace").decode("utf-8") + "\n")
        _flush_soon(stream)


_unflushed: set[int] = set()
#: Streams whose deferred flush hit EPIPE: the next write raises it where it can stop us.
_broken: set[int] = set()


def _flush_soon(stream: TextIO) -> None:
    """Flush once per event-loop pass (lines written together leave together), or now.

    Scripts still see each line as soon as the pass that produced it ends, but a burst of
    events costs one write system call, not two per event.
    """
    aio = sys.modules.get("asyncio")
    try:
        loop = aio.get_running_loop() if aio is not None else None
    except RuntimeError:
        loop = None
    if loop is None:
        stream.flush()
        return
    if id(stream) not in _unflushed:
        _unflushed.add(id(stream))

        def flush() -> None:
            _unflushed.discard(id(stream))
            try:
                stream.flush()
            except BrokenPipeError:
                _broken.add(id(stream))

        loop.call_soon(flush)


# ------------------------------------------------------------------ terminal


class TerminalRenderer:
    """rich lines above a live status line (connection state, counts, rate)."""

    def __init__(self, kind: Kind, *, level: Level = Level.NORMAL) -> None:
        from rich.console import Console
        from rich.live import Live

        self.kind = kind
        self.level = level
        self.console = Console(highlight=False)
        self.state = ConnectionState.CONNECTING
        self.state_error: str | None = None
        self.received = 0
        self.delivered = 0
        self.failed = 0
        self.retrying: set[str] = set()
        self.times: deque[float] = deque(maxlen=200)
        self.total: int | None = None
        #: The listener's identity, from its ready line: the status line repeats it.
        self.identity = ""
        self.live = Live(self._status(), console=self.console, refresh_per_second=4, transient=True)
        self.live.start()

    def set_total(self, total: int) -> None:
        """Replay knows how many events it will deliver: show a progress bar past a few."""
        self.total = total if total > 5 else None
        self._refresh()

    # The status line: what a developer glances at to know the tunnel is alive.
    def _status(self) -> Any:
        from rich.text import Text

        if self.total is not None:
            from rich.console import Group
            from rich.progress_bar import ProgressBar

            done = self.delivered + self.failed
            label = Text(f"replayed {done}/{self.total}   failed {self.failed}")
            return Group(ProgressBar(total=self.total, completed=done, width=40), label)

        colour = {
            ConnectionState.CONNECTED: "green",
            ConnectionState.CONNECTING: "yellow",
            ConnectionState.RECONNECTING: "yellow",
            ConnectionState.CLOSED: "red",
        }[self.state]
        text = Text()
        text.append("● ", style=colour)
        text.append(self.state.value, style=colour)
        if self.state_error and self.state is not ConnectionState.CONNECTED:
            text.append(f" ({short_text(self.state_error, 60)})", style="dim")
        if self.kind == "tail":
            text.append(f"   received {self.received}")
        else:
            text.append(f"   delivered {self.delivered}", style="green")
            text.append(f"   failed {self.failed}", style="red" if self.failed else "")
            text.append(f"   retrying {len(self.retrying)}")
            if self.identity:
                text.append(f"   as {self.identity}", style="dim")
        now = time.monotonic()
        recent = [t for t in self.times if now - t <= 10]
        if len(recent) > 1:
            text.append(f"   {len(recent) / max(now - recent[0], 1.0):.1f}/s", style="dim")
        return text

    def _refresh(self) -> None:
        self.live.update(self._status())

    def _line(self, event: Event, tail: Any) -> Any:
        from rich.text import Text

        line = Text()
        line.append(datetime.now().strftime("%H:%M:%S"), style="dim")
        detail_type = short_text(event.detail_type, DETAIL_TYPE_WIDTH)
        line.append(f"  {detail_type:<{DETAIL_TYPE_WIDTH}}", style="bold")
        line.append(f"  {short_text(event.source, SOURCE_WIDTH):<{SOURCE_WIDTH}}", style="cyan")
        line.append(f"  {event.short_id}", style="dim")
        line.append("  ")
        line.append_text(tail)
        return line

    def __call__(self, update: Update) -> None:
        from rich.text import Text

        print_ = self.console.print
        match update:
            case Ready():
                self._ready(update)
            case Received():
                self.received += 1
                self.times.append(time.monotonic())
                if self.kind == "tail":
                    print_(self._line(update.event, Text(f"#{update.seq}", style="dim")))
                    print_(_syntax_json(update.event.to_dict()))
            case Retry():
                self.retrying.add(update.event.id)
                outcome = update.outcome
                what = f"{outcome.code} " if outcome.code is not None else ""
                print_(
                    Text(
                        f"           ↻ attempt {update.attempt} failed: {what}"
                        f"{short_text(outcome.error or '', 80)}; retrying in {update.delay:.1f} s",
                        style="yellow",
                    )
                )
            case Delivered():
                self.retrying.discard(update.event.id)
                self._result(update)
            case State():
                self.state = update.state
                self.state_error = update.error
                if update.state is ConnectionState.RECONNECTING and update.error:
                    print_(Text(f"reconnecting: {update.error}", style="yellow"))
            case Notice():
                # Through the live console (not stderr) so the status line stays at the bottom.
                style = "yellow" if update.level == "warning" else "blue"
                print_(Text(update.message, style=style))
            case Caught():
                pass
        self._refresh()

    def _ready(self, update: Ready) -> None:
        from rich.text import Text

        self.identity = update.listener if self.kind == "listen" else ""
        if update.reconnect:
            self.console.print(Text(f"reconnected; resuming after #{update.start}", style="green"))
            return
        header = Text()
        header.append("hook ", style="bold")
        header.append(self.kind)
        header.append(f"  relay {update.relay} ({update.relay_name})", style="dim")
        if self.kind == "listen":
            header.append(f"  as {update.listener}", style="dim")
        self.console.print(header)
        pattern = json.dumps(update.pattern, separators=(",", ":")) if update.pattern else "all"
        self.console.print(Text(f"  pattern {short_text(pattern, 100)}", style="dim"))
        if update.target:
            self.console.print(Text(f"  target  {update.target}", style="dim"))
        start = "resuming after" if update.resumed else "starting after"
        self.console.print(
            Text(f"  {start} #{update.start} (relay head #{update.head})", style="dim")
        )
        self.console.print(Text("Ready. Waiting for events (Ctrl-C to stop).", style="green"))

    def _result(self, update: Delivered) -> None:
        from rich.text import Text

        outcome = update.outcome
        tail = Text()
        code = f"{outcome.code} " if outcome.code is not None else ""
        if outcome.delivered:
            self.delivered += 1
            tail.append(f"-> {code}", style="green")
            tail.append(outcome.action)
        else:
            # A word and a symbol, not only red: with NO_COLOR (or colour blindness) a failure
            # must not read like a success.
            self.failed += 1
            tail.append(f"✗ failed {code}{outcome.action}", style="red")
        tail.append(f" ({outcome.latency_ms:.0f} ms)", style="dim")
        if update.attempts > 1:
            tail.append(f" after {update.attempts} attempts", style="dim")
        if update.duplicate:
            tail.append(" [duplicate suppressed]", style="dim")
        self.console.print(self._line(update.event, tail))
        if not outcome.delivered and outcome.error:
            self.console.print(Text(f"           {short_text(outcome.error, 110)}", style="red"))
        if self.level is Level.QUIET:
            return
        width = max(self.console.width - len(_INDENT), 20)
        lines = output_lines(outcome, None if self.level is Level.VERBOSE else width)
        if lines:
            self.console.print(Text("\n".join(_INDENT + line for line in lines), style="dim"))
        if self.level is Level.VERBOSE and outcome.detail:
            shown = outcome.output or ""
            if outcome.detail.strip() not in shown:  # a stderr tail already in the output
                self.console.print(Text(_indent(outcome.detail), style="dim"))

    def error(self, exc: HookError) -> None:
        self.close()

    def close(self) -> None:
        self.live.stop()


def _syntax_json(data: Any) -> Any:
    from rich.syntax import Syntax

    text = json.dumps(data, indent=2, ensure_ascii=False)
    # Lone surrogates (valid JSON) go back to their escapes: a terminal needs UTF-8.
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return Syntax(text, "json", background_color="default")


_INDENT = " " * 11


def _indent(text: str, limit: int = 2000) -> str:
    body = text if len(text) <= limit else text[:limit] + "\n…"
    return "\n".join(_INDENT + _printable(line) for line in body.splitlines())


def output_lines(outcome: Outcome, width: int | None) -> list[str]:
    """What local code returned and printed, as lines to show under its event's line.

    With a ``width``: the first ``PREVIEW_LINES`` lines, each cut to it, and a count of the rest
    (``-v`` shows them); with None, every line (the output is bounded at the target).
    """
    lines = [f"returned {outcome.value}"] if outcome.value is not None else []
    text = (outcome.output or "").rstrip()
    lines += [_printable(line) for line in text.splitlines()]
    if width is None or not lines:
        return lines
    shown = [line if len(line) <= width else line[: width - 1] + "…" for line in lines]
    if len(shown) <= PREVIEW_LINES:
        return shown
    rest = len(shown) - PREVIEW_LINES
    more = f"… {rest} more line{'s' if rest > 1 else ''} (-v shows all)"
    return [*shown[:PREVIEW_LINES], more]


def _printable(line: str) -> str:
    """``line`` safe for a terminal: tabs expanded, control characters (escape sequences a
    command printed) shown as U+FFFD, lone surrogates too."""
    text = line.expandtabs(4).encode("utf-8", "replace").decode("utf-8")
    return "".join("\ufffd" if ord(c) < 32 or 127 <= ord(c) < 160 else c for c in text)


def print_lines(lines: Sequence[str], *, err: bool = False) -> None:
    """Plain lines for commands with no live output (relay serve banner, send ids)."""
    stream = sys.stderr if err else sys.stdout
    for line in lines:
        stream.write(line + "\n")
    stream.flush()


# ------------------------------------------------------------------ history (hook events)


def _when(epoch: object) -> str:
    if not isinstance(epoch, int | float):
        return "?"
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def _results_cell(deliveries: list[dict[str, Any]], *, wide: bool = True, me: str = "") -> str:
    """The latest result per listener: ``alice@host:3000 delivered 200 12 ms`` (wide) or
    ``✗ failed 500 :3000`` (narrow: the status as a mark and the viewer's own ``me`` prefix
    left out of its listeners' names, so a row fits 80 columns)."""
    latest: dict[str, dict[str, Any]] = {}
    for delivery in deliveries:
        latest[delivery["listener"]] = delivery
    parts = []
    for name, d in latest.items():
        code = f" {d['code']}" if d.get("code") is not None else ""
        replay = " (replay)" if d.get("replay") else ""
        if wide:
            parts.append(f"{name} {d['status']}{code} {d['latency_ms']:.0f} ms{replay}")
        else:
            mark = "✓" if d["status"] == "delivered" else "✗ failed"
            short = name[len(me) :] if me and name.startswith(f"{me}:") else name
            parts.append(f"{mark}{code} {short}{replay}")
    return "\n".join(parts) if parts else "-"


def _received_cell(epoch: object, wide: bool) -> str:
    """The full date and time (wide), or the time alone for today's events."""
    if wide or not isinstance(epoch, int | float):
        return _when(epoch)
    moment = datetime.fromtimestamp(epoch)
    same_day = moment.date() == datetime.now().date()
    return moment.strftime("%H:%M:%S" if same_day else "%m-%d %H:%M")


def render_history(
    rows: list[dict[str, Any]], *, as_json: bool, wide: bool = False, me: str = ""
) -> None:
    """``hook events``: a table on a terminal, one JSON object per event otherwise.

    The table fits 80 columns: short ids (which every command taking an id accepts), the time
    alone for today, source and detail-type cut with an ellipsis, one mark per listener's
    result, the viewer's listeners (``me:…``) named by their target alone (``:3000``).
    ``wide`` shows full ids, dates, names and results.
    """
    if use_json(as_json):
        for row in rows:
            JsonRenderer._write(sys.stdout, {"type": "history", **row})
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    if not rows:
        console.print("No events match.", style="dim")
        return
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    cut: dict[str, int | None] = {
        "source": None if wide else 14,
        "detail-type": None if wide else 16,
    }
    for column in ("received", "seq", "id", "source", "detail-type", "results"):
        width = cut.get(column)
        table.add_column(
            column,
            overflow="fold" if column == "results" or wide else "ellipsis",
            no_wrap=column != "results" and not wide,
            max_width=width,
        )
    for row in rows:
        event = row["event"]
        results = _results_cell(row.get("deliveries", []), wide=wide, me=me)
        style = "red" if "failed" in results else None
        table.add_row(
            _received_cell(row.get("received"), wide),
            str(row["seq"]),
            event["id"] if wide else event["id"][:8],
            event["source"],
            _with_replay(event),
            results,
            style=style,
        )
    console.print(table)


def _iso_epoch(text: object) -> float | None:
    """Unix seconds from the ISO times ``GET /v1/issues`` gives (None if unreadable)."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _seen_cell(epoch: float | None, wide: bool) -> str:
    """The full date and time (wide); narrow, the time alone for today, else the day alone."""
    if wide or epoch is None:
        return _when(epoch)
    moment = datetime.fromtimestamp(epoch)
    return moment.strftime("%H:%M:%S" if moment.date() == datetime.now().date() else "%m-%d")


def render_issues(
    groups: list[dict[str, Any]], *, as_json: bool, wide: bool = False, me: str = ""
) -> None:
    """``hook events --issues``: one row per failure group, or one JSON object per group.

    The table fits 80 columns: the number ``hook replay --issue`` takes, the count, the
    listener (the viewer's own named by their target alone, ``:3000``), the cause cut with an
    ellipsis, first and last seen (the time for today, else the day) and the newest example's
    short id.
    ``wide`` adds the key and the target and shows full names, dates and ids.
    """
    if use_json(as_json):
        for group in groups:
            JsonRenderer._write(sys.stdout, {"type": "issue", **group})
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    if not groups:
        console.print("No failures: every delivery's latest attempt succeeded.", style="dim")
        return
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    columns = ["#", "count", *(["key"] if wide else []), "listener"]
    columns += [*(["target"] if wide else []), "cause", "first seen", "last seen", "example"]
    # Narrow: times, counts and ids keep their width; the listener is cut at 14 and the
    # cause gets the rest of the line (61 columns go to the others and the gaps between).
    cut: dict[str, int | None] = {"listener": 14, "cause": max(16, console.width - 61)}
    for column in columns:
        table.add_column(
            column,
            justify="right" if column in ("#", "count") else "left",
            overflow="fold" if wide else "ellipsis",
            no_wrap=not wide,
            max_width=None if wide else cut.get(column),
        )
    for group in groups:
        name = str(group["listener"])
        if not wide and me and name.startswith(f"{me}:"):
            name = name[len(me) :]
        cells = [str(group["number"]), str(group["count"]), *([group["key"]] if wide else [])]
        cells += [name, *([group.get("target") or "-"] if wide else []), group["cause"]]
        cells += [
            _seen_cell(_iso_epoch(group.get("first_seen")), wide),
            _seen_cell(_iso_epoch(group.get("last_seen")), wide),
            group["example"] if wide else group["example"][:8],
        ]
        table.add_row(*cells, style="red")
    console.print(table)
    console.print("Replay a group: hook replay --issue NUMBER (or its key)", style="dim")


def _replay_story(d: dict[str, Any]) -> str | None:
    """For a replay: which failure it answers and who ran it (None for a live delivery)."""
    if not d.get("replay"):
        return None
    text = "replay"
    if d.get("replay_of") is not None:
        text += f" of #{d['replay_of']}"
    if d.get("replayed_by"):
        text += f" by {d['replayed_by']}"
    return text


def render_event_record(record: dict[str, Any], *, as_json: bool) -> None:
    """``hook events show``: the event, its raw request, and every delivery attempt."""
    if use_json(as_json):
        JsonRenderer._write(sys.stdout, {"type": "event_record", **record})
        return
    import base64

    from rich.console import Console

    console = Console(highlight=False)
    event = record["event"]
    console.print(
        f"[bold]{event['detail-type']}[/bold]  [cyan]{event['source']}[/cyan]  {event['id']}"
        f"  seq {record['seq']}  received {_when(record.get('received'))}{_replay_note(event)}"
    )
    console.print(_syntax_json(event))
    request = record.get("request")
    if isinstance(request, dict) and "body_b64" in request:
        body = base64.b64decode(request["body_b64"])
        query = f"?{request['query']}" if request.get("query") else ""
        console.print(
            f"[bold]raw request[/bold]  {request['method']} {request['path'] or '/'}{query}"
        )
        for name, value in request.get("headers", []):
            console.print(f"  {name}: {value}", style="dim", markup=False)
        console.print(f"  ({len(body)} bytes)", style="dim")
    deliveries = record.get("deliveries", [])
    if not deliveries:
        console.print("No deliveries yet.", style="dim")
    for d in deliveries:
        style = "green" if d["status"] == "delivered" else "red"
        code = f" {d['code']}" if d.get("code") is not None else ""
        target = f"  -> {d['target']}" if d.get("target") else ""
        line = (
            f"{_received_cell(d.get('at'), False)}  {d['listener']}  {d['status']}{code}  "
            f"attempt {d['attempt']}  {d['latency_ms']:.0f} ms{target}"
        )
        if d.get("id") is not None:
            line = f"#{d['id']:<4} {line}"
        console.print(line, style=style, markup=False)
        story = _replay_story(d)
        if story:
            console.print(f"      {story}", style=style, markup=False)
        if d.get("error"):
            console.print(f"      {d['error']}", style="dim", markup=False)


# ------------------------------------------------------------------ hook send


def render_sent(
    target: Any,
    entries: list[dict[str, Any]],
    put: Any,
    *,
    as_json: bool,
    level: Level = Level.NORMAL,
) -> list[Any]:
    """Put entries with a progress bar for big files, then list each id or rejection (and,
    unless -q, a count on stderr)."""
    json_mode = use_json(as_json)
    if json_mode or len(entries) <= 50:
        results: list[Any] = put(target, entries)
    else:
        from rich.progress import Progress

        with Progress(transient=True) as progress:
            task = progress.add_task(f"putting on {target.description}", total=len(entries))
            results = put(target, entries, lambda done: progress.update(task, completed=done))
    for result in results:
        if json_mode:
            JsonRenderer._write(
                sys.stdout,
                {
                    "type": "sent",
                    "index": result.index,
                    "id": result.event_id,
                    "ok": result.ok,
                    "error_code": result.error_code,
                    "error": result.error_message,
                },
            )
        elif result.ok:
            sys.stdout.write(f"{result.event_id}\n")
        else:
            sys.stderr.write(
                f"entry {result.index + 1} rejected: {result.error_code}: {result.error_message}\n"
            )
    if not json_mode and level is not Level.QUIET:
        ok = sum(1 for r in results if r.ok)
        sys.stderr.write(f"put {ok} of {len(results)} events on {target.description}\n")
    return results


def render_posted(sample: str, answer: dict[str, Any], *, as_json: bool) -> None:
    """A webhook sample POSTed to ingest: its event id (stdout) and where it went (stderr)."""
    if use_json(as_json):
        JsonRenderer._write(
            sys.stdout,
            {
                "type": "sent",
                "index": 0,
                "id": answer.get("id"),
                "ok": True,
                "seq": answer.get("seq"),
                "url": answer.get("url"),
            },
        )
        return
    sys.stdout.write(f"{answer.get('id')}\n")
    sys.stderr.write(f"posted sample {sample} to {answer.get('url')}\n")


def render_samples(samples: Sequence[Any], *, as_json: bool) -> None:
    """``hook send --list-samples``: name, where it goes (bus or ingest), what it is."""
    if use_json(as_json):
        for sample in samples:
            JsonRenderer._write(
                sys.stdout,
                {
                    "type": "sample",
                    "name": sample.name,
                    "kind": sample.kind,
                    "description": sample.description,
                    "docs": sample.docs,
                },
            )
        return
    width = max((len(sample.name) for sample in samples), default=0)
    for sample in samples:
        where = "bus" if sample.kind == "eventbridge" else "ingest"
        sys.stdout.write(f"{sample.name:<{width}}  {where:<6}  {sample.description}\n")


# ------------------------------------------------------------------ hook pattern test


def render_verdicts(verdicts: Sequence[tuple[Any, bool, dict[str, Any]]], *, as_json: bool) -> None:
    """One line per tested event: its position in the file, match or not, detail-type, source.

    ``verdicts`` holds (Document or None for a lone EVENT, matched, the event tested). The
    event's id is shown only when the file gave one (otherwise it is made up for the test).
    Plain lines unless ``--json``, piped too: the exit code is the verdict scripts use.
    """
    json_mode = as_json
    width = max((len(doc.position) for doc, _, _ in verdicts if doc is not None), default=0)
    for doc, matched, event in verdicts:
        verdict = "match" if matched else "no match"
        if doc is None:
            line = json.dumps({"match": matched}) if json_mode else verdict
        else:
            own_id = doc.value.get("id") if isinstance(doc.value.get("id"), str) else None
            if json_mode:
                data = {
                    "position": doc.position or "event",
                    "match": matched,
                    "source": event.get("source"),
                    "detail-type": event.get("detail-type"),
                }
                line = json.dumps({**data, "id": own_id} if own_id else data)
            else:
                label = f"{doc.position or 'event':<{width}}"
                tail = f"  {own_id}" if own_id else ""
                line = (
                    f"{label}  {verdict:<8}  {short_text(event.get('detail-type'), 40)}"
                    f"  {short_text(event.get('source'), 40)}{tail}"
                )
        sys.stdout.write(line + "\n")


# ------------------------------------------------------------------ hook relay serve activity


def relay_activity_renderer(*, as_json: bool, stream: TextIO | None = None) -> Any:
    """The callback ``hook relay serve`` gives the relay: one line per activity update.

    Plain lines (time, what, who) or, with ``--json``, one JSON object per line; each line is
    flushed, so a pipe or a log file sees it at once.
    """
    from hookcli.relay.activity import Connected, Received

    def write(update: Any) -> None:
        out = stream or sys.stdout
        if as_json:
            JsonRenderer._write(out, _activity_json(update))
            out.flush()
            return
        clock = datetime.fromtimestamp(update.at).strftime("%H:%M:%S")
        if isinstance(update, Received):
            text = (
                f"received   #{update.seq}  {short_text(update.detail_type, 40)}  "
                f"{short_text(update.source, 40)}  {update.id[:8]}  {_size(update.size)}"
                f" via {update.via}"
            )
        elif isinstance(update, Connected):
            verb = "resumed" if update.resumed else "connected"
            text = (
                f"{verb:<9}  {update.name} ({update.mode}) from seq {update.start}, "
                f"{update.waiting} waiting"
            )
        else:
            text = f"left       {update.name} ({update.mode}): {update.reason}"
        out.write(f"{clock}  {text}\n")
        out.flush()

    return write


def _activity_json(update: Any) -> dict[str, Any]:
    """The ``--json`` object for one relay activity update."""
    from hookcli.relay.activity import Connected, Received

    when = datetime.fromtimestamp(update.at).astimezone().isoformat(timespec="milliseconds")
    if isinstance(update, Received):
        return {
            "type": "received", "time": when, "seq": update.seq, "id": update.id,
            "source": update.source, "detail-type": update.detail_type, "size": update.size,
            "via": update.via,
        }  # fmt: skip
    if isinstance(update, Connected):
        return {
            "type": "resumed" if update.resumed else "connected", "time": when,
            "listener": update.name, "mode": update.mode, "from": update.start,
            "head": update.head, "waiting": update.waiting,
        }  # fmt: skip
    return {
        "type": "left", "time": when, "listener": update.name, "mode": update.mode,
        "reason": update.reason,
    }  # fmt: skip


# ------------------------------------------------------------------ archives (replay --archive)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def render_archive_replay(update: ArchiveReplay, *, as_json: bool) -> None:
    """One line per change of an archive replay: state, the event time reached, progress."""
    progress = update.progress
    if use_json(as_json):
        JsonRenderer._write(
            sys.stdout,
            {
                "type": update.kind,
                "replay": update.name,
                "archive": update.archive,
                "state": update.state,
                "reason": update.reason or None,
                "event_start": _iso(update.event_start),
                "event_end": _iso(update.event_end),
                "reached": _iso(update.reached),
                "progress": None if progress is None else round(progress, 4),
                "rules": list(update.rules),
            },
        )
        return
    from rich.console import Console

    console = Console(highlight=False)
    style = {"COMPLETED": "green", "FAILED": "red", "CANCELLED": "yellow"}.get(update.state)
    line = f"{datetime.now():%H:%M:%S}  replay {update.name}  {update.state}"
    if update.reached is not None:
        line += f"  events up to {update.reached.astimezone():%Y-%m-%d %H:%M:%S} replayed"
    if progress is not None:
        line += f"  ({progress:.0%})"
    if update.reason:
        line += f"  {update.reason}"
    console.print(line, style=style, markup=False)
    if update.state == "STARTING" and update.rules:
        window = f"{_when(update.event_start.timestamp())} to " if update.event_start else ""
        end = _when(update.event_end.timestamp()) if update.event_end else "?"
        console.print(
            f"  archive {update.archive}, events from {window}{end}, to the relay's rule only",
            style="dim",
            markup=False,
        )
    if update.state == "COMPLETED":
        pattern = json.dumps({"replay-name": [update.name]})
        console.print(
            f"  replayed events carry replay-name {update.name}; see them with: "
            f"hook tail --from 0 --pattern '{pattern}'",
            style="dim",
            markup=False,
        )


def render_archives(rows: Sequence[ArchiveInfo], *, as_json: bool) -> None:
    """``hook relay archives``: a table on a terminal, one JSON object per archive otherwise."""
    if use_json(as_json):
        for row in rows:
            JsonRenderer._write(
                sys.stdout,
                {
                    "type": "archive",
                    "name": row.name,
                    "state": row.state,
                    "retention_days": row.retention_days,
                    "event_count": row.event_count,
                    "size_bytes": row.size_bytes,
                    "created": _iso(row.created),
                    "reason": row.reason or None,
                },
            )
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    if not rows:
        console.print("The relay's bus has no archives.", style="dim")
        return
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for column in ("archive", "state", "retention", "events", "size", "created"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row.name,
            row.state,
            f"{row.retention_days} days" if row.retention_days else "forever",
            str(row.event_count),
            _size(row.size_bytes),
            _when(row.created.timestamp()) if row.created else "?",
        )
    console.print(table)
    console.print("Event counts and sizes can lag up to 24 hours (EventBridge).", style="dim")


def _size(count: int) -> str:
    """Bytes for a person: ``512 B``, ``4.2 KiB``, ``1.0 MiB``, ``2.0 GiB``."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"  # pragma: no cover


def _with_replay(event: dict[str, Any]) -> str:
    """The detail-type cell of ``hook events``, with the archive replay that re-sent it."""
    name = event.get("replay-name")
    return (
        f"{event['detail-type']}\n(replay {name})"
        if isinstance(name, str)
        else event["detail-type"]
    )


def _replay_note(event: dict[str, Any]) -> str:
    """``  replay NAME`` for ``hook events show`` when an archive replay re-sent the event."""
    from rich.markup import escape

    name = event.get("replay-name")
    return f"  [yellow]replay {escape(name)}[/yellow]" if isinstance(name, str) else ""
