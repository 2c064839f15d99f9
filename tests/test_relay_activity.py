"""`hook relay serve` shows its activity: events received, listeners connecting, resuming, leaving.

Each test runs the real `python -m hookcli relay serve --ingest-only` subprocess, drives it
with a real HTTP client and real websocket listeners, and reads what it prints.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from conftest import UNIT, auth_headers, wait_until

pytestmark = pytest.mark.slow

_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Served:
    """A running `hook relay serve` and the lines it printed so far (stdout, stderr)."""

    process: subprocess.Popen[str]
    url: str = ""
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    #: One item per output stream read to its end.
    done: queue.Queue[None] = field(default_factory=queue.Queue)

    def wait_for(self, pattern: str, stream: str = "out", count: int = 1) -> list[str]:
        """The printed lines matching ``pattern`` (a regex), once there are ``count`` of them."""
        lines = self.out if stream == "out" else self.err
        found: list[str] = []

        def seen() -> bool:
            found[:] = [line for line in list(lines) if re.search(pattern, line)]
            return len(found) >= count

        wait_until(seen, UNIT * 2, f"{count} lines matching {pattern!r}; got {lines}")
        return found

    def stop(self) -> None:
        """SIGTERM, and wait until it has exited and its output is read to the end."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=UNIT * 2)
        self.close()

    def close(self) -> None:
        """Wait for both output readers to reach the end, then close the pipes (once)."""
        if self.process.stdout is None or self.process.stdout.closed:
            return
        for _ in range(2):
            self.done.get(timeout=UNIT)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def _pump(stream: Any, into: list[str], done: queue.Queue[None]) -> None:
    for line in stream:
        into.append(line.rstrip("\n"))
    done.put(None)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """Start `hook relay serve --ingest-only` with extra args; stopped after the test."""
    started: list[Served] = []

    def start(*args: str) -> Served:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("HOOK_")}
        environment["HOOK_CONFIG"] = str(tmp_path / "none.toml")
        process = subprocess.Popen(
            [sys.executable, "-m", "hookcli", "relay", "serve", "--ingest-only", "--port", "0",
             "--data-dir", str(tmp_path / f"relay{len(started)}"), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )  # fmt: skip
        served = Served(process)
        started.append(served)
        for stream, into in ((process.stdout, served.out), (process.stderr, served.err)):
            threading.Thread(target=_pump, args=(stream, into, served.done), daemon=True).start()
        banner_stream = "err" if "--json" in args else "out"
        [banner] = served.wait_for(r"listening on http://127\.0\.0\.1:\d+", banner_stream)
        served.url = re.findall(r"http://127\.0\.0\.1:\d+", banner)[0]
        return served

    yield start
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
        served.process.wait(timeout=UNIT)
        served.close()


def post_github(url: str, event: str = "push") -> str:
    """POST a small GitHub webhook to ingest; the stored event's id."""
    request = urllib.request.Request(
        f"{url}/v1/ingest/github",
        data=b'{"ref":"refs/heads/main"}',
        headers={"X-GitHub-Event": event, "Content-Type": "application/json"},
        method="POST",
    )
    with _HTTP.open(request, timeout=UNIT) as response:
        return str(json.loads(response.read())["id"])


def listen_once(url: str, name: str, start: Any) -> dict[str, Any]:
    """Subscribe as listener ``name`` from ``start``, then close normally; the `subscribed`."""
    ws_url = url.replace("http", "ws", 1) + "/v1/stream"
    with connect(ws_url, additional_headers=auth_headers(), open_timeout=UNIT) as ws:
        ws.send(json.dumps({"type": "hello", "protocol": 1}))
        json.loads(ws.recv(timeout=UNIT))
        ws.send(json.dumps({"type": "subscribe", "name": name, "from": start, "mode": "listen"}))
        subscribed: dict[str, Any] = json.loads(ws.recv(timeout=UNIT))
    assert subscribed["type"] == "subscribed", subscribed
    return subscribed


def test_a_received_webhook_is_a_line(serve: Any) -> None:
    """Each event received prints time, seq, detail-type, source, short id, size and origin."""
    served = serve()
    event_id = post_github(served.url)
    [line] = served.wait_for(r"^\d\d:\d\d:\d\d  received")
    assert re.fullmatch(
        rf"\d\d:\d\d:\d\d  received   #1  push  webhook\.github  {event_id[:8]}  25 B via ingest",
        line,
    ), line


def test_listeners_connecting_resuming_and_leaving_are_lines(serve: Any) -> None:
    """A listener's connect (from which seq, how many waiting), resume and leave are lines."""
    served = serve()
    listen_once(served.url, "dev", "now")
    post_github(served.url)
    post_github(served.url)
    listen_once(served.url, "dev", "last")
    lines = served.wait_for(r"^\d\d:\d\d:\d\d  (connected|resumed|left) ", count=4)
    assert [line[10:] for line in lines] == [
        "connected  dev (listen) from seq 0, 0 waiting",
        "left       dev (listen): closed by the client",
        "resumed    dev (listen) from seq 0, 2 waiting",
        "left       dev (listen): closed by the client",
    ]


def test_json_activity_lines(serve: Any) -> None:
    """--json: one JSON object per line on stdout (the banner on stderr)."""
    served = serve("--json")
    event_id = post_github(served.url, "pull_request")
    listen_once(served.url, "dev", "now")
    served.wait_for(r'"type":"left"')
    received, connected, left = (json.loads(line) for line in served.out[:3])
    assert received | {"time": None} == {
        "type": "received", "time": None, "seq": 1, "id": event_id, "source": "webhook.github",
        "detail-type": "pull_request", "size": 25, "via": "ingest",
    }  # fmt: skip
    assert connected | {"time": None} == {
        "type": "connected", "time": None, "listener": "dev", "mode": "listen", "from": 1,
        "head": 1, "waiting": 0,
    }  # fmt: skip
    assert (left["type"], left["listener"], left["reason"]) == (
        "left",
        "dev",
        "closed by the client",
    )


def test_quiet_prints_only_the_banner(serve: Any) -> None:
    """-q: events and listeners come and go, and nothing but the banner is printed."""
    served = serve("-q")
    banner = list(served.out)
    post_github(served.url)
    listen_once(served.url, "dev", "now")
    served.stop()
    assert served.process.returncode == 143
    assert served.out == banner
