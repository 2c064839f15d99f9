"""What ``hook listen`` prints on a terminal and in --json: local code's output under its event,
-v/-q, failures that read as failures without colour, aligned columns.

Real subprocesses of ``python -m hookcli`` against a real relay on loopback; the terminal ones
run on a pseudo-terminal (so rich renders as it does for a person), with NO_COLOR set.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import subprocess
import sys
import termios
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hookcli.relay.service import RunningRelay

from conftest import UNIT, wait_until

pytestmark = pytest.mark.slow

_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# CSI sequences (cursor moves of rich's live status line) and OSC ones.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
COLUMNS = 100


def hook_env(tmp_path: Path) -> dict[str, str]:
    """The outer environment minus HOOK_* variables; no colour, a known terminal width."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOOK_")}
    env.update(
        HOOK_CONFIG=str(tmp_path / "no-such-config.toml"),
        NO_COLOR="1",
        COLUMNS=str(COLUMNS),
        LINES="40",
        TERM="xterm",
    )
    return env


class Terminal:
    """``hook ARGS`` with stdin, stdout and stderr on a pseudo-terminal; its screen text kept."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        master, slave = pty.openpty()
        self._master = master
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hookcli", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=cwd,
            close_fds=True,
            start_new_session=True,
            # The terminal is the child's controlling one, so Ctrl-C typed on it is SIGINT.
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(slave)
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._master, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            self._chunks.append(data)

    @property
    def text(self) -> str:
        """Everything printed so far, escape sequences removed, lines trimmed on the right."""
        raw = b"".join(self._chunks).decode("utf-8", "replace")
        # rich's live status line is redrawn after "\r" + erase-line: keep what follows it.
        lines = [line.split("\x1b[2K")[-1] for line in raw.split("\n")]
        return "\n".join(_ANSI.sub("", line).replace("\r", "").rstrip() for line in lines)

    def wait_for(self, needle: str, timeout: float = UNIT) -> None:
        wait_until(lambda: needle in self.text, timeout=timeout, what=f"{needle!r} in {self.text}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(UNIT)
        self._reader.join(UNIT)
        os.close(self._master)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Callable[..., Terminal]]:
    """Start ``hook ARGS...`` on a pseudo-terminal; all are killed at teardown."""
    started: list[Terminal] = []

    def start(*args: str) -> Terminal:
        started.append(Terminal(list(args), hook_env(tmp_path), tmp_path))
        return started[-1]

    yield start
    for term in started:
        term.close()


def listen(relay: RunningRelay, *args: str) -> list[str]:
    return ["listen", "--relay", relay.url, "--name", "out", "--retries", "0", *args]


def ingest(relay: RunningRelay, body: dict[str, Any], detail_type: str = "Order Placed") -> str:
    """POST a webhook to the relay; its event id."""
    request = urllib.request.Request(
        f"{relay.url}/v1/ingest/shop",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-Hook-Detail-Type": detail_type},
    )
    with _HTTP.open(request, timeout=UNIT) as response:
        event_id: str = json.load(response)["id"]
        return event_id


def under_event(text: str, marker: str) -> list[str]:
    """The lines printed after the event line that contains ``marker``, up to the next blank
    line or event line (which start with a time)."""
    lines = text.split("\n")
    start = next(i for i, line in enumerate(lines) if marker in line)
    found = []
    for line in lines[start + 1 :]:
        if not line.startswith(" " * 11) or not line.strip():
            break
        found.append(line.strip())
    return found


def script(folder: Path, body: str) -> str:
    """An --exec command running ``body`` from a file (a short action on the event line)."""
    (folder / "out.sh").write_text("cat >/dev/null\n" + body + "\n")
    return "sh out.sh"


@pytest.mark.parametrize(
    ("flags", "shown"),
    [
        ([], ["one", "two", "three", "… 2 more lines (-v shows all)"]),
        (["-v"], ["one", "two", "three", "four", "five"]),
        (["-q"], []),
    ],
    ids=["default", "verbose", "quiet"],
)
def test_exec_output_is_shown_under_the_event_line(
    relay: RunningRelay,
    terminal: Callable[..., Terminal],
    tmp_path: Path,
    flags: list[str],
    shown: list[str],
) -> None:
    """--exec's output appears under its event: first lines by default, all with -v, none -q."""
    command = script(tmp_path, "echo one; echo two; echo three; echo four; echo five >&2")
    term = terminal(*listen(relay, "--exec", command, *flags))
    term.wait_for("Ready.")
    ingest(relay, {"order": 1})
    term.wait_for("-> 0 exec")
    ingest(relay, {"order": 2}, detail_type="Second")  # its line ends the first one's output
    term.wait_for("Second")
    assert under_event(term.text, "-> 0 exec") == shown, term.text


def test_exec_output_lines_are_cut_to_the_terminal_width(
    relay: RunningRelay, terminal: Callable[..., Terminal], tmp_path: Path
) -> None:
    """A long output line is cut to the terminal's width, not wrapped over many rows."""
    command = script(tmp_path, "printf 'x%.0s' $(seq 300); echo")
    term = terminal(*listen(relay, "--exec", command))
    term.wait_for("Ready.")
    ingest(relay, {"order": 1})
    term.wait_for("-> 0 exec")
    ingest(relay, {"order": 2}, detail_type="Second")
    term.wait_for("Second")
    [line] = under_event(term.text, "-> 0 exec")
    assert line == "x" * (COLUMNS - 11 - 1) + "…"


def test_handler_prints_and_return_value_are_shown_under_the_event_line(
    relay: RunningRelay, terminal: Callable[..., Terminal], tmp_path: Path
) -> None:
    """A handler's return value and its print() output appear under its event's line."""
    app = tmp_path / "app.py"
    app.write_text(
        "def handler(event, context):\n"
        "    print('got order', event['detail']['order'])\n"
        "    return {'ok': event['detail']['order']}\n"
    )
    term = terminal(*listen(relay, "--handler", f"{app}:handler"))
    term.wait_for("Ready.")
    ingest(relay, {"order": 7})
    term.wait_for("-> handler")
    ingest(relay, {"order": 8}, detail_type="Second")
    term.wait_for("Second")
    assert under_event(term.text, "-> handler") == ['returned {"ok": 7}', "got order 7"]


def test_json_result_line_carries_output_and_value(relay: RunningRelay, tmp_path: Path) -> None:
    """In --json mode the command's output is a field of the result line."""
    command = "cat >/dev/null; echo to-stdout; echo to-stderr >&2"
    process = subprocess.Popen(
        [sys.executable, "-m", "hookcli", *listen(relay, "--exec", command)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=hook_env(tmp_path),
        text=True,
    )
    try:
        assert process.stdout is not None
        while json.loads(process.stdout.readline())["type"] != "ready":
            pass
        ingest(relay, {"order": 1})
        while (result := json.loads(process.stdout.readline()))["type"] != "result":
            pass
    finally:
        process.kill()
        process.communicate(timeout=UNIT)
    assert (result["output"], result["value"]) == ("to-stdout\nto-stderr\n", None)


def test_failed_line_reads_as_a_failure_without_colour(
    relay: RunningRelay, terminal: Callable[..., Terminal]
) -> None:
    """With NO_COLOR a failed delivery says so in words, unlike a delivered one."""
    term = terminal(*listen(relay, "--exec", "exit 3"))
    term.wait_for("Ready.")
    ingest(relay, {"order": 1})
    term.wait_for("webhook.shop")
    [line] = [line for line in term.text.split("\n") if "webhook.shop" in line]
    assert "✗ failed 3 exec" in line and "->" not in line


def test_a_long_detail_type_does_not_shift_the_columns(
    relay: RunningRelay, terminal: Callable[..., Terminal]
) -> None:
    """Event lines keep their columns whatever the detail-type's length."""
    term = terminal(*listen(relay, "--exec", "true"))
    term.wait_for("Ready.")
    ingest(relay, {"order": 1}, detail_type="A")
    ingest(relay, {"order": 2}, detail_type="Order Fulfillment Partially Completed Upstream")
    wait_until(lambda: term.text.count("-> 0 exec") == 2, what="two event lines")
    rows = [line for line in term.text.split("\n") if "-> 0 exec" in line]
    assert len({row.index("webhook.shop") for row in rows}) == 1, rows
    assert len({row.index("-> 0 exec") for row in rows}) == 1, rows
    assert "Order Fulfillment P…" in rows[1]
