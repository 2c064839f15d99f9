"""The help screen (``?``): every key of the full-screen view, in one table."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Center
from textual.screen import ModalScreen
from textual.widgets import Static

#: (key, what it does): the README's "Full-screen view" table says the same.
KEYS: tuple[tuple[str, str], ...] = (
    ("↑ ↓ PgUp PgDn", "move through the list (at the bottom, new events are followed)"),
    ("G / End", "jump to the newest event and follow"),
    ("enter / d", "details: envelope, webhook request and body, every attempt"),
    ("r", "replay the selected event to its listener's target; the result shows in place"),
    ("y", "copy the full event id (terminals with OSC 52 clipboard support)"),
    ("/", "filter: text, status:failed, source:…, or an EventBridge pattern {…}"),
    ("escape", "close the filter, clear it, or go back from details"),
    ("i / tab", "Issues: failed deliveries grouped by cause"),
    ("R", "in Issues: replay every event of the selected group"),
    ("?", "this help"),
    ("q / Ctrl-C", "quit (Ctrl-C exits 130, like hook listen)"),
)


class HelpScreen(ModalScreen[None]):
    """The keys; any of escape, q or ? closes it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    #help { width: auto; max-width: 78; height: auto; border: round $accent; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close"),
    ]

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, pad_edge=False, title="hook ui: keys")
        table.add_column("key", style="bold", no_wrap=True)
        table.add_column("what")
        for key, what in KEYS:
            table.add_row(key, what)
        with Center():
            yield Static(table, id="help")

    def action_close(self) -> None:
        """Back to where you were."""
        self.app.pop_screen()
