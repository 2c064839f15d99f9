"""The CLI's one error boundary: exit codes, ``Error:`` on stderr, nothing on stdout, no traceback.

Real subprocesses (``python -m hookcli``) for the process-level contract; ``hookcli.cli.main`` in
process and Typer's CliRunner for the rest. Only env vars and stdin are set; nothing is mocked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hookcli import __version__
from hookcli.cli import EXIT_CODES_HELP, app, main

from conftest import UNIT, wait_until

PATTERN = '{"source": ["shop.orders"]}'
MATCHING = '{"id": "1", "source": "shop.orders", "detail-type": "t", "detail": {}}'
OTHER = '{"id": "2", "source": "billing", "detail-type": "t", "detail": {}}'
BAD_PATTERN = '{"source": '


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No debug flag or user config leaks in from the environment running the tests."""
    monkeypatch.delenv("HOOK_DEBUG", raising=False)
    monkeypatch.setenv("HOOK_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.setenv("NO_COLOR", "1")
    yield


def hook(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Ran:
    """Run ``python -m hookcli ARGS`` in a subprocess."""
    done = subprocess.run(
        [sys.executable, "-m", "hookcli", *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=UNIT * 2,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def in_process(capsys: pytest.CaptureFixture[str], *args: str) -> Ran:
    """Run ``hookcli.cli.main(ARGS)`` in this process, as the ``hook`` script does."""
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    code = info.value.code
    assert isinstance(code, int)
    return Ran(code, out, err)


def folded(text: str) -> str:
    return " ".join(text.split())


# --- version and help --------------------------------------------------------------------------


def test_version_subprocess() -> None:
    """``hook --version`` prints ``hook <version>`` and exits 0."""
    assert hook("--version") == Ran(0, f"hook {__version__}\n", "")


def test_version_cli_runner() -> None:
    """The app prints the version under CliRunner too."""
    result = CliRunner().invoke(app, ["--version"])
    assert (result.exit_code, result.stdout) == (0, f"hook {__version__}\n")


@pytest.mark.parametrize("command", ["listen", "tail", "relay", "pattern"])
def test_help_lists_commands(command: str) -> None:
    """``hook --help`` lists the command groups."""
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert any(line.split()[:1] == [command] for line in result.stdout.splitlines())


def test_help_has_exit_code_table() -> None:
    """``hook --help`` (a real process) documents every exit code."""
    ran = hook("--help")
    assert (ran.code, ran.stderr) == (0, "")
    assert folded(EXIT_CODES_HELP) in folded(ran.stdout)
    for code in ("0 ok", "1 no match", "2 bad usage", "3 relay", "4 auth", "130 interrupted"):
        assert code in folded(ran.stdout)


def test_no_arguments_shows_help() -> None:
    """Bare ``hook`` shows the help instead of doing anything."""
    ran = hook()
    assert "Usage: hook" in ran.stdout + ran.stderr
    assert "Traceback" not in ran.stderr


# --- usage errors ------------------------------------------------------------------------------


def test_unknown_option_subprocess() -> None:
    """An unknown option exits 2 with the usage line on stderr and nothing on stdout."""
    ran = hook("--no-such-option")
    assert (ran.code, ran.stdout) == (2, "")
    assert "Usage: hook" in ran.stderr
    assert "No such option: --no-such-option" in ran.stderr


def test_unknown_option_cli_runner() -> None:
    """CliRunner sees the same exit 2 and stderr usage for an unknown option."""
    result = CliRunner().invoke(app, ["--no-such-option"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert "No such option" in result.stderr


def test_unknown_command_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown command exits 2 through the boundary, usage on stderr."""
    ran = in_process(capsys, "frobnicate")
    assert (ran.code, ran.stdout) == (2, "")
    assert "No such command 'frobnicate'" in ran.stderr


# --- the error boundary ------------------------------------------------------------------------


def test_invalid_pattern_is_error_line_without_traceback() -> None:
    """An invalid pattern exits 2 with ``Error: ...`` on stderr, no traceback, empty stdout."""
    ran = hook("pattern", "test", BAD_PATTERN, MATCHING)
    assert (ran.code, ran.stdout) == (2, "")
    assert ran.stderr.startswith("Error: ")
    assert "pattern" in ran.stderr.splitlines()[0].lower()
    assert "Traceback" not in ran.stderr


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--debug"], {}), ([], {"HOOK_DEBUG": "1"})],
    ids=["--debug", "HOOK_DEBUG"],
)
def test_debug_shows_traceback(args: list[str], env: dict[str, str]) -> None:
    """With ``--debug`` (or HOOK_DEBUG) the error line is followed by the traceback."""
    ran = hook(*args, "pattern", "test", BAD_PATTERN, MATCHING, env=env)
    assert (ran.code, ran.stdout) == (2, "")
    assert ran.stderr.startswith("Error: ")
    assert "Traceback (most recent call last)" in ran.stderr
    assert "InvalidPatternError" in ran.stderr


@pytest.mark.parametrize(
    ("args", "first_line"),
    [
        (["pattern", "test", BAD_PATTERN, MATCHING], "Error: Event pattern is not valid"),
        (["pattern", "test", PATTERN, "{"], "Error: event is not valid JSON"),
        (["pattern", "test", PATTERN, "[]"], "Error: event must be a JSON object, not list"),
        (["pattern", "test", "@/nonexistent/p.json", MATCHING], "Error: pattern: no such file"),
        (["pattern", "test", PATTERN], "Error: give exactly one of EVENT or --events FILE"),
    ],
    ids=["bad-pattern", "bad-event-json", "event-not-object", "missing-file", "no-event"],
)
def test_usage_errors_in_process(
    capsys: pytest.CaptureFixture[str], args: list[str], first_line: str
) -> None:
    """Every expected error is one ``Error:`` line on stderr and exit 2, stdout untouched."""
    ran = in_process(capsys, *args)
    assert (ran.code, ran.stdout) == (2, "")
    assert ran.stderr.startswith(first_line)
    assert "Traceback" not in ran.stderr


def test_hint_follows_error(capsys: pytest.CaptureFixture[str]) -> None:
    """An error's hint is printed on its own ``Hint:`` line after the error."""
    ran = in_process(capsys, "relay", "serve", "--local", "--bus", "b")
    assert (ran.code, ran.stdout) == (2, "")
    assert ran.stderr.splitlines()[:2] == [
        "Error: --local and --bus exclude each other",
        "Hint: drop one of them",
    ]


# --- exit codes of pattern test ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "code", "stdout"),
    [(MATCHING, 0, "match\n"), (OTHER, 1, "no match\n")],
    ids=["match", "no-match"],
)
def test_pattern_test_exit_code(
    capsys: pytest.CaptureFixture[str], event: str, code: int, stdout: str
) -> None:
    """``pattern test`` exits 0 on a match and 1 (as grep) on none, without an error line."""
    assert in_process(capsys, "pattern", "test", PATTERN, event) == Ran(code, stdout, "")


def test_pattern_test_reads_event_from_stdin() -> None:
    """``-`` reads the event from standard input."""
    assert hook("pattern", "test", PATTERN, "-", stdin=MATCHING) == Ran(0, "match\n", "")


# --- Ctrl-C ------------------------------------------------------------------------------------


def blocked_reading_stdin(pid: int) -> bool:
    """Whether process ``pid`` sleeps in a read of a pipe (Linux /proc)."""
    try:
        wchan = Path(f"/proc/{pid}/wchan").read_text()
        syscall = Path(f"/proc/{pid}/syscall").read_text()
    except OSError:
        return False
    return "pipe" in wchan or syscall.startswith("0 0x0 ")


def interrupt_while_reading_stdin() -> Ran:
    """Start ``hook pattern test PATTERN -``, wait until it blocks on stdin, send SIGINT."""
    child = subprocess.Popen(
        [sys.executable, "-m", "hookcli", "pattern", "test", PATTERN, "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: blocked_reading_stdin(child.pid), what="hook to read stdin")
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=UNIT)
    finally:
        child.kill()
        child.wait(UNIT)
    return Ran(child.returncode, out, err)


needs_proc = pytest.mark.skipif(
    not Path("/proc/self/wchan").exists(), reason="needs Linux /proc to see the child block"
)


@needs_proc
def test_ctrl_c_exits_130() -> None:
    """Ctrl-C exits 130 without a traceback and with nothing on stdout."""
    ran = interrupt_while_reading_stdin()
    assert (ran.code, ran.stdout) == (130, "")
    assert "Traceback" not in ran.stderr


@needs_proc
def test_ctrl_c_says_interrupted() -> None:
    """Ctrl-C prints ``Interrupted.`` on stderr, as the boundary intends."""
    assert interrupt_while_reading_stdin().stderr == "Interrupted.\n"
