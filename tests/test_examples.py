"""The examples the README uses work for real: the signed-webhook app behind `hook listen`, and
the sample events file. (examples/handler.py: tests/test_targets.py; patterns:
tests/test_pattern_examples.py.)"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from hookcli.cli.inputs import read_documents
from hookcli.relay.service import RunningRelay
from hookcli.send import entries_from_documents

from conftest import UNIT, wait_until

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lines:
    """A subprocess's stdout lines, collected by a thread."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        stream = process.stdout
        self.thread = threading.Thread(target=lambda: self.lines.extend(stream), daemon=True)
        self.thread.start()

    def json(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in list(self.lines) if line.startswith("{")]


@pytest.fixture
def app() -> Iterator[tuple[str, Lines]]:
    """examples/app.py on a free loopback port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "app.py"), str(port)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "WEBHOOK_SECRET": "dev-secret"},
    )
    lines = Lines(process)
    try:
        wait_until(lambda: any("example app" in line for line in lines.lines), what="app start")
        yield f"127.0.0.1:{port}", lines
    finally:
        process.kill()
        process.wait(UNIT)
        lines.thread.join(UNIT)
        assert process.stdout is not None
        process.stdout.close()


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=UNIT) as response:
        return int(response.status)


@pytest.mark.slow
def test_example_app_verifies_replayed_webhooks(
    relay: RunningRelay, app: tuple[str, Lines], tmp_path: Path
) -> None:
    """A signed webhook goes relay -> listen -> examples/app.py and its HMAC verifies."""
    target, app_lines = app
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOK_")}
    env["HOOK_CONFIG"] = str(tmp_path / "none.toml")
    listener = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hookcli",
            "listen",
            "--relay",
            relay.url,
            "--target",
            target,
            "--name",
            "examples",
            "--from",
            "now",
            "--retries",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    out = Lines(listener)
    try:
        wait_until(lambda: any(m["type"] == "ready" for m in out.json()), what="listener ready")
        body = '{"action": "opened",  "number": 7, "title": "Grüße"}'.encode()
        signature = "sha256=" + hmac.new(b"dev-secret", body, hashlib.sha256).hexdigest()
        status = post(
            f"{relay.url}/v1/ingest/github/webhooks?delivery=1",
            body,
            {"X-Signature": signature, "Content-Type": "application/json"},
        )
        assert status == 202

        def result() -> dict[str, object] | None:
            found = [m for m in out.json() if m["type"] == "result"]
            return found[0] if found else None

        wait_until(lambda: result() is not None, what="a result line")
        outcome = result()
        assert outcome is not None
        assert (outcome["status"], outcome["code"]) == ("delivered", 200), outcome
        wait_until(lambda: any("verified webhook /webhooks" in line for line in app_lines.lines))
    finally:
        listener.kill()
        listener.wait(UNIT)
        out.thread.join(UNIT)
        assert listener.stdout is not None
        listener.stdout.close()


def test_example_events_file_parses() -> None:
    """examples/events.jsonl mixes both line shapes and every line is a valid entry."""
    path = ROOT / "examples" / "events.jsonl"
    entries = entries_from_documents(read_documents(str(path), "--file"), path.name)
    assert len(entries) == 5
    assert {e["Source"] for e in entries} == {"shop.orders", "shop.payments", "shop.shipping"}
    assert all(isinstance(json.loads(e["Detail"]), dict) for e in entries)


@pytest.mark.slow
def test_listen_says_what_to_do_when_the_default_port_is_taken(tmp_path: Path) -> None:
    """No relay configured and 127.0.0.1:8750 held by something else: a clear exit 2."""
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # ignore TIME_WAIT leftovers
    try:
        blocker.bind(("127.0.0.1", 8750))
    except OSError:
        blocker.close()
        pytest.skip("127.0.0.1:8750 is in use on this machine")
    blocker.listen()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOK_")}
    env["HOOK_CONFIG"] = str(tmp_path / "none.toml")
    env["HOME"] = str(tmp_path)  # the embedded relay's store goes under the user data dir
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    try:
        ran = subprocess.run(
            [sys.executable, "-m", "hookcli", "listen", "--target", "127.0.0.1:9", "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=UNIT * 6,
        )
    finally:
        blocker.close()
    assert ran.returncode == 2, ran.stderr
    assert "could not start one" in ran.stderr
    assert "--relay http://127.0.0.1:8751" in ran.stderr
    assert json.loads(ran.stdout.splitlines()[-1])["type"] == "error"
