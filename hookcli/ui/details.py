"""The Details screen: one event in full, its webhook request, and every delivery attempt.

Shows what the row already knows at once, then the relay's record (``GET /v1/events/<id>``, the
same data ``hook events show --json`` prints) when it arrives. Replays are linked both ways to
the failures they answer (``replay_of`` and the replays that point back).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from hookcli.errors import HookError
from hookcli.ui.feed import Replayer, fetch_record
from hookcli.ui.model import Attempt, Row, body_view, printable

if TYPE_CHECKING:
    from hookcli.ui.app import HookApp


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "?"
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _json(data: Any) -> Syntax:
    text = json.dumps(data, indent=2, ensure_ascii=False)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return Syntax(text, "json", background_color="default", word_wrap=True)


def _heading(text: str) -> Text:
    return Text(f"\n{text}", style="bold underline")


def request_section(request: Mapping[str, Any]) -> list[RenderableType]:
    """A webhook's method, path, headers and raw body (JSON pretty, text, or hex)."""
    query = f"?{request['query']}" if request.get("query") else ""
    out: list[RenderableType] = [
        _heading("Webhook request"),
        Text(f"{request.get('method', 'POST')} {request.get('path') or '/'}{query}", style="bold"),
    ]
    for pair in request.get("headers") or []:
        if isinstance(pair, Sequence) and len(pair) == 2:
            line = Text(f"  {printable(str(pair[0]))}: ", style="cyan")
            line.append(printable(str(pair[1])))
            out.append(line)
    raw = request.get("body_b64")
    if not isinstance(raw, str):
        size = request.get("size")
        out.append(Text(f"  ({size} bytes; body not loaded)", style="dim"))
        return out
    try:
        body = base64.b64decode(raw, validate=True)
    except (ValueError, binascii.Error):
        out.append(Text("  (the body is not valid base64)", style="red"))
        return out
    view = body_view(body)
    out.append(Text(f"Body: {len(body)} bytes, {view.kind}", style="dim"))
    if view.kind == "json":
        out.append(Syntax(view.text, "json", background_color="default", word_wrap=True))
    elif view.kind != "empty":
        out.append(Text(printable_block(view.text)))
    return out


def printable_block(text: str) -> str:
    """Each line of ``text`` made safe for the terminal."""
    return "\n".join(printable(line) for line in text.splitlines())


def attempt_lines(attempts: Sequence[Attempt]) -> list[RenderableType]:
    """Every attempt: time, listener, status, code, latency, target, what came back, and how
    replays and the failures they answer point at each other."""
    answered_by: dict[int, list[Attempt]] = {}
    for attempt in attempts:
        if attempt.replay_of is not None:
            answered_by.setdefault(attempt.replay_of, []).append(attempt)
    out: list[RenderableType] = []
    for a in attempts:
        style = {"delivered": "green", "failed": "red"}.get(a.status, "yellow")
        code = f" {a.code}" if a.code is not None else ""
        label = f"#{a.id} " if a.id is not None else ""
        line = Text(f"{label}{_when(a.at)}  ", style="dim")
        line.append(f"{a.status}{code}", style=style)
        line.append(f"  attempt {a.attempt}  {a.latency_ms:.0f} ms  {a.listener}")
        out.append(line)
        if a.target:
            out.append(Text(f"    -> {printable(a.target)}", style="dim"))
        if a.replay:
            story = "    replay"
            if a.replay_of is not None:
                story += f" of #{a.replay_of} (the failure it answers)"
            if a.replayed_by:
                story += f" by {a.replayed_by}"
            out.append(Text(story, style="cyan"))
        for later in answered_by.get(a.id, []) if a.id is not None else []:
            out.append(Text(f"    answered by replay #{later.id}: {later.status}", style="cyan"))
        if a.error:
            out.append(Text(f"    {printable_block(a.error)}", style=style))
        if a.detail and a.detail != a.error:
            out.append(Text(_indent(a.detail), style="dim"))
        if a.output:
            out.append(Text("    output:", style="dim"))
            out.append(Text(_indent(a.output)))
    return out


def _indent(text: str) -> str:
    return "\n".join("      " + printable(line) for line in text.rstrip().splitlines())


def render_details(row: Row, record: Mapping[str, Any] | None) -> Group:
    """The whole Details page for ``row`` (with the relay's ``record`` when loaded)."""
    event = dict(record.get("event") or row.event) if record else row.event
    head = Text(f"{event.get('detail-type', '')}", style="bold")
    head.append(f"  {event.get('source', '')}", style="cyan")
    head.append(f"\nid {event.get('id', '')}  seq {row.seq}  received {_when(row.received)}")
    head.append(f"\nstatus {row.status}", style="bold")
    if row.note:
        head.append(f"  {row.note}")
    if event.get("replay-name"):
        head.append(f"\nfrom EventBridge replay {event['replay-name']}", style="cyan")
    parts: list[RenderableType] = [head, _heading("Envelope"), _json(event)]
    request = record.get("request") if record else None
    if isinstance(request, Mapping):
        parts += request_section(request)
    local = [a for a in row.history if a.id is None]
    if local:
        parts.append(_heading("Attempts (this listener, this session)"))
        parts += attempt_lines(local)
    if record is not None:
        deliveries = [
            Attempt.from_delivery(d) for d in record.get("deliveries") or [] if isinstance(d, dict)
        ]
        parts.append(_heading("Deliveries recorded by the relay"))
        parts += attempt_lines(deliveries) or [Text("none yet", style="dim")]
    elif not local:
        parts.append(_heading("Deliveries"))
        parts += attempt_lines(row.history) or [Text("none yet", style="dim")]
    return Group(*parts)


class DetailsScreen(Screen[None]):
    """One event in full; escape goes back to the list."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,backspace,d", "back", "Back"),
        Binding("r", "replay", "Replay"),
        Binding("y", "copy_id", "Copy id"),
        Binding("question_mark", "app.help", "Keys"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, row: Row, replayer: Replayer | None) -> None:
        super().__init__()
        self.row = row
        self.replayer = replayer
        self.record: dict[str, Any] | None = None
        self.problem = ""

    @property
    def hook_app(self) -> HookApp:
        """The app, with its replay and notice helpers."""
        from hookcli.ui.app import HookApp

        assert isinstance(self.app, HookApp)
        return self.app

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="details"):
            yield Static(id="body")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_body()
        self.run_worker(self.load(), exclusive=True)

    async def load(self) -> None:
        """Fetch the relay's record of this event and redraw."""
        if self.replayer is None:
            self.problem = "not connected to the relay yet: showing what this session saw"
        else:
            try:
                self.record = await fetch_record(self.replayer.connection, self.row.id)
                self.problem = ""
            except HookError as exc:
                self.problem = f"cannot load the relay's record: {exc.message}"
        self.refresh_body()

    def refresh_body(self) -> None:
        """Draw the page from what is known now."""
        page = render_details(self.row, self.record)
        if self.problem:
            page = Group(Text(self.problem, style="yellow"), page)
        self.query_one("#body", Static).update(page)

    def action_back(self) -> None:
        """Back to the list."""
        self.app.pop_screen()

    def action_copy_id(self) -> None:
        """Copy the full id."""
        self.app.copy_to_clipboard(self.row.id)
        self.notify(f"copied {self.row.id}")

    def action_replay(self) -> None:
        """Replay this event; the page reloads with the result."""
        task = self.hook_app.replay_row(self.row)
        self.refresh_body()
        if task is not None:
            task.add_done_callback(lambda _: self._reload())

    def _reload(self) -> None:
        if self.is_attached:
            self.run_worker(self.load(), exclusive=True)
