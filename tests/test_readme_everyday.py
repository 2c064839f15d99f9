"""The README's "Everyday use", run as a person would: each marked block in its own terminal.

The commands come from README.md itself (each ``sh`` block after a ``<!-- terminal: NAME -->``
mark), so the README cannot rot: the relay, the app, three listeners and a tail each run as
their own process on a pseudo-terminal, and the last terminal's commands run one after the
other, as typed. Only the ports move (``HOOK_PORT``/``HOOK_RELAY`` and the app's 3000 become
free ports, so parallel runs never meet) and the id pasted into ``hook events show`` is the
one this run's replay printed. Each test checks the key lines one terminal showed.
"""

from __future__ import annotations

import getpass
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import UNIT, wait_until
from fixtures.terminal import PtyProcess

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTION = README.split("## Everyday use", 1)[1].split("\n## ", 1)[0]
#: The app's port in the README; each run replaces it with a free one.
APP_PORT = "3000"


def terminals() -> list[tuple[str, list[str]]]:
    """Each marked terminal of the section, in order, with its command lines."""
    found = re.findall(r"<!-- terminal: (\S+) -->\n```sh\n(.*?)```", SECTION, flags=re.S)
    return [(name, [line for line in block.splitlines() if line.strip()]) for name, block in found]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Terminal(PtyProcess):
    """One shell command on a pseudo-terminal of 100 columns, its screen collected as it comes."""

    def __init__(self, line: str, env: dict[str, str]) -> None:
        super().__init__(["bash", "-c", line], env, columns=100, rows=40, cwd=ROOT)
        self.line = line

    def wait_for(self, pattern: str, count: int = 1, timeout: float = UNIT * 4) -> None:
        """Wait until ``pattern`` (a regex) shows ``count`` times."""

        def shown() -> bool:
            if self.proc.poll() is not None:
                self._reader.join(UNIT)
                if len(re.findall(pattern, self.text)) < count:
                    raise AssertionError(f"{self.line!r} exited: {self.text[-2000:]}")
            return len(re.findall(pattern, self.text)) >= count

        wait_until(shown, timeout, f"{pattern!r} x{count} in the output of {self.line!r}")

    def wait(self, timeout: float = UNIT * 6) -> int:
        """The exit code, once the output is read to the end."""
        code = self.proc.wait(timeout)
        self._reader.join(UNIT)
        return code

    def interrupt(self) -> int | None:
        """Ctrl-C, as the person closes the terminal's program; its exit code."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                return self.wait(UNIT * 2)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(UNIT)
        self._reader.join(UNIT)
        os.close(self.master)
        return self.proc.returncode


@dataclass
class Walk:
    """What each terminal showed: ``screens[name]``; the commands terminal per command."""

    screens: dict[str, str] = field(default_factory=dict)
    commands: list[tuple[str, int, str]] = field(default_factory=list)
    codes: dict[str, int | None] = field(default_factory=dict)
    app_port: str = ""

    def command(self, start: str) -> tuple[int, str]:
        """The exit code and screen of the command line starting with ``start``."""
        [found] = [(code, text) for line, code, text in self.commands if line.startswith(start)]
        return found


def walk_readme(tmp: Path) -> Walk:
    """Run the section's terminals in order, as the README says, and collect every screen."""
    relay_port, app_port = free_port(), str(free_port())
    venv_bin = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOK_")}
    env.update(
        PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
        HOOK_CONFIG=str(tmp / "no-config.toml"),
        HOOK_DATA_DIR=str(tmp / "data"),
        HOOK_PORT=str(relay_port),
        HOOK_RELAY=f"http://127.0.0.1:{relay_port}",
        TERM="xterm-256color",
        COLUMNS="100",
    )
    env.pop("NO_COLOR", None)
    env.setdefault("USER", getpass.getuser())  # a login shell has it; `$USER` is in a command
    walk = Walk(app_port=app_port)
    running: dict[str, Terminal] = {}

    def typed(line: str) -> str:
        return re.sub(rf"\b{APP_PORT}\b", app_port, line)

    ready = {
        "relay": r"auth",
        "app": r"example app on",
        "tail": r"Ready\.",
    }
    try:
        for name, lines in terminals():
            if name != "commands":
                [line] = lines
                running[name] = Terminal(typed(line), env)
                running[name].wait_for(ready.get(name, r"Ready\."), timeout=UNIT * 6)
                continue
            for line in lines:
                if line.startswith("hook events --status failed"):
                    # A person reads the listeners' terminals first: the JPY order has failed
                    # (after its retries) and every listener has answered what it got.
                    running["listen-app"].wait_for(r"✗ failed 500", timeout=UNIT * 6)
                    running["listen-app"].wait_for(r"-> 200", count=3)
                    running["listen-exec"].wait_for(r"-> 0 ", count=4)
                    running["listen-handler"].wait_for(r"-> ", count=6)
                    running["tail"].wait_for(r"o-1045")
                if line.startswith("hook events show"):
                    replayed = walk.command("hook replay")[1]
                    [short] = re.findall(r"Order Placed\s+shop\.orders\s+([0-9a-f]{8})", replayed)
                    line = re.sub(r"show \S+", f"show {short}", line)
                term = Terminal(typed(line), env)
                code = term.wait()
                walk.commands.append((line, code, term.text))
                os.close(term.master)
    finally:
        for name, term in reversed(list(running.items())):
            walk.codes[name] = term.interrupt()
            walk.screens[name] = term.text
    return walk


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walk]:
    """The README's everyday use, run once for every test of this module."""
    yield walk_readme(tmp_path_factory.mktemp("everyday"))


def me() -> str:
    from hookcli.cli.options import default_name

    return default_name()


def test_the_readme_marks_seven_terminals() -> None:
    """The section has its terminals marked, each long-running one with a single command."""
    names = [name for name, _ in terminals()]
    assert names == [
        "relay",
        "app",
        "listen-app",
        "listen-exec",
        "listen-handler",
        "tail",
        "commands",
    ]
    assert all(len(lines) == 1 for name, lines in terminals() if name != "commands")


def test_the_app_runs_in_its_own_terminal(walk: Walk) -> None:
    """The app's terminal shows only the app: what it handled, nothing of hook's lines."""
    screen = walk.screens["app"]
    assert f"example app on http://127.0.0.1:{walk.app_port}" in screen
    assert screen.count("handled Order Placed") >= 3
    assert "retrying" not in screen and "hook listen" not in screen


@pytest.mark.parametrize(
    ("terminal", "suffix"),
    [("listen-app", APP_PORT), ("listen-exec", "exec:"), ("listen-handler", "handler:handler.py")],
)
def test_each_listener_keeps_its_own_identity(walk: Walk, terminal: str, suffix: str) -> None:
    """The three listeners ran side by side to the end (Ctrl-C, 130), none replaced, each
    saying its user@host:<target> identity."""
    screen = walk.screens[terminal]
    suffix = walk.app_port if suffix == APP_PORT else suffix
    assert re.search(rf"as {re.escape(me())}:{re.escape(suffix)}", screen)
    assert "replaced by a newer connection" not in screen
    assert walk.codes[terminal] == 130


def test_the_app_listener_shows_the_jpy_failure(walk: Walk) -> None:
    """Listener :3000 delivered the three good orders and recorded the JPY one failed."""
    screen = walk.screens["listen-app"]
    assert "no exchange rate for JPY" in screen
    assert len(re.findall(r"-> 200", screen)) >= 3


def test_the_tail_shows_the_large_order(walk: Walk) -> None:
    """The tail, started before the sends, shows the one order the pattern matches."""
    screen = walk.screens["tail"]
    assert '"orderId": "o-1045"' in screen
    assert "o-1044" not in screen and "o-1043" not in screen


def test_events_lists_the_failure_with_a_short_id(walk: Walk) -> None:
    """`hook events --status failed --listener you@host:3000` lists the JPY order in 80-ish
    columns, its id cut to 8 characters."""
    code, screen = walk.command("hook events --status failed")
    assert code == 0, screen
    [row] = [line for line in screen.splitlines() if "Order Placed" in line]
    port = walk.app_port
    assert re.search(rf"\s[0-9a-f]{{8}}\s+shop\.orders\s+Order Placed\s+✗ failed 500 :{port}", row)
    assert max(len(line) for line in screen.splitlines()) <= 100


def test_replay_failed_replays_only_this_listeners_failure(walk: Walk) -> None:
    """`hook replay --failed --target localhost:3000` replays the one failure of that
    listener (the app still fails: exit 1, said so)."""
    code, screen = walk.command("hook replay")
    assert code == 1
    assert len(re.findall(r"Order Placed\s+shop\.orders\s+[0-9a-f]{8}", screen)) == 1
    assert "Error: 1 of 1 replays failed" in screen


def test_events_show_takes_the_pasted_short_id_and_tells_the_story(walk: Walk) -> None:
    """`hook events show <8 characters from the replay line>` shows the event, its failed live
    delivery and the replay that answered it: same target, by whom, of which row."""
    code, screen = walk.command("hook events show")
    assert code == 0, screen
    identity = f"{me()}:{walk.app_port}"
    target = f"http://localhost:{walk.app_port}/"
    lines = [line.rstrip() for line in screen.splitlines()]
    [live, replay] = [n for n, line in enumerate(lines) if f"{identity}  failed 500" in line]
    row = re.match(r"#(\d+)", lines[live])
    assert row is not None
    assert lines[live].endswith(f"-> {target}") and lines[replay].endswith(f"-> {target}")
    assert lines[replay + 1].strip() == f"replay of #{row.group(1)} by {identity}"


def test_the_pattern_example_matches(walk: Walk) -> None:
    """`hook pattern test` on the README's two files prints match (exit 0)."""
    code, screen = walk.command("hook pattern test")
    assert (code, screen.strip()) == (0, "match")


def shown(terminal: str) -> str:
    """The ``text`` block the README shows after a terminal's commands (its output)."""
    after = SECTION.split(f"<!-- terminal: {terminal} -->", 1)[1]
    found = re.search(r"```text\n(.*?)```", after, flags=re.S)
    assert found is not None, f"the README shows no output for terminal {terminal}"
    return found.group(1)


@pytest.mark.parametrize(
    ("terminal", "lines"),
    [
        ("app", ["example app on http://127.0.0.1:3000", "handled Order Placed"]),
        ("listen-app", ["as you@laptop:3000", "no exchange rate for JPY", "-> 200"]),
        ("listen-exec", ["as you@laptop:exec:", "-> 0 exec jq -c .detail"]),
        ("listen-handler", ["as you@laptop:handler:handler.py"]),
        ("tail", ['"orderId": "o-1045"']),
        ("commands", ["✗ failed 500 :3000", "replay of #13 by you@laptop:3000"]),
    ],
)
def test_the_readme_shows_what_the_run_shows(terminal: str, lines: list[str]) -> None:
    """The output pasted in the README carries the same key lines the run checks above."""
    text = shown(terminal)
    assert all(line in text for line in lines), text
