"""``hook ui`` and ``hook listen --ui``: Textual's pilot against a real relay and a real target.

The relay and the recording HTTP target run in a background loop; the app runs headless in the
test's own loop and is driven by key presses. Screen text is what the widgets render.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from rich.console import Console

from hookcli.client import RelayApi
from hookcli.config import Connection
from hookcli.delivery import RetryPolicy
from hookcli.listen import ListenSettings, TargetSpec, listen
from hookcli.protocol import Start
from hookcli.relay.service import RunningRelay
from hookcli.ui.app import HookApp, listen_app, ui_app
from hookcli.ui.details import DetailsScreen
from hookcli.ui.feed import RelayQuery
from hookcli.ui.help import HelpScreen
from hookcli.ui.issues import IssuesPane
from hookcli.updates import Update

from conftest import UNIT, LoopThread, RecordingTarget, async_wait_until, run, wait_until
from fixtures.terminal import PtyProcess

NAME = "alice@laptop:3000"
SIZE = (80, 24)


def connection(relay: RunningRelay) -> Connection:
    """The relay with its local token, as ``hook ui --relay URL`` resolves it."""
    return Connection(relay=relay.url, token=relay.local_token, configured=True)


async def ingest(relay: RunningRelay, body: dict[str, Any], channel: str = "shop") -> str:
    """POST a webhook to the relay's ingest; its event id."""
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{relay.url}/v1/ingest/{channel}/orders?x=1",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "X-Signature": "sig-123"},
        ) as response:
            assert response.status == 202
            return str((await response.json())["id"])


def listen_settings(relay: RunningRelay, target: RecordingTarget, **extra: Any) -> ListenSettings:
    """A listener from the first stored event, one quick attempt per event unless told."""
    values: dict[str, Any] = {
        "connection": connection(relay),
        "name": NAME,
        "pattern": {},
        "target": TargetSpec(url=f"{target.url}/hooks"),
        "start": Start("seq", seq=0),
        "policy": RetryPolicy(retries=0, timeout=2),
    }
    values.update(extra)
    return ListenSettings(**values)


async def history(relay: RunningRelay, **filters: Any) -> list[dict[str, Any]]:
    async with RelayApi.open(connection(relay)) as api:
        return await api.events(**filters)


async def deliver_once(relay: RunningRelay, target: RecordingTarget, count: int) -> None:
    """Run a real listener until the relay recorded ``count`` results, then stop it."""
    emitted: list[Update] = []
    task = asyncio.ensure_future(listen(listen_settings(relay, target), emitted.append))
    try:

        async def answered() -> int:
            rows = await history(relay, listener=NAME, limit=1000)
            return sum(1 for row in rows if row["deliveries"])

        deadline = asyncio.get_running_loop().time() + 2 * UNIT
        while await answered() < count:
            assert not task.done(), task
            assert asyncio.get_running_loop().time() < deadline, "listener did not answer"
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
def seeded(
    relay: RunningRelay, http_target: RecordingTarget, loop_thread: LoopThread
) -> tuple[RunningRelay, RecordingTarget, list[str]]:
    """Three webhooks: the first and third delivered, the second failed (500)."""
    ids = [
        loop_thread.run(ingest(relay, {"order": n, "total": 10 * n}, channel=channel))
        for n, channel in ((1, "shop"), (2, "shop"), (3, "billing"))
    ]
    http_target.statuses = [200, 500, 200]
    loop_thread.run(deliver_once(relay, http_target, 3))
    return relay, http_target, ids


@asynccontextmanager
async def running(app: HookApp) -> AsyncIterator[Any]:
    """The app headless at 80x24; its pilot."""
    async with app.run_test(size=SIZE) as pilot:
        yield pilot


def status_of(app: HookApp, event_id: str) -> str:
    """The status cell of an event's row as drawn."""
    return str(app.events_table.get_row(event_id)[5]).strip()


def text_of(renderable: Any, width: int = 100) -> str:
    """What a rich renderable shows, as plain text."""
    console = Console(width=width, record=True, color_system=None, file=open(os.devnull, "w"))
    console.print(renderable)
    text = console.export_text()
    console.file.close()
    return text


def details_text(app: HookApp) -> str:
    screen = app.screen
    assert isinstance(screen, DetailsScreen), screen
    return text_of(screen.query_one("#body").content)


def shown_ids(app: HookApp) -> list[str]:
    return [str(key.value) for key in app.events_table.rows]


# ------------------------------------------------------------------ Events


def test_events_list_shows_history_oldest_first_with_each_status(
    seeded: tuple[RunningRelay, RecordingTarget, list[str]],
) -> None:
    """History loads newest at the bottom, each row with its listener's status and code."""
    relay, _, ids = seeded

    async def main() -> None:
        app = ui_app(connection(relay), RelayQuery(), me="alice@laptop")
        async with running(app):
            await async_wait_until(lambda: len(shown_ids(app)) == 3, what="history rows")
            assert shown_ids(app) == ids
            assert [status_of(app, i) for i in ids] == ["delivered", "failed", "delivered"]
            row = [str(cell).strip() for cell in app.events_table.get_row(ids[1])]
            assert row[1] == ids[1][:8]
            assert row[4] == ":3000"  # the viewer's own user@host is left out
            assert row[6] == "500"
            assert app.events_table.cursor_row == 2  # at the newest

    run(main())


def test_new_events_appear_live_and_are_followed_at_the_bottom(
    seeded: tuple[RunningRelay, RecordingTarget, list[str]], loop_thread: LoopThread
) -> None:
    """An event ingested while the view is open appears at the bottom, selected, then its
    status moves from pending to delivered once a listener answers it."""
    relay, target, _ = seeded

    async def main() -> None:
        app = ui_app(connection(relay), RelayQuery())
        app_feed_poll = 0.05
        async with running(app):
            await async_wait_until(lambda: len(shown_ids(app)) == 3, what="history rows")
            await async_wait_until(lambda: "live" in app.state_text, what="the tail stream")
            new = await ingest(relay, {"order": 4})
            await async_wait_until(lambda: new in shown_ids(app), what="the live row")
            assert shown_ids(app)[-1] == new
            await async_wait_until(
                lambda: app.selected_row() is not None and app.selected_row().id == new,
                what="the cursor to follow",
            )
            assert status_of(app, new) == "pending"
            target.statuses = [200]
            await deliver_once(relay, target, 4)
            await async_wait_until(
                lambda: status_of(app, new) == "delivered",
                timeout=UNIT * 2 + app_feed_poll,
                what="the polled status",
            )

    run(main())


def test_cursor_left_above_the_bottom_is_not_moved_by_new_events(
    seeded: tuple[RunningRelay, RecordingTarget, list[str]],
) -> None:
    """Reading an older row, a new event does not steal the selection."""
    relay, _, ids = seeded

    async def main() -> None:
        app = ui_app(connection(relay), RelayQuery())
        async with running(app) as pilot:
            await async_wait_until(lambda: "live" in app.state_text, what="the tail stream")
            await pilot.press("up", "up")
            assert app.selected_row().id == ids[0]
            new = await ingest(relay, {"order": 5})
            await async_wait_until(lambda: new in shown_ids(app), what="the live row")
            assert app.selected_row().id == ids[0]
            await pilot.press("G")
            assert app.selected_row().id == new

    run(main())


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("status:failed", [1]),
        ("status:delivered", [0, 2]),
        ('{"source": ["webhook.billing"]}', [2]),
        ("billing", [2]),
        ("source:shop", [0, 1]),
        ("", [0, 1, 2]),
    ],
)
def test_filter_by_status_text_or_pattern(
    seeded: tuple[RunningRelay, RecordingTarget, list[str]], typed: str, expected: list[int]
) -> None:
    """``/`` then enter keeps only the rows the filter matches."""
    relay, _, ids = seeded

    async def main() -> None:
        app = ui_app(connection(relay), RelayQuery())
        async with running(app) as pilot:
            await async_wait_until(lambda: len(shown_ids(app)) == 3, what="history rows")
            await pilot.press("slash")
            await pilot.press(*typed)
            await pilot.press("enter")
            assert shown_ids(app) == [ids[n] for n in expected]

    run(main())


def test_invalid_pattern_filter_says_why_and_keeps_the_list(
    seeded: tuple[RunningRelay, RecordingTarget, list[str]],
) -> None:
    """A pattern EventBridge would reject is reported; the rows stay as they were."""
    relay, _, ids = seeded

    async def main() -> None:
        app = ui_app(connection(relay), RelayQuery())
        async with running(app) as pilot:
            await async_wait_until(lambda: len(shown_ids(app)) == 3, what="history rows")
            await pilot.press("slash", *'{"source": "shop"}', "enter")
            status = str(app.query_one("#status").content)
            assert "filter:" in status and "array" in status.lower()
            await pilot.press("escape")
            assert shown_ids(app) == ids

    run(main())


# ------------------------------------------------------------------ Details


def test_details_show_the_webhook_request_body_and_every_attempt(
    seeded: tuple[RunningRelay, RecordingTarget, list[str]],
) -> None:
    """enter on the failed row: method, path, headers, pretty JSON body, the 500 and its
    response body, and the target it went to."""
    relay, target, ids = seeded

    async def main() -> None:
        app = ui_app(connection(relay), RelayQuery())
        async with running(app) as pilot:
            await async_wait_until(lambda: len(shown_ids(app)) == 3, what="history rows")
            await pilot.press("up", "enter")
            await async_wait_until(
                lambda: "recorded by the relay" in details_text(app), what="the record"
            )
            text = details_text(app)
            assert ids[1] in text
            assert "POST /orders?x=1" in text
            assert "X-Signature: sig-123" in text
            assert '"total": 20' in text  # pretty-printed, not the compact bytes
            assert "failed 500" in text and "nope: rejected" in text
            assert f"-> {target.url}/hooks" in text
            await pilot.press("escape")
            assert not isinstance(app.screen, DetailsScreen)

    run(main())


# ------------------------------------------------------------------ replay


def test_r_replays_a_failed_event_and_the_result_replaces_it_in_place(
    seeded: tuple[RunningRelay, RecordingTarget, list[str]],
) -> None:
    """The target recovered: ``r`` on the failed row delivers it to the recorded target, the
    row turns delivered, and Details link the replay to the failure it answers."""
    relay, target, ids = seeded

    async def main() -> None:
        app = ui_app(connection(relay), RelayQuery())
        async with running(app) as pilot:
            await async_wait_until(lambda: len(shown_ids(app)) == 3, what="history rows")
            await pilot.press("up", "r")
            await async_wait_until(
                lambda: status_of(app, ids[1]) == "delivered", timeout=2 * UNIT, what="replay"
            )
            assert len(target.requests) == 4 and target.requests[-1].path == "/hooks/orders"
            assert "replay delivered: 200" in app.rows.get(ids[1]).note
            await pilot.press("d")
            await async_wait_until(
                lambda: "replay of #" in details_text(app), what="the replay link"
            )
            assert "answered by replay #" in details_text(app)
        rows = await history(relay, listener=NAME, status="failed")
        assert rows == []  # the replay answers the failure for that listener

    run(main())


def test_replay_without_a_recorded_target_explains_instead_of_failing(
    relay: RunningRelay, loop_thread: LoopThread
) -> None:
    """An event no listener got has no target to replay to: a notice says how instead."""

    async def main() -> None:
        event_id = await ingest(relay, {"order": 9})
        app = ui_app(connection(relay), RelayQuery())
        async with running(app) as pilot:
            await async_wait_until(lambda: len(shown_ids(app)) == 1, what="the row")
            await pilot.press("r")
            await async_wait_until(lambda: app.rows.get(event_id).note != "", what="a note")
            assert "no recorded target" in app.rows.get(event_id).note
            assert app.is_running

    run(main())


def test_y_copies_the_full_id(seeded: tuple[RunningRelay, RecordingTarget, list[str]]) -> None:
    """``y`` puts the selected event's full id on the clipboard (OSC 52 on a terminal)."""
    relay, _, ids = seeded

    async def main() -> None:
        app = ui_app(connection(relay), RelayQuery())
        async with running(app) as pilot:
            await async_wait_until(lambda: len(shown_ids(app)) == 3, what="history rows")
            await pilot.press("y")
            assert app.clipboard == ids[2]

    run(main())


# ------------------------------------------------------------------ keys, exit


def test_help_lists_the_keys_and_closes(
    seeded: tuple[RunningRelay, RecordingTarget, list[str]],
) -> None:
    """``?`` shows every key; escape closes it."""
    relay, _, _ = seeded

    async def main() -> None:
        app = ui_app(connection(relay), RelayQuery())
        async with running(app) as pilot:
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            text = text_of(app.screen.query_one("#help").content)
            for key in ("enter / d", "replay", "copy", "filter", "Issues", "quit"):
                assert key in text
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)

    run(main())


@pytest.mark.parametrize(("key", "code"), [("q", 0), ("ctrl+c", 130)])
def test_q_quits_0_and_ctrl_c_quits_130(relay: RunningRelay, key: str, code: int) -> None:
    """q is a normal exit; Ctrl-C exits 130 as ``hook listen`` does."""

    async def main() -> None:
        app = ui_app(connection(relay), RelayQuery())
        async with running(app) as pilot:
            await pilot.press(key)
            await async_wait_until(lambda: not app.is_running, what="exit")
        assert app.exit_code == code and app.error is None

    run(main())


def test_unreachable_relay_ends_with_the_error_hook_events_gives(tmp_path: Path) -> None:
    """No relay at the URL: the view exits with the relay error (exit 3 at the CLI)."""
    from hookcli.errors import RelayError

    async def main() -> None:
        gone = Connection(relay="http://127.0.0.1:9", token="x" * 16, configured=True)
        app = ui_app(gone, RelayQuery())
        async with running(app):
            await async_wait_until(lambda: not app.is_running, what="exit")
        assert isinstance(app.error, RelayError)
        assert app.error.exit_code == 3

    run(main())


# ------------------------------------------------------------------ hook listen --ui


def test_listen_ui_delivers_retries_and_moves_the_cursor_like_hook_listen(
    relay: RunningRelay, http_target: RecordingTarget
) -> None:
    """The view runs the real listener: a 503 then 200 shows retrying, then delivered after
    2 attempts, and the relay records the result for the listener's name."""

    async def main() -> None:
        settings = listen_settings(relay, http_target, policy=RetryPolicy(retries=2, timeout=2))
        http_target.statuses = [503, 200]
        app = listen_app(settings)
        async with running(app) as pilot:
            await async_wait_until(lambda: app.state_ok, what="subscribed")
            event_id = await ingest(relay, {"order": 7})
            await async_wait_until(lambda: event_id in shown_ids(app), what="the row")
            await async_wait_until(
                lambda: status_of(app, event_id) == "delivered", timeout=2 * UNIT, what="delivery"
            )
            row = app.rows.get(event_id)
            assert row.attempts == 2
            assert [a.status for a in row.history] == ["retrying", "delivered"]
            await pilot.press("enter")
            await async_wait_until(
                lambda: "this listener, this session" in details_text(app), what="details"
            )
            assert "503" in details_text(app)
        rows = await history(relay, listener=NAME, status="delivered")
        assert [r["event"]["id"] for r in rows] == [event_id]

    run(main())


def test_listen_ui_r_replays_to_the_listeners_own_target(
    relay: RunningRelay, http_target: RecordingTarget
) -> None:
    """``r`` in listen --ui delivers again to the target the listener delivers to."""

    async def main() -> None:
        http_target.statuses = [500]
        app = listen_app(listen_settings(relay, http_target))
        async with running(app) as pilot:
            await async_wait_until(lambda: app.state_ok, what="subscribed")
            event_id = await ingest(relay, {"order": 8})
            await async_wait_until(
                lambda: event_id in shown_ids(app) and status_of(app, event_id) == "failed",
                what="the failure",
            )
            await pilot.press("r")
            await async_wait_until(
                lambda: status_of(app, event_id) == "delivered", timeout=2 * UNIT, what="replay"
            )
            assert len(http_target.requests) == 2

    run(main())


# ------------------------------------------------------------------ the real command


def hook_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOK_")}
    env["HOOK_CONFIG"] = str(tmp_path / "no-config.toml")
    env.pop("NO_COLOR", None)
    env["TERM"] = "xterm-256color"
    return env


@pytest.mark.slow
@pytest.mark.parametrize("no_color", [False, True])
def test_hook_ui_in_a_real_terminal_shows_the_events_and_q_exits_0(
    seeded: tuple[RunningRelay, RecordingTarget, list[str]], tmp_path: Path, no_color: bool
) -> None:
    """``hook ui`` on an 80x24 pseudo-terminal draws the list with ids and statuses spelled
    out, in colour or with NO_COLOR."""
    relay, _, ids = seeded
    env = hook_env(tmp_path)
    if no_color:
        env["NO_COLOR"] = "1"
    terminal = PtyProcess(
        [sys.executable, "-m", "hookcli", "ui", "--relay", relay.url],
        env,
        columns=80,
        rows=24,
    )
    try:
        wait_until(
            lambda: ids[1][:8] in terminal.text and "failed" in terminal.text,
            timeout=4 * UNIT,
            what="the events on screen",
        )
        assert "Events" in terminal.text and "Issues" in terminal.text
        os.write(terminal.master, b"q")
        assert terminal.proc.wait(timeout=2 * UNIT) == 0
    finally:
        if terminal.proc.poll() is None:
            terminal.proc.kill()
            terminal.proc.wait()
        os.close(terminal.master)


def close(terminal: PtyProcess) -> None:
    if terminal.proc.poll() is None:
        terminal.proc.kill()
        terminal.proc.wait()
    os.close(terminal.master)


@pytest.mark.slow
def test_hook_ui_exits_143_on_sigterm(relay: RunningRelay, tmp_path: Path) -> None:
    """A supervisor's SIGTERM closes the view and exits 143, as ``hook listen`` does."""
    terminal = PtyProcess(
        [sys.executable, "-m", "hookcli", "ui", "--relay", relay.url],
        hook_env(tmp_path),
        columns=80,
        rows=24,
    )
    try:
        wait_until(lambda: "live" in terminal.text, timeout=4 * UNIT, what="the view")
        terminal.proc.send_signal(signal.SIGTERM)
        assert terminal.proc.wait(timeout=2 * UNIT) == 143
    finally:
        close(terminal)


@pytest.mark.slow
def test_listen_ui_keeps_hook_listens_exit_codes_and_prints_the_error(tmp_path: Path) -> None:
    """``--exit-on-disconnect`` with no relay: the view closes, exit 3, and the error and
    its hint are printed once the terminal is restored."""
    terminal = PtyProcess(
        [
            sys.executable,
            "-m",
            "hookcli",
            "listen",
            "--ui",
            "--target",
            "localhost:3000",
            "--relay",
            "http://127.0.0.1:9",
            "--token",
            "t" * 16,
            "--exit-on-disconnect",
        ],
        hook_env(tmp_path),
        columns=80,
        rows=24,
    )
    try:
        assert terminal.proc.wait(timeout=4 * UNIT) == 3
        tail = terminal.text.rsplit("Error:", 1)
        assert len(tail) == 2 and "cannot reach the relay" in tail[1]
        assert "Hint:" in tail[1]
    finally:
        close(terminal)


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["ui"], "hook events --json"),
        (["listen", "--target", "localhost:3000", "--ui"], "plain `hook listen`"),
    ],
)
def test_without_a_terminal_both_commands_refuse_with_a_hint(
    tmp_path: Path, args: list[str], hint: str
) -> None:
    """stdout piped: exit 2 before connecting, and the hint names the scriptable command."""
    done = subprocess.run(
        [sys.executable, "-m", "hookcli", *args],
        env=hook_env(tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=2 * UNIT,
    )
    assert done.returncode == 2
    assert "needs a terminal" in done.stderr and hint in done.stderr
    assert done.stdout == ""


def test_hook_version_does_not_import_textual(tmp_path: Path) -> None:
    """The view's library loads only inside its commands."""
    code = (
        "import sys\nfrom hookcli.cli import main\n"
        "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
        "print('textual' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=2 * UNIT
    )
    assert done.stdout.strip().endswith("False")


# ------------------------------------------------------------------ Issues


@pytest.fixture
def two_failures(
    relay: RunningRelay, http_target: RecordingTarget, loop_thread: LoopThread
) -> tuple[RunningRelay, RecordingTarget, list[str]]:
    """Three webhooks: two failed with the same cause (500), one delivered."""
    ids = [loop_thread.run(ingest(relay, {"order": n})) for n in (1, 2, 3)]
    http_target.statuses = [500, 500, 200]
    loop_thread.run(deliver_once(relay, http_target, 3))
    return relay, http_target, ids


def issue_rows(app: HookApp) -> list[list[str]]:
    pane = app.query_one("#issues-pane", IssuesPane)
    table = pane.table
    return [[str(c).strip() for c in table.get_row(key)] for key in table.rows]


def test_issues_tab_groups_failures_by_cause_with_count_and_example(
    two_failures: tuple[RunningRelay, RecordingTarget, list[str]],
) -> None:
    """``i`` lists one group for the two 500s: its count, listener and cause; enter opens
    the newest example in Details."""
    relay, _, ids = two_failures

    async def main() -> None:
        app = ui_app(connection(relay), RelayQuery(), me="alice@laptop")
        async with running(app) as pilot:
            await async_wait_until(lambda: len(shown_ids(app)) == 3, what="history rows")
            await pilot.press("i")
            await async_wait_until(lambda: issue_rows(app) != [], what="the groups")
            [row] = issue_rows(app)
            assert row[0] == "1" and row[1] == "2" and row[3] == ":3000"
            assert row[4].startswith("HTTP 500: nope: rejected")
            summary = str(app.query_one("#issue-summary").content)
            assert "2 events" in summary and ids[1][:8] in summary
            await pilot.press("enter")
            await async_wait_until(lambda: isinstance(app.screen, DetailsScreen), what="details")
            assert ids[1] in details_text(app)

    run(main())


def test_R_replays_every_event_of_a_group_and_the_group_goes(
    two_failures: tuple[RunningRelay, RecordingTarget, list[str]],
) -> None:
    """The target recovered: ``R`` replays both events of the group to its recorded target,
    progress counts them, and the group is gone once they succeeded."""
    relay, target, ids = two_failures

    async def main() -> None:
        app = ui_app(connection(relay), RelayQuery(), me="alice@laptop")
        async with running(app) as pilot:
            await pilot.press("i")
            await async_wait_until(lambda: issue_rows(app) != [], what="the groups")
            await pilot.press("R")
            pane = app.query_one("#issues-pane", IssuesPane)
            await async_wait_until(
                lambda: "Replayed" in pane.progress, timeout=2 * UNIT, what="the replay"
            )
            assert "2 delivered, 0 failed" in pane.progress
            await async_wait_until(lambda: issue_rows(app) == [], what="the group to go")
            assert "nothing to fix" in str(app.query_one("#issue-summary").content)
        replayed = [r for r in target.requests[3:]]
        assert len(replayed) == 2
        rows = await history(relay, listener=NAME, status="failed")
        assert rows == []

    run(main())
