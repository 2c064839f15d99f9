"""The Issues tab: failed deliveries grouped by cause (``GET /v1/issues``), replayed by group.

The groups come from the relay (``hookcli/failures.py`` groups them; ``hook events --issues``
shows the same); this pane polls them while it is shown. ``R`` replays every event of the
selected group through ``replay.replay(issue=...)``, the path ``hook replay --issue`` takes,
with progress; the group shrinks as its events succeed and goes when none is left.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from hookcli.client import RelayApi
from hookcli.errors import HookError
from hookcli.listen import TargetSpec
from hookcli.replay import ReplaySettings, replay
from hookcli.ui.feed import Replayer
from hookcli.ui.model import clock, cut, printable, short_listener
from hookcli.updates import Delivered, Update

if TYPE_CHECKING:
    from hookcli.ui.app import HookApp

#: Seconds between refreshes of the groups while the tab is shown.
REFRESH_EVERY = 2.0
#: (title, width): 78 columns with a space after each.
COLUMNS: tuple[tuple[str, int], ...] = (
    ("#", 3),
    ("count", 5),
    ("last seen", 9),
    ("listener", 12),
    ("cause", 43),
)


def _epoch(iso: object) -> float | None:
    """A group's ISO time as a unix time (for the clock column)."""
    from datetime import datetime

    if not isinstance(iso, str):
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def group_cells(group: Mapping[str, Any], me: str = "") -> tuple[str, ...]:
    """The Issues columns of one group."""
    values = (
        str(group.get("number", "")),
        str(group.get("count", "")),
        clock(_epoch(group.get("last_seen"))),
        short_listener(str(group.get("listener", "")), me),
        str(group.get("cause") or group.get("error") or "failed"),
    )
    return tuple(cut(value, width) for value, (_, width) in zip(values, COLUMNS, strict=True))


def group_summary(group: Mapping[str, Any]) -> str:
    """Two lines about the selected group: cause, target, span and the newest example."""
    first = _epoch(group.get("first_seen"))
    last = _epoch(group.get("last_seen"))
    span = f"first {clock(first)}, last {clock(last)}"
    example = str(group.get("example", ""))
    first_line = (
        f"#{group.get('number')} {group.get('cause')}  ({group.get('count')} events, {span})"
    )
    second = (
        f"  {group.get('listener')} -> {group.get('target') or '?'}  "
        f"newest {example[:8]}  key {group.get('key')}"
    )
    return printable(first_line) + "\n" + printable(second)


class IssuesPane(Vertical):
    """The groups, the selected one's summary, and a replay's progress."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("R", "replay_group", "Replay group"),
        Binding("d", "example", "Newest example", show=False),
    ]

    def __init__(
        self,
        replayer: Callable[[], Replayer | None],
        *,
        filters: Mapping[str, Any] | None = None,
        me: str = "",
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self._replayer = replayer
        self.filters = dict(filters or {})
        self.me = me
        self.groups: list[dict[str, Any]] = []
        self.progress = ""
        self.problem = ""
        self.replaying: str | None = None
        self._refreshing = False

    def compose(self) -> ComposeResult:
        yield Static("", id="issue-summary")
        table: DataTable[Text] = DataTable(id="issues", cursor_type="row")
        table.cell_padding = 0
        for title, width in COLUMNS:
            table.add_column(title, width=width + 1, key=title)
        yield table
        yield Static("", id="issue-progress")

    def on_mount(self) -> None:
        self.set_interval(REFRESH_EVERY, self._tick)

    @property
    def table(self) -> DataTable[Text]:
        """The groups."""
        return self.query_one("#issues", DataTable)

    @property
    def hook_app(self) -> HookApp:
        """The app (for its notices and the Details screen)."""
        from hookcli.ui.app import HookApp

        assert isinstance(self.app, HookApp)
        return self.app

    def _tick(self) -> None:
        if self.display and self.is_attached and (self.replaying or self._shown()):
            self.reload()

    def _shown(self) -> bool:
        from textual.widgets import TabbedContent

        return self.app.query_one(TabbedContent).active == "issues-tab"

    def reload(self) -> None:
        """Fetch the groups again (one request at a time)."""
        if not self._refreshing:
            self._refreshing = True
            self.run_worker(self._load(), group="issues-load")

    async def _load(self) -> None:
        try:
            replayer = self._replayer()
            if replayer is None:
                self.problem = "not connected to the relay yet"
            else:
                async with RelayApi.open(replayer.connection) as api:
                    self.groups = await api.issues(**self.filters)
                self.problem = ""
        except HookError as exc:
            self.problem = exc.message
        finally:
            self._refreshing = False
        self.redraw()

    def redraw(self) -> None:
        """Draw the groups, keeping the selection on the same group."""
        table = self.table
        selected = self.selected()
        table.clear()
        for group in self.groups:
            table.add_row(
                *(Text(value + " ", no_wrap=True) for value in group_cells(group, self.me)),
                key=str(group.get("key")),
            )
        if selected is not None:
            keys = [str(g.get("key")) for g in self.groups]
            if selected.get("key") in keys:
                table.move_cursor(row=keys.index(str(selected.get("key"))))
        self._draw_summary()

    def _draw_summary(self) -> None:
        group = self.selected()
        if self.problem:
            text = Text(f"cannot list the issues: {self.problem}", style="red")
        elif not self.groups:
            text = Text("No failed deliveries: nothing to fix.", style="green")
        elif group is not None:
            text = Text(group_summary(group))
        else:
            text = Text("")
        self.query_one("#issue-summary", Static).update(text)
        self.query_one("#issue-progress", Static).update(Text(self.progress, style="cyan"))

    def on_data_table_row_highlighted(self, message: DataTable.RowHighlighted) -> None:
        """Keep the summary on the selected group."""
        self._draw_summary()

    def on_data_table_row_selected(self, message: DataTable.RowSelected) -> None:
        """enter: the group's newest example in Details."""
        message.stop()
        self.action_example()

    def selected(self) -> dict[str, Any] | None:
        """The group under the cursor."""
        row = self.table.cursor_row
        if not self.groups or row < 0 or row >= len(self.groups):
            return None
        return self.groups[row]

    def action_example(self) -> None:
        """The newest failing event of the group, in Details."""
        group = self.selected()
        if group is not None:
            self.hook_app.show_event(str(group.get("example", "")))

    def action_replay_group(self) -> None:
        """``R``: replay every event of the selected group, with progress."""
        group = self.selected()
        replayer = self._replayer()
        if group is None or replayer is None:
            self.hook_app.notice("no group selected" if replayer else "not connected yet")
            return
        if self.replaying:
            self.hook_app.notice(f"already replaying issue {self.replaying}")
            return
        self.replaying = f"#{group.get('number')}"
        self.run_worker(self._replay(group, replayer), group="issues-replay")

    async def _replay(self, group: Mapping[str, Any], replayer: Replayer) -> None:
        total = [0]
        done = {"delivered": 0, "failed": 0}
        name = f"issue #{group.get('number')} ({group.get('cause')})"

        def on_total(count: int) -> None:
            total[0] = count
            self._progress(f"Replaying {name}: 0 of {count}")

        def emit(update: Update) -> None:
            if isinstance(update, Delivered):
                done["delivered" if update.outcome.delivered else "failed"] += 1
                count = done["delivered"] + done["failed"]
                self._progress(
                    f"Replaying {name}: {count} of {total[0]}, {done['delivered']} delivered,"
                    f" {done['failed']} failed"
                )
                self.reload()  # the group shrinks as its events succeed

        spec = replayer.target or TargetSpec()
        settings = ReplaySettings(
            connection=replayer.connection,
            target=spec,
            identity=replayer.identity or self.me or "hook-ui",
            issue=str(group.get("key")),
            policy=replayer.policy,
            rule_target=replayer.rule_target,
        )
        try:
            summary = await replay(settings, emit, on_total)
        except HookError as exc:
            self._progress(f"{name}: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""))
            self.hook_app.notice(f"replay of {name} failed: {exc.message}", "error")
        else:
            self._progress(
                f"Replayed {name}: {summary.delivered} delivered, {summary.failed} failed"
            )
        finally:
            self.replaying = None
            self.reload()

    def _progress(self, text: str) -> None:
        self.progress = printable(text)
        if self.is_attached:
            self._draw_summary()
