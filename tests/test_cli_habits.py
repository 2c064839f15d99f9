"""Habits the CLI honours: -v/-q mean the same on every command, --forward-to (Stripe CLI's
spelling of --target), and "did you mean @FILE" for a file name where JSON was expected.

Real subprocesses of ``python -m hookcli``; the delivery tests run against a real relay and a
real HTTP target on loopback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hookcli.cli import app
from hookcli.relay.service import RunningRelay

from conftest import UNIT, RecordingTarget, wait_until

PATTERN = '{"source": ["shop.orders"]}'
EVENT = '{"id": "1", "source": "shop.orders", "detail-type": "t", "detail": {}}'
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str


def hook(*args: str, cwd: Path, timeout: float = UNIT * 2) -> Ran:
    """Run ``python -m hookcli ARGS`` in ``cwd``, no HOOK_* variables from outside."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOOK_")}
    env.update(HOOK_CONFIG=str(cwd / "no-config.toml"), NO_COLOR="1")
    done = subprocess.run(
        [sys.executable, "-m", "hookcli", *args],
        input="",
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def ingest(relay: RunningRelay, body: dict[str, object]) -> str:
    """POST a webhook to the relay; its event id."""
    request = urllib.request.Request(
        f"{relay.url}/v1/ingest/shop",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with _HTTP.open(request, timeout=UNIT) as response:
        event_id: str = json.load(response)["id"]
        return event_id


# --- -v and -q ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["listen"],
        ["tail"],
        ["replay"],
        ["send"],
        ["events"],
        ["events", "show"],
        ["pattern", "test"],
        ["demo"],
        [],
    ],
    ids=lambda command: " ".join(command) or "hook",
)
def test_every_command_takes_verbose_and_quiet(command: list[str]) -> None:
    """-v/--verbose and -q/--quiet are options of every command (and of hook itself)."""
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "-v, --verbose" in result.output
    assert "-q, --quiet" in result.output


def test_v_is_verbose_not_debug(tmp_path: Path) -> None:
    """``hook -v`` no longer shows hook's own traceback on an error: that is --debug."""
    ran = hook("-v", "pattern", "test", '{"source": ', EVENT, cwd=tmp_path)
    assert (ran.code, ran.stdout) == (2, "")
    assert ran.stderr.startswith("Error: ")
    assert "Traceback" not in ran.stderr


def test_v_and_q_together_are_a_usage_error(tmp_path: Path) -> None:
    """-v with -q contradict each other: exit 2 before anything connects."""
    ran = hook(
        "-v", "listen", "-q", "--target", "3000", "--relay", "http://127.0.0.1:9", cwd=tmp_path
    )
    assert ran.code == 2
    assert "Error: -v/--verbose and -q/--quiet contradict each other" in ran.stderr


# --- --forward-to ------------------------------------------------------------------------------


def test_forward_to_is_target_for_listen(tmp_path: Path) -> None:
    """``listen --forward-to`` is --target: the same checks apply (here: loopback only)."""
    ran = hook("listen", "--forward-to", "example.com:3000", cwd=tmp_path)
    assert ran.code == 2
    assert "Error: refusing to forward events to example.com" in ran.stderr


@pytest.mark.slow
def test_replay_forward_to_delivers_to_the_target(
    relay: RunningRelay, http_target: RecordingTarget, tmp_path: Path
) -> None:
    """``replay ID --forward-to URL`` delivers the stored event to that URL."""
    event_id = ingest(relay, {"order": 5})
    ran = hook(
        "replay", event_id, "--relay", relay.url, "--forward-to", http_target.url + "/hooks",
        "--json", cwd=tmp_path,
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    [request] = http_target.requests
    assert (request.path, json.loads(request.body)) == ("/hooks", {"order": 5})


# --- did you mean @FILE -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (["pattern", "test", "p.json", EVENT], "pattern"),
        (["pattern", "test", PATTERN, "e.json"], "event"),
        (["listen", "--pattern", "p.json", "--target", "3000"], "--pattern"),
        (["tail", "--pattern", "p.json"], "--pattern"),
    ],
    ids=["pattern-arg", "event-arg", "listen-pattern", "tail-pattern"],
)
def test_a_file_name_where_json_is_expected_suggests_at_file(
    tmp_path: Path, args: list[str], what: str
) -> None:
    """A value that names an existing file gets "did you mean @FILE", not a JSON parser error."""
    (tmp_path / "p.json").write_text(PATTERN)
    (tmp_path / "e.json").write_text(EVENT)
    name = next(arg for arg in args if arg.endswith(".json"))
    ran = hook(*args, cwd=tmp_path)
    assert (ran.code, ran.stdout) == (2, "")
    assert ran.stderr == (
        f"Error: {what}: {name!r} is a file name, not JSON\nHint: did you mean @{name}?\n"
    )


# --- Ctrl-C and --from past the head -------------------------------------------------------------


@pytest.mark.slow
def test_ctrl_c_during_a_slow_exec_exits_130_quietly(relay: RunningRelay, tmp_path: Path) -> None:
    """Ctrl-C while --exec runs ends the listener (130) with nothing but "Interrupted."."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOOK_")}
    env.update(HOOK_CONFIG=str(tmp_path / "no-config.toml"))
    command = "cat >/dev/null; touch started; sleep 30"
    listener = subprocess.Popen(
        [sys.executable, "-m", "hookcli", "listen", "--relay", relay.url, "--name", "slow",
         "--exec", command, "--timeout", "60"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=env, cwd=tmp_path, text=True,
    )  # fmt: skip
    try:
        assert listener.stdout is not None
        while json.loads(listener.stdout.readline())["type"] != "ready":
            pass
        ingest(relay, {"order": 1})
        wait_until(lambda: (tmp_path / "started").exists(), what="the command to start")
        listener.send_signal(signal.SIGINT)
        _, err = listener.communicate(timeout=UNIT)
    finally:
        listener.kill()
        listener.wait(UNIT)
    assert listener.returncode == 130
    assert err == "Interrupted.\n"


def test_from_past_the_relay_head_says_so(relay: RunningRelay, tmp_path: Path) -> None:
    """``--from 9999`` beyond the relay's newest event exits 2 naming the head, with a hint."""
    ran = hook("listen", "--relay", relay.url, "--from", "9999", "--exec", "true", cwd=tmp_path)
    assert ran.code == 2
    assert "Error: the relay says: 'from' 9999 is past this relay's newest event (0)" in ran.stderr
    assert "Hint: use a seq from 0 to 1, 'now' for new events only, or 'last'" in ran.stderr
