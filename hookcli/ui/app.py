"""The full-screen view (``hook ui``, ``hook listen --ui``): the Textual app and its Events list.

The app holds the rows a feed fills (``feed.py``) and draws them; the Details, Issues and help
screens live in their own modules. Every key works at 80x24 without a mouse or colour; status
is always spelled out, never shown by colour alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, ClassVar, Literal

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.widgets import DataTable, Footer, Input, Static, TabbedContent, TabPane

from hookcli.config import Connection
from hookcli.errors import HookError
from hookcli.listen import ListenSettings
from hookcli.ui.feed import ListenFeed, RelayFeed, RelayQuery, Replayer, Rows, fetch_record
from hookcli.ui.issues import IssuesPane
from hookcli.ui.model import COLUMNS, Filter, Row, cells, parse_filter, row_from_record

#: Seconds the feeds and replays get to finish what they are doing when the view closes.
CLOSE_WAIT = 2.0
#: Seconds between redraws of the top line while rows change.
TOP_EVERY = 0.2
STATUS_STYLE = {
    "delivered": "green",
    "failed": "bold red",
    "pending": "yellow",
    "retrying": "magenta",
    "replaying": "cyan",
}


async def _close_abandoned_streams() -> None:
    """Let a cancelled listener's websocket close while the loop still runs.

    ``client.Stream`` loops over websockets' reconnecting ``connect``, an async generator left
    suspended inside its connection's ``async with`` when the listener is cancelled; the
    cancellation's traceback holds it in a reference cycle, so it is closed (its socket with
    it) only when collected. Collect now and give the close a moment, bounded.
    """
    known = asyncio.all_tasks()
    gc.collect()
    await asyncio.sleep(0)  # the generator finalizer schedules its aclose() as a task
    closing = asyncio.all_tasks() - known
    if closing:
        await asyncio.wait(closing, timeout=CLOSE_WAIT)


class HookApp(App[None]):
    """Events, Details and Issues over one relay; ``run_feed`` fills the rows."""

    TITLE = "hook"
    AUTO_FOCUS = "#events"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    #top { height: 1; background: $boost; }
    #status { height: 1; color: $text-muted; }
    #filter { dock: bottom; display: none; height: 3; }
    #filter.shown { display: block; }
    DataTable { height: 1fr; scrollbar-size-vertical: 1; }
    TabbedContent { height: 1fr; }
    #issue-progress { height: auto; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "interrupt", "Quit", show=False, priority=True),
        Binding("question_mark", "help", "Keys"),
        Binding("slash", "filter", "Filter"),
        Binding("d", "details", "Details"),
        Binding("r", "replay", "Replay"),
        Binding("y", "copy_id", "Copy id"),
        Binding("i", "issues", "Issues"),
        Binding("tab", "toggle_tab", "Tab", show=False, priority=True),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("G,end", "follow", "Newest", show=False),
    ]

    def __init__(
        self,
        *,
        title: str,
        run_feed: Callable[[HookApp], Awaitable[None]],
        replayer: Callable[[], Replayer | None],
        me: str = "",
        rows: Rows | None = None,
        initial_filter: str = "",
        issue_filters: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        #: ``GET /v1/issues`` filters for the Issues tab (the listener, since).
        self.issue_filters = {k: v for k, v in (issue_filters or {}).items() if v is not None}
        self.title_text = title
        self.rows = rows if rows is not None else Rows()
        self._run_feed = run_feed
        self._replayer = replayer
        self.me = me
        self.filter = parse_filter(initial_filter) if initial_filter else Filter()
        self.filter_text = initial_filter
        #: The error that ended the feed (the CLI raises it after the app exits).
        self.error: HookError | None = None
        #: 130 after Ctrl-C, 143 after SIGTERM (the exit codes ``hook listen`` has), else 0.
        self.exit_code = 0
        self.state_text = "connecting…"
        self.state_ok = False
        self._shown: list[str] = []
        self._generation = -1
        self._top_due = False
        self._follow_due = False
        self._tasks: set[asyncio.Task[Any]] = set()
        #: Set on the way out: feeds finish the request at hand and return (an HTTP request
        #: cancelled midway would leave its socket to the garbage collector).
        self.closing = asyncio.Event()

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Static(id="top")
        with TabbedContent(id="tabs", initial="events-tab"):
            with TabPane("Events", id="events-tab"):
                yield DataTable(id="events", cursor_type="row", zebra_stripes=False)
            with TabPane("Issues", id="issues-tab"):
                yield IssuesPane(
                    self._replayer, filters=self.issue_filters, me=self.me, id="issues-pane"
                )
        yield Static("", id="status")
        yield Input(placeholder='text, status:failed, or {"source": ["shop.orders"]}', id="filter")
        yield Footer()

    def on_mount(self) -> None:
        table = self.events_table
        # One space after each column instead of the table's padding on both sides: the nine
        # columns and a scrollbar then fit 80 columns.
        table.cell_padding = 0
        for title, width in COLUMNS:
            table.add_column(title, width=width + 1, key=title)
        self._draw_top()
        self._start(self._feed())
        # SIGTERM (a supervisor stopping us) closes the view cleanly and exits 143, as
        # `hook listen` does; Textual would otherwise swallow the cancellation and exit 0.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self._terminated)

    def _terminated(self) -> None:
        self.exit_code = 143
        self.exit()

    @property
    def events_table(self) -> DataTable[Any]:
        """The Events list."""
        return self.query_one("#events", DataTable)

    async def _feed(self) -> None:
        try:
            await self._run_feed(self)
        except HookError as exc:
            self.error = exc
            self.exit()

    def _start(self, work: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def on_unmount(self) -> None:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
        self.closing.set()
        tasks = list(self._tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=CLOSE_WAIT)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await _close_abandoned_streams()

    # ------------------------------------------------------------------ View (feed -> app)

    def rows_changed(self, rows: Iterable[Row]) -> None:
        """Add new rows at the bottom (following if the cursor was there) or redraw changed ones."""
        if not self.is_running:
            return
        table = self.events_table
        if self._generation != self.rows.generation:
            self._rebuild()
            return
        following = not self._shown or table.cursor_row >= len(self._shown) - 1
        added = False
        for row in rows:
            if row.id in table.rows:
                if self.filter.matches(row):
                    for (title, _), value in zip(COLUMNS, self._cells(row), strict=True):
                        table.update_cell(row.id, title, value)
                else:
                    self._rebuild()
                    return
            elif self.filter.matches(row):
                if self._shown and row.seq < self._row_seq(self._shown[-1]):
                    self._rebuild()
                    return
                table.add_row(*self._cells(row), key=row.id)
                self._shown.append(row.id)
                added = True
        if added and following and not self._follow_due:
            # Once per refresh, not per row: each move walks the table's rows.
            self._follow_due = True
            self.call_after_refresh(self._follow)
        self._draw_top_soon()

    def _follow(self) -> None:
        self._follow_due = False
        if self._shown:
            self.events_table.move_cursor(row=len(self._shown) - 1)

    def _row_seq(self, event_id: str) -> int:
        row = self.rows.get(event_id)
        return row.seq if row else -1

    def state_changed(self, text: str, ok: bool) -> None:
        """The connection line at the top."""
        self.state_text, self.state_ok = text, ok
        if self.is_running:
            self._draw_top()

    def notice(self, text: str, level: Literal["info", "warning", "error"] = "info") -> None:
        """A line in the status bar (warnings and errors also as a toast)."""
        if not self.is_running:
            return
        style = {"info": "", "warning": "yellow", "error": "bold red"}[level]
        try:
            line = self.query_one("#status", Static)
        except NoMatches:  # a notice arriving while the view is torn down
            return
        line.update(Text(text, style=style, no_wrap=True))
        if level != "info":
            self.notify(text, severity="warning" if level == "warning" else "error")

    # ------------------------------------------------------------------ drawing

    def _cells(self, row: Row) -> list[Text]:
        values = cells(row, self.me)
        out = [Text(value + " ", no_wrap=True) for value in values]
        out[5].stylize(STATUS_STYLE.get(row.status, ""), 0, len(values[5]))
        return out

    def _rebuild(self) -> None:
        """Redraw the whole list (a filter change, or a row landed out of order)."""
        table = self.events_table
        current = self._selected_id()
        following = not self._shown or table.cursor_row >= len(self._shown) - 1
        table.clear()
        self._shown = []
        for row in self.rows.order:
            if self.filter.matches(row):
                table.add_row(*self._cells(row), key=row.id)
                self._shown.append(row.id)
        self._generation = self.rows.generation
        if self._shown:
            if following or current not in self._shown:
                table.move_cursor(row=len(self._shown) - 1)
            else:
                table.move_cursor(row=self._shown.index(current))
        self._draw_top()

    def _draw_top_soon(self) -> None:
        """Redraw the top line at most every TOP_EVERY seconds: it counts every row, and a
        burst of events would otherwise count them all once per event."""
        if not self._top_due:
            self._top_due = True
            self.set_timer(TOP_EVERY, self._draw_top)

    def _draw_top(self) -> None:
        self._top_due = False
        failed = sum(1 for row in self.rows.order if row.status == "failed")
        mark = "●" if self.state_ok else "○"
        parts = [
            f" {self.title_text}",
            f"{mark} {self.state_text}",
            f"{len(self.rows)} events",
            f"{failed} failed",
        ]
        if self.filter_text:
            parts.append(f"filter: {self.filter_text} ({len(self._shown)})")
        top = Text(" · ".join(parts), no_wrap=True, overflow="ellipsis")
        top.highlight_words(["○"], "bold red")
        top.highlight_words(["●"], "green")
        try:
            line = self.query_one("#top", Static)
        except NoMatches:  # a timer firing while the view is torn down (the stream just closed)
            return
        line.update(top)

    def _selected_id(self) -> str | None:
        table = self.events_table
        if not self._shown or table.cursor_row < 0 or table.cursor_row >= len(self._shown):
            return None
        return self._shown[table.cursor_row]

    def selected_row(self) -> Row | None:
        """The row under the cursor in the Events list."""
        event_id = self._selected_id()
        return self.rows.get(event_id) if event_id else None

    # ------------------------------------------------------------------ actions

    def action_interrupt(self) -> None:
        """Ctrl-C: quit with 130, as ``hook listen`` exits on Ctrl-C."""
        self.exit_code = 130
        self.exit()

    def action_help(self) -> None:
        """``?``: the keys."""
        from hookcli.ui.help import HelpScreen

        self.push_screen(HelpScreen())

    def action_filter(self) -> None:
        """``/``: type a filter; enter applies it, escape leaves it as it was."""
        field = self.query_one("#filter", Input)
        field.value = self.filter_text
        field.add_class("shown")
        field.focus()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, message: Input.Submitted) -> None:
        try:
            parsed = parse_filter(message.value)
        except HookError as exc:
            self.notice(f"filter: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""), "error")
            return
        self.filter, self.filter_text = parsed, message.value.strip()
        self._close_filter()
        self._rebuild()
        self.notice(f"{len(self._shown)} of {len(self.rows)} events match" if parsed.text else "")

    def _close_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.remove_class("shown")
        self.events_table.focus()

    def action_clear_filter(self) -> None:
        """escape: close the filter field, or clear the filter."""
        field = self.query_one("#filter", Input)
        if field.has_class("shown"):
            self._close_filter()
            return
        if self.filter_text:
            self.filter, self.filter_text = Filter(), ""
            self._rebuild()
            self.notice("filter cleared")

    def action_follow(self) -> None:
        """G / end: jump to the newest event (and follow new ones)."""
        if self._shown:
            self.events_table.move_cursor(row=len(self._shown) - 1)

    def action_details(self) -> None:
        """``d`` / enter: the selected event in full."""
        row = self.selected_row()
        if row is None:
            self.notice("no event selected")
            return
        from hookcli.ui.details import DetailsScreen

        self.push_screen(DetailsScreen(row, self._replayer()))

    @on(DataTable.RowSelected, "#events")
    def _row_selected(self, message: DataTable.RowSelected) -> None:
        self.action_details()

    def action_replay(self) -> None:
        """``r``: deliver the selected event again; the result shows in its row."""
        if self.query_one("#tabs", TabbedContent).active == "issues-tab":
            self.notice("in Issues, R replays the selected group (r replays one event in Events)")
            return
        row = self.selected_row()
        if row is None:
            self.notice("no event selected")
            return
        self.replay_row(row)

    def replay_row(self, row: Row) -> asyncio.Task[bool] | None:
        """Start a replay of ``row`` (also used by the Details screen)."""
        replayer = self._replayer()
        if replayer is None:
            self.notice("not connected to the relay yet", "warning")
            return None
        if row.status == "replaying":
            self.notice(f"{row.id[:8]} is already being replayed")
            return None
        return self._start(replayer.replay(row, self))

    def action_copy_id(self) -> None:
        """``y``: copy the full id (OSC 52; terminals that support it put it on the clipboard)."""
        row = self.selected_row()
        if row is None:
            return
        self.copy_to_clipboard(row.id)
        self.notice(f"copied {row.id}")

    def action_issues(self) -> None:
        """``i``: the Issues tab (its groups are fetched again on the way in)."""
        self.query_one("#tabs", TabbedContent).active = "issues-tab"
        pane = self.query_one("#issues-pane", IssuesPane)
        pane.table.focus()
        pane.reload()

    def show_event(self, event_id: str) -> None:
        """Details of any event: its row when held, else the relay's record of it."""
        from hookcli.ui.details import DetailsScreen

        row = self.rows.get(event_id)
        if row is not None:
            self.push_screen(DetailsScreen(row, self._replayer()))
            return
        replayer = self._replayer()
        if replayer is None:
            self.notice("not connected to the relay yet", "warning")
            return

        async def load() -> None:
            try:
                record = await fetch_record(replayer.connection, event_id)
            except HookError as exc:
                self.notice(f"cannot load {event_id[:8]}: {exc.message}", "error")
                return
            self.push_screen(DetailsScreen(row_from_record(record), replayer))

        self._start(load())

    def action_toggle_tab(self) -> None:
        """tab: Events <-> Issues."""
        tabs = self.query_one("#tabs", TabbedContent)
        if tabs.active == "events-tab":
            self.action_issues()
        else:
            tabs.active = "events-tab"
            self.events_table.focus()


# ------------------------------------------------------------------ the two commands


def ui_app(connection: Connection, query: RelayQuery, *, me: str = "", status: str = "") -> HookApp:
    """``hook ui``: the relay's history and new events, live."""
    rows = Rows()
    feed = RelayFeed(connection, query, rows)
    replayer = Replayer(connection)
    return HookApp(
        title=f"hook ui {connection.http_url}",
        run_feed=feed.run,
        replayer=lambda: replayer,
        me=me,
        rows=rows,
        initial_filter=f"status:{status}" if status else "",
        issue_filters={"listener": query.listener, "since": query.filters.get("since")},
    )


def listen_app(settings: ListenSettings, *, me: str = "") -> HookApp:
    """``hook listen --ui``: the listener runs as ``hook listen`` does; this view shows it."""
    rows = Rows()
    holder: list[ListenFeed] = []

    async def run(app: HookApp) -> None:
        feed = ListenFeed(settings, rows, app)
        holder.append(feed)
        await feed.run()

    return HookApp(
        title=f"hook listen {settings.target.label()}",
        run_feed=run,
        replayer=lambda: holder[0].replayer() if holder else None,
        me=me,
        rows=rows,
        issue_filters={"listener": settings.name},
    )
