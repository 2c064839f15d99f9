"""``hook listen`` as a user drives it: a real subprocess, no TTY, against a real relay on loopback.

Every stdout line is parsed as JSON (the piped output contract); events go in through
``POST /v1/ingest/<channel>`` and come out at a recording HTTP app, a script or a handler module.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from hookcli.relay.service import RunningRelay, start_relay

from conftest import (
    UNIT,
    LoopThread,
    RecordingTarget,
    auth_headers,
    relay_settings,
    start_target,
    wait_until,
)
from fixtures import SCRIPTS
from fixtures.recorder import Recorder, free_port, sign

pytestmark = pytest.mark.slow

Line = dict[str, Any]
TOKEN = "listen-test-token-4f1b9c0d2e"
#: No proxy, even if the outer environment names one: everything here is on loopback.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# ----------------------------------------------------------------------------- helpers


def hook_env(tmp_path: Path) -> dict[str, str]:
    """The outer environment minus every HOOK_* variable, and no user config file."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOOK_")}
    env["HOOK_CONFIG"] = str(tmp_path / "no-such-config.toml")
    return env


class Hook:
    """A ``hook`` subprocess; reader threads parse its stdout line by line and keep its stderr."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.args = args
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hookcli", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
        )
        self.lines: list[Line] = []
        self.not_json: list[str] = []
        self._stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            text = raw.decode("utf-8", "replace")
            try:
                line = json.loads(text)
            except ValueError:
                self.not_json.append(text)
                continue
            if isinstance(line, dict):
                self.lines.append(line)
            else:
                self.not_json.append(text)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self._stderr.append(raw.decode("utf-8", "replace"))

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def of(self, kind: str) -> list[Line]:
        """Every stdout line of ``type`` kind so far."""
        return [line for line in list(self.lines) if line.get("type") == kind]

    def results(self) -> list[Line]:
        return self.of("result")

    def wait(self, condition: Callable[[], bool], what: str, timeout: float = UNIT) -> None:
        """Wait for ``condition``; on timeout say what the listener printed."""
        try:
            wait_until(condition, timeout, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.describe()}") from None

    def wait_ready(self, count: int = 1, timeout: float = UNIT) -> Line:
        self.wait(lambda: len(self.of("ready")) >= count, f"ready line #{count}", timeout)
        return self.of("ready")[count - 1]

    def wait_results(self, count: int, timeout: float = UNIT) -> list[Line]:
        self.wait(lambda: len(self.results()) >= count, f"{count} result lines", timeout)
        return self.results()

    def wait_exit(self, timeout: float = UNIT) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"hook did not exit in {timeout} s\n{self.describe()}") from None
        for reader in self._readers:
            reader.join(UNIT)
        return code

    def kill(self) -> None:
        """SIGKILL, the way a crash or an OOM kill ends a process."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.wait_exit()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(UNIT)
        for reader in self._readers:
            reader.join(UNIT)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def describe(self) -> str:
        out = "\n".join(json.dumps(line) for line in self.lines[-30:])
        return f"hook {' '.join(self.args)}\n--- stdout\n{out}\n--- stderr\n{self.stderr[-3000:]}"


@pytest.fixture
def hook(tmp_path: Path) -> Iterator[Callable[..., Hook]]:
    """Start ``hook ARGS...`` subprocesses; all are killed at teardown."""
    started: list[Hook] = []

    def start(*args: str) -> Hook:
        process = Hook(list(args), hook_env(tmp_path), tmp_path)
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()
    for process in started:
        assert not process.not_json, f"non-JSON lines on stdout: {process.not_json}"


def listen(relay_url: str, name: str, *args: str) -> list[str]:
    """``hook listen`` arguments with the relay and the name explicit, and quick retries."""
    defaults = ["--retries", "1", "--timeout", "2"]
    given = set(args)
    extra = [
        item
        for flag, value in zip(defaults[::2], defaults[1::2], strict=True)
        if flag not in given
        for item in (flag, value)
    ]
    return ["listen", "--relay", relay_url, "--name", name, *extra, *args]


def ingest(
    url: str,
    channel: str,
    body: bytes | dict[str, Any] | None = None,
    *,
    suffix: str = "",
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """POST a webhook to the relay; its ``{"id", "seq"}``."""
    data = (
        json.dumps(body if body is not None else {}).encode()
        if not isinstance(body, bytes)
        else body
    )
    request = urllib.request.Request(
        f"{url}/v1/ingest/{channel}{suffix}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with _HTTP.open(request, timeout=UNIT) as response:
        assert response.status == 202
        answer: dict[str, Any] = json.load(response)
        return answer


def history(url: str, **query: str) -> list[dict[str, Any]]:
    """``GET /v1/events`` rows."""
    address = f"{url}/v1/events?{urllib.parse.urlencode(query)}"
    request = urllib.request.Request(address, headers=auth_headers())
    with _HTTP.open(request, timeout=UNIT) as response:
        rows: list[dict[str, Any]] = json.load(response)["events"]
        return rows


def recorded(url: str, listener: str, status: str = "delivered") -> set[str]:
    """Ids of events whose latest result for ``listener`` the relay has stored as ``status``."""
    rows = history(url, listener=listener, status=status, limit="1000")
    return {row["event"]["id"] for row in rows}


def hook_ids(target: RecordingTarget) -> list[str]:
    """X-Hook-Event-Id of every request the target got, in arrival order."""
    ids = []
    for request in list(target.requests):
        [event_id] = [v for k, v in request.headers if k.lower() == "x-hook-event-id"]
        ids.append(event_id)
    return ids


def started_relay(loop_thread: LoopThread, data_dir: Path, **overrides: Any) -> RunningRelay:
    return loop_thread.run(start_relay(relay_settings(data_dir, **overrides)))


class RelayProcess:
    """``hook relay serve --ingest-only`` as a subprocess on a fixed port and data dir."""

    def __init__(self, port: int, data_dir: Path, tmp_path: Path, run: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = (tmp_path / f"relay-{run}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hookcli", "relay", "serve", "--ingest-only"]
            + ["--port", str(port), "--data-dir", str(data_dir)],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=hook_env(tmp_path),
            cwd=tmp_path,
        )
        wait_until(self._healthy, UNIT * 2, f"the relay on port {port} to answer /v1/health")

    def _healthy(self) -> bool:
        assert self.proc.poll() is None, "the relay exited"
        try:
            with _HTTP.open(self.url + "/v1/health", timeout=1) as response:
                return bool(json.load(response)["ok"])
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(UNIT)
        self.log.close()


@pytest.fixture
def relay_processes() -> Iterator[list[RelayProcess]]:
    """Relay subprocesses the test starts; all killed at teardown."""
    started: list[RelayProcess] = []
    yield started
    for process in started:
        process.kill()


# ----------------------------------------------------------------------------- output contract


def test_ready_line_once_subscribed_then_json_lines_and_ctrl_c_exits_130(
    relay: RunningRelay, http_target: RecordingTarget, hook: Callable[..., Hook]
) -> None:
    """Piped --json: connecting, connected, one ready line, then event and result; SIGINT -> 130."""
    listener = hook(
        *listen(relay.url, "ready-dev", "--target", http_target.url + "/hooks", "--json")
    )
    ready = listener.wait_ready()
    assert ready == {
        "type": "ready",
        "relay": relay.url,
        "relay_name": "hook",
        "listener": "ready-dev",
        "pattern": {},
        "target": http_target.url + "/hooks",
        "start": 0,
        "head": 0,
        "resumed": False,
        "reconnect": False,
    }
    kinds = [line["type"] for line in listener.lines]
    assert kinds[: kinds.index("ready") + 1] == ["state", "state", "ready"]
    assert [line["state"] for line in listener.of("state")] == ["connecting", "connected"]

    sent = ingest(relay.url, "shop", {"order": 1})
    [result] = listener.wait_results(1)
    [event] = listener.of("event")
    assert event["seq"] == sent["seq"] and event["event"]["id"] == sent["id"]
    assert event["event"]["source"] == "webhook.shop"
    assert event["event"]["detail"] == {"order": 1}
    assert result["status"] == "delivered" and result["code"] == 200
    assert (result["id"], result["seq"], result["attempts"]) == (sent["id"], sent["seq"], 1)
    assert result["duplicate"] is False
    assert hook_ids(http_target) == [sent["id"]]

    listener.proc.send_signal(signal.SIGINT)
    assert listener.wait_exit() == 130
    assert len(listener.of("ready")) == 1
    assert listener.lines[-1] == {"type": "state", "state": "closed", "error": None}
    assert "Interrupted." in listener.stderr
    assert "\x1b[" not in listener.stderr  # no TTY: no colour, no live region


def exits_2_without_connecting(hook: Callable[..., Hook], *args: str) -> Hook:
    """Run ``hook listen ARGS`` at a "relay" socket that sees any connect; it must exit 2 first."""
    with socket.socket() as relay_socket:
        relay_socket.bind(("127.0.0.1", 0))
        relay_socket.listen()
        relay_socket.setblocking(False)
        port = relay_socket.getsockname()[1]
        listener = hook(*listen(f"http://127.0.0.1:{port}", "bad-options", *args))
        assert listener.wait_exit() == 2, listener.describe()
        with pytest.raises(BlockingIOError):
            relay_socket.accept()  # nobody connected
    assert listener.lines == [] and listener.not_json == []  # nothing on stdout
    assert "Error: " in listener.stderr and "Traceback" not in listener.stderr
    return listener


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--pattern", '{"source": "shop.orders"}'],
            'Error: Event pattern is not valid. Reason: "source" must be an object or an array',
        ),
        (
            ["--pattern", '{"detail": {"amount": [{"numeric": [">", "ten"]}]}}'],
            "Error: Event pattern is not valid. Reason: Value of > must be numeric",
        ),
        (
            ["--source", "shop", "--pattern", '{"source": [{"prefix": 5}]}'],
            "Error: Event pattern is not valid. Reason: prefix match pattern must be a string",
        ),
    ],
    ids=["not-an-array", "numeric-operand", "prefix-type"],
)
def test_invalid_pattern_exits_2_with_eventbridge_reason_before_network_io(
    args: list[str], message: str, hook: Callable[..., Hook]
) -> None:
    """A bad --pattern: exit 2, EventBridge's reason on stderr, nothing on stdout, no connect."""
    listener = exits_2_without_connecting(hook, "--exec", "true", *args)
    assert message in listener.stderr.splitlines()


@pytest.mark.parametrize(
    "target", ["192.0.2.10:3000", "http://example.com/hooks", "[2001:db8::1]:80"]
)
def test_non_loopback_target_exits_2_without_allow_remote_target(
    target: str, hook: Callable[..., Hook]
) -> None:
    """A remote --target is refused before any network I/O unless --allow-remote-target."""
    listener = exits_2_without_connecting(hook, "--target", target)
    assert "not a loopback address" in listener.stderr
    assert "--allow-remote-target" in listener.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--exec", "true", "--from", "yesterday"], "Error: --from value 'yesterday' is not now"),
        (["--exec", "true", "--from", "2026-05-01T12:00:00"], "needs a timezone"),
        (["--exec", "true", "--target", "3000"], "give exactly one of --target, --exec"),
        (["--handler", "no_such_app.py:handler"], "handler file no_such_app.py does not exist"),
        (["--exec", "true", "--pattern", "@no-such-pattern.json"], "no such file"),
    ],
    ids=["from-word", "from-naive-time", "two-targets", "no-handler-file", "no-pattern-file"],
)
def test_other_bad_options_exit_2_before_network_io(
    args: list[str], message: str, hook: Callable[..., Hook]
) -> None:
    """Bad --from, target or file options: exit 2 with the reason, before connecting."""
    listener = exits_2_without_connecting(hook, *args)
    assert message in listener.stderr


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("wrong-token-but-long-enough", "the relay refused the token"),
        (None, "the relay refused the local token"),
    ],
    ids=["wrong", "local-token"],
)
def test_refused_token_exits_4(
    token: str | None,
    message: str,
    tmp_path: Path,
    loop_thread: LoopThread,
    hook: Callable[..., Hook],
) -> None:
    """A relay with tokens: a wrong or missing token exits 4, says so, and never prints it."""
    running = started_relay(loop_thread, tmp_path / "relay", tokens={TOKEN: ""})
    try:
        args = ["--token", token] if token else []
        listener = hook(*listen(running.url, "auth", "--exec", "true", *args))
        code = listener.wait_exit()
    finally:
        loop_thread.run(running.stop())
    assert code == 4, listener.describe()
    assert f"Error: {message}" in listener.stderr
    assert "HOOK_TOKEN" in listener.stderr  # the hint says what to do
    assert listener.of("ready") == []
    assert listener.lines[-1]["type"] == "error" and listener.lines[-1]["exit_code"] == 4
    everything = json.dumps(listener.lines) + listener.stderr
    assert TOKEN not in everything
    if token:
        assert token not in everything


def test_token_from_hook_token_env_is_accepted(
    tmp_path: Path, loop_thread: LoopThread, hook: Callable[..., Hook]
) -> None:
    """The right token (from HOOK_TOKEN, as a supervisor would pass it) subscribes."""
    running = started_relay(loop_thread, tmp_path / "relay", tokens={TOKEN: ""})
    try:
        env = {**hook_env(tmp_path), "HOOK_TOKEN": TOKEN}
        listener = Hook(listen(running.url, "auth-ok", "--exec", "true"), env, tmp_path)
        try:
            ready = listener.wait_ready()
        finally:
            listener.close()
    finally:
        loop_thread.run(running.stop())
    assert ready["listener"] == "auth-ok"
    assert TOKEN not in json.dumps(listener.lines) + listener.stderr


def test_exit_on_disconnect_exits_3_when_the_relay_goes_away(
    tmp_path: Path, loop_thread: LoopThread, hook: Callable[..., Hook]
) -> None:
    """--exit-on-disconnect: the relay shutting down ends the listener with exit 3."""
    running = started_relay(loop_thread, tmp_path / "relay")
    try:
        listener = hook(*listen(running.url, "leaver", "--exec", "true", "--exit-on-disconnect"))
        listener.wait_ready()
    finally:
        loop_thread.run(running.stop())
    assert listener.wait_exit() == 3
    assert "Error: disconnected from the relay" in listener.stderr
    assert listener.of("state")[-1]["state"] == "closed"
    assert listener.lines[-1]["type"] == "error" and listener.lines[-1]["exit_code"] == 3
    assert all(line["state"] != "reconnecting" for line in listener.of("state"))


def test_exit_on_disconnect_exits_3_when_no_relay_answers(hook: Callable[..., Hook]) -> None:
    """--exit-on-disconnect with nothing listening at --relay: exit 3 and a hint."""
    listener = hook(
        *listen(
            f"http://127.0.0.1:{free_port()}", "lonely", "--exec", "true", "--exit-on-disconnect"
        )
    )
    assert listener.wait_exit() == 3
    assert "Error: cannot reach the relay" in listener.stderr
    assert "Hint:" in listener.stderr
    assert listener.of("ready") == []


# ----------------------------------------------------------------------------- selecting events


def test_source_detail_type_and_pattern_filters_combine(
    relay: RunningRelay, http_target: RecordingTarget, hook: Callable[..., Hook]
) -> None:
    """Repeated --source is any-of; --source, --detail-type and --pattern are ANDed."""
    listener = hook(
        *listen(
            relay.url,
            "filters",
            "--target",
            http_target.url,
            "--source",
            "webhook.shop",
            "--source",
            "webhook.billing",
            "--detail-type",
            "Order Placed",
            "--pattern",
            '{"detail": {"amount": [{"numeric": [">", 100]}]}}',
        )
    )
    ready = listener.wait_ready()
    assert ready["pattern"] == {
        "source": ["webhook.shop", "webhook.billing"],
        "detail-type": ["Order Placed"],
        "detail": {"amount": [{"numeric": [">", 100]}]},
    }
    cases = [
        ("shop", "Order Placed", 500, True),
        ("shop", "Order Shipped", 500, False),  # wrong detail-type
        ("crm", "Order Placed", 500, False),  # wrong source
        ("shop", "Order Placed", 50, False),  # pattern does not match
        ("billing", "Order Placed", 101, True),
        ("crm", "Order Shipped", 5, False),
        ("shop", "Order Placed", 1000, True),  # selected last: proves the others were passed
    ]
    sent = [
        ingest(relay.url, channel, {"amount": amount}, headers={"X-Hook-Detail-Type": kind})
        for channel, kind, amount, _ in cases
    ]
    wanted = [s["id"] for s, case in zip(sent, cases, strict=True) if case[3]]
    results = listener.wait_results(len(wanted))
    assert [r["id"] for r in results] == wanted
    assert all(r["status"] == "delivered" for r in results)
    assert [e["event"]["id"] for e in listener.of("event")] == wanted
    assert hook_ids(http_target) == wanted


def test_from_seq_now_and_last(
    relay: RunningRelay, http_target: RecordingTarget, hook: Callable[..., Hook]
) -> None:
    """--from SEQ replays from that seq; now skips the backlog; last resumes after the cursor."""
    backlog = [ingest(relay.url, "shop", {"n": n}) for n in range(3)]

    from_seq = hook(
        *listen(
            relay.url, "from-seq", "--target", http_target.url, "--from", str(backlog[1]["seq"])
        )
    )
    ready = from_seq.wait_ready()
    assert (ready["start"], ready["head"]) == (backlog[1]["seq"] - 1, backlog[-1]["seq"])
    assert [r["id"] for r in from_seq.wait_results(2)] == [s["id"] for s in backlog[1:]]

    from_now = hook(*listen(relay.url, "from-now", "--target", http_target.url, "--from", "now"))
    ready = from_now.wait_ready()
    assert ready["start"] == ready["head"] == backlog[-1]["seq"]
    fourth = ingest(relay.url, "shop", {"n": 3})
    assert [r["id"] for r in from_now.wait_results(1)] == [fourth["id"]]
    wait_until(lambda: fourth["id"] in recorded(relay.url, "from-now"), what="from-now's result")
    from_now.proc.send_signal(signal.SIGINT)
    assert from_now.wait_exit() == 130

    fifth = ingest(relay.url, "shop", {"n": 4})  # while from-now is away
    again = hook(*listen(relay.url, "from-now", "--target", http_target.url, "--from", "last"))
    ready = again.wait_ready()
    assert ready["resumed"] is True and ready["start"] == fourth["seq"]
    sentinel = ingest(relay.url, "shop", {"n": 5})
    assert [r["id"] for r in again.wait_results(2)] == [fifth["id"], sentinel["id"]]
    assert [r["id"] for r in from_seq.wait_results(5)][2:] == [
        fourth["id"],
        fifth["id"],
        sentinel["id"],
    ]


# ----------------------------------------------------------------------------- HTTP target

SECRET = b"whsec_listen_7f3a2b"
#: Odd whitespace, keys out of order, numbers that re-serialize differently, non-ASCII, CRLF.
WEBHOOK_BODY = (
    '{ "zeta": [1, 2 ],\n\t"alpha" : "h\u00e9llo \u2713 \U0001f680",'
    '  "amount": 1.50, "e": 1E3 }\r\n'
).encode()


def test_webhook_replayed_byte_exact_so_its_hmac_verifies(
    relay: RunningRelay, loop_thread: LoopThread, hook: Callable[..., Hook]
) -> None:
    """The app gets the webhook's exact bytes, method, path suffix, query and headers."""
    app = Recorder(secret=SECRET)  # answers 401 unless X-Signature is the body's HMAC
    loop_thread.run(app.start())
    try:
        listener = hook(*listen(relay.url, "bytes", "--target", f"{app.url}/hooks"))
        listener.wait_ready()
        sent = ingest(
            relay.url,
            "github",
            WEBHOOK_BODY,
            suffix="/push/main?delivery=72d3&attempt=first",
            method="PUT",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "X-Signature": sign(SECRET, WEBHOOK_BODY),
                "X-GitHub-Event": "push",
            },
        )
        [result] = listener.wait_results(1)
    finally:
        loop_thread.run(app.stop())
    assert (result["status"], result["code"], result["attempts"]) == ("delivered", 200, 1)
    [got] = app.requests
    assert got.body == WEBHOOK_BODY
    [signature] = got.header("X-Signature")
    assert hmac.compare_digest(signature, sign(SECRET, got.body))
    assert (got.method, got.path, got.query) == (
        "PUT",
        "/hooks/push/main",
        "delivery=72d3&attempt=first",
    )
    assert got.header("Content-Type") == ["application/json; charset=utf-8"]
    assert got.header("X-GitHub-Event") == ["push"]
    assert got.header("X-Hook-Event-Id") == [sent["id"]]


def test_webhook_percent_encoded_path_and_query_are_replayed_raw(
    relay: RunningRelay, loop_thread: LoopThread, hook: Callable[..., Hook]
) -> None:
    """%-escapes in the path suffix and query reach the app exactly as the sender wrote them."""
    app = Recorder()
    loop_thread.run(app.start())
    try:
        listener = hook(
            *listen(relay.url, "escapes", "--target", f"{app.url}/hooks", "--retries", "0")
        )
        listener.wait_ready()
        sent = ingest(
            relay.url, "github", b"{}", suffix="/repos/a%20b/c%2Fd?next=%2Fa%20b&sig=x%2By"
        )
        [result] = listener.wait_results(1)
    finally:
        loop_thread.run(app.stop())
    shown = urllib.request.Request(f"{relay.url}/v1/events/{sent['id']}", headers=auth_headers())
    with _HTTP.open(shown, timeout=UNIT) as response:
        request = json.load(response)["request"]
    # docs/protocol.md: `query` is the raw query string; the path is what followed the channel.
    assert (request["path"], request["query"]) == ("/repos/a%20b/c%2Fd", "next=%2Fa%20b&sig=x%2By")
    assert result["status"] == "delivered", result
    [got] = app.requests
    assert (got.path, got.query) == ("/hooks/repos/a%20b/c%2Fd", "next=%2Fa%20b&sig=x%2By")


def test_target_down_then_up_retries_then_delivers(
    relay: RunningRelay, loop_thread: LoopThread, hook: Callable[..., Hook]
) -> None:
    """Nothing listening: a warning, retries on 'connection refused'; the app starts: delivered."""
    port = free_port()
    target = RecordingTarget()
    listener = hook(
        *listen(relay.url, "patient", "--target", f"127.0.0.1:{port}/hooks", "--retries", "8")
    )
    listener.wait_ready()
    [warning] = listener.of("notice")
    assert (
        warning["level"] == "warning"
        and f"nothing is listening on 127.0.0.1:{port}" in warning["message"]
    )

    sent = ingest(relay.url, "shop", {"order": 7})
    listener.wait(lambda: bool(listener.of("retry")), "a retry line")
    first = listener.of("retry")[0]
    assert (first["id"], first["attempt"], first["code"]) == (sent["id"], 1, None)
    assert "connection refused" in first["error"]
    runner = loop_thread.run(start_target(target, port))
    try:
        [result] = listener.wait_results(1, timeout=UNIT * 2)
    finally:
        loop_thread.run(runner.cleanup())
    assert (result["id"], result["status"], result["code"]) == (sent["id"], "delivered", 200)
    assert result["attempts"] >= 2
    assert [r["attempt"] for r in listener.of("retry")] == list(range(1, result["attempts"]))
    assert hook_ids(target) == [sent["id"]]
    [header] = [v for k, v in target.requests[0].headers if k.lower() == "x-hook-attempt"]
    assert header == str(result["attempts"])


def test_retries_exhausted_report_failed_and_the_relay_records_it(
    relay: RunningRelay, http_target: RecordingTarget, hook: Callable[..., Hook]
) -> None:
    """Always 503: N retries, a failed result, failed in the relay's history; listening goes on."""
    http_target.default_status = 503
    listener = hook(*listen(relay.url, "unlucky", "--target", http_target.url, "--retries", "2"))
    listener.wait_ready()
    sent = ingest(relay.url, "shop", {"order": 9})
    [result] = listener.wait_results(1)
    assert (result["status"], result["code"], result["attempts"]) == ("failed", 503, 3)
    assert result["error"] == "nope: rejected"
    assert [(r["attempt"], r["code"]) for r in listener.of("retry")] == [(1, 503), (2, 503)]
    assert hook_ids(http_target) == [sent["id"]] * 3

    wait_until(
        lambda: sent["id"] in recorded(relay.url, "unlucky", "failed"), what="the failed record"
    )
    [row] = history(relay.url, listener="unlucky", status="failed")
    [delivery] = row["deliveries"]
    assert delivery["listener"] == "unlucky"
    assert (delivery["status"], delivery["attempt"], delivery["code"]) == ("failed", 3, 503)
    assert delivery["error"] == "nope: rejected" and delivery["replay"] is False

    http_target.default_status = 200  # the app is fixed: the next event goes through
    later = ingest(relay.url, "shop", {"order": 10})
    results = listener.wait_results(2)
    assert (results[1]["id"], results[1]["status"]) == (later["id"], "delivered")


def test_order_kept_at_concurrency_1_even_across_a_retry(
    relay: RunningRelay, http_target: RecordingTarget, hook: Callable[..., Hook]
) -> None:
    """Serial delivery: a retried event holds back those behind it; backlog then live, in order."""
    http_target.statuses = [503]  # the first attempt of the first event fails
    backlog = [ingest(relay.url, "shop", {"n": n}) for n in range(30)]  # past the window (32)
    listener = hook(
        *listen(relay.url, "ordered", "--target", http_target.url, "--from", str(backlog[0]["seq"]))
    )
    listener.wait_ready()
    live = [ingest(relay.url, "shop", {"n": n}) for n in range(30, 50)]
    expected = [s["id"] for s in backlog + live]
    results = listener.wait_results(50)
    assert [r["id"] for r in results] == expected
    assert [r["seq"] for r in results] == sorted(r["seq"] for r in results)
    assert all(r["status"] == "delivered" for r in results)
    assert results[0]["attempts"] == 2
    arrivals = hook_ids(http_target)
    assert arrivals == [expected[0], *expected]


class SlowTarget:
    """An HTTP app that takes a little while per request and counts requests in progress."""

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        self.ids: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await request.read()
            await asyncio.sleep(self.delay)  # work the app does, so deliveries overlap
            self.ids.append(request.headers["X-Hook-Event-Id"])
            return web.Response(text="ok")
        finally:
            self.in_flight -= 1

    async def start(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        return runner


def test_concurrency_8_delivers_every_event_exactly_once(
    relay: RunningRelay, loop_thread: LoopThread, hook: Callable[..., Hook]
) -> None:
    """--concurrency 8: deliveries overlap (at most 8), and each event arrives exactly once."""
    app = SlowTarget()
    runner = loop_thread.run(app.start())
    try:
        backlog = [ingest(relay.url, "shop", {"n": n}) for n in range(40)]
        listener = hook(
            *listen(
                relay.url,
                "parallel",
                "--target",
                app.url,
                "-c",
                "8",
                "--from",
                str(backlog[0]["seq"]),
            )
        )
        listener.wait_ready()
        live = [ingest(relay.url, "shop", {"n": n}) for n in range(40, 60)]
        results = listener.wait_results(60, timeout=UNIT * 2)
        sent = {s["id"] for s in backlog + live}
        wait_until(lambda: recorded(relay.url, "parallel") == sent, what="every result recorded")
    finally:
        loop_thread.run(runner.cleanup())
    assert Counter(r["id"] for r in results) == Counter(sent)
    assert all(r["status"] == "delivered" and not r["duplicate"] for r in results)
    assert Counter(app.ids) == Counter(sent)
    assert 2 <= app.most_in_flight <= 8


def test_every_result_printed_is_recorded_when_stopped_while_catching_up(
    relay: RunningRelay, http_target: RecordingTarget, hook: Callable[..., Hook]
) -> None:
    """Results batched while catching up on a backlog are sent before a stopping listener
    exits: every event it printed as delivered is answered, so none comes again."""
    backlog = [ingest(relay.url, "shop", {"n": n}) for n in range(300)]
    listener = hook(
        *listen(relay.url, "batched", "--target", http_target.url, "--json"),
        "--from",
        str(backlog[0]["seq"]),
    )
    listener.wait_ready()
    wait_until(lambda: len(http_target.requests) >= 100, UNIT * 2, "a third of the backlog")
    listener.proc.send_signal(signal.SIGINT)
    assert listener.wait_exit() == 130
    printed = {r["id"] for r in listener.results() if r["status"] == "delivered"}
    assert 100 <= len(printed) < 300  # stopped mid-backlog, with results in flight
    wait_until(lambda: recorded(relay.url, "batched") == printed, what="every result recorded")


# ----------------------------------------------------------------------------- exec and handler


def test_exec_runs_a_real_script_with_the_event_on_stdin(
    relay: RunningRelay, tmp_path: Path, hook: Callable[..., Hook]
) -> None:
    """--exec: the event JSON on stdin, HOOK_* in the environment, exit 0 is delivered."""
    out = tmp_path / "exec-out"
    out.mkdir()
    command = f"{shlex.quote(str(SCRIPTS / 'record.sh'))} {shlex.quote(str(out))}"
    listener = hook(*listen(relay.url, "script", "--exec", command))
    listener.wait_ready()
    sent = ingest(relay.url, "shop", {"order": 3}, headers={"X-Hook-Detail-Type": "Order Placed"})
    [result] = listener.wait_results(1)
    assert (result["status"], result["code"], result["error"]) == ("delivered", 0, None)
    [event] = listener.of("event")
    assert json.loads((out / "stdin.json").read_text()) == event["event"]
    env = (out / "env.txt").read_text().splitlines()
    for line in (
        f"HOOK_EVENT_ID={sent['id']}",
        "HOOK_SOURCE=webhook.shop",
        "HOOK_DETAIL_TYPE=Order Placed",
        "HOOK_ATTEMPT=1",
    ):
        assert line in env


def test_exec_failing_script_is_retried_then_failed_with_its_stderr(
    relay: RunningRelay, hook: Callable[..., Hook]
) -> None:
    """A script that exits 3: a retry, then failed with its exit code and last stderr line."""
    listener = hook(
        *listen(relay.url, "failing", "--exec", str(SCRIPTS / "fail.sh"), "--retries", "1")
    )
    listener.wait_ready()
    sent = ingest(relay.url, "shop", {"order": 42})
    [result] = listener.wait_results(1)
    assert (result["id"], result["status"], result["code"], result["attempts"]) == (
        sent["id"],
        "failed",
        3,
        2,
    )
    assert result["error"] == "Error: order 42 has no amount"
    [retry] = listener.of("retry")
    assert (retry["attempt"], retry["code"], retry["error"]) == (
        1,
        3,
        "Error: order 42 has no amount",
    )
    # The listener goes on after a failure.
    second = ingest(relay.url, "shop", {"order": 43})
    assert listener.wait_results(2)[1]["id"] == second["id"]


def test_exec_hanging_command_times_out_and_is_killed(
    relay: RunningRelay, hook: Callable[..., Hook]
) -> None:
    """--exec "sleep 30" --timeout 0.5 --retries 0: failed with a timeout, well before 30 s."""
    listener = hook(
        *listen(relay.url, "hanging", "--exec", "sleep 30", "--timeout", "0.5", "--retries", "0")
    )
    listener.wait_ready()
    sent = ingest(relay.url, "shop", {"order": 5})
    [result] = listener.wait_results(1)
    assert (result["id"], result["status"], result["attempts"], result["code"]) == (
        sent["id"],
        "failed",
        1,
        None,
    )
    assert result["error"].startswith("timed out after 0.5 s")
    assert listener.of("retry") == []


def test_exec_hanging_script_leaves_no_process_behind(
    relay: RunningRelay, tmp_path: Path, hook: Callable[..., Hook]
) -> None:
    """A timed-out script's whole process group goes, its background child included."""
    out = tmp_path / "hang-out"
    out.mkdir()
    command = f"{shlex.quote(str(SCRIPTS / 'hang.sh'))} {shlex.quote(str(out))}"
    listener = hook(
        *listen(relay.url, "hang-group", "--exec", command, "--timeout", "0.5", "--retries", "0")
    )
    listener.wait_ready()
    ingest(relay.url, "shop", {"order": 6})
    [result] = listener.wait_results(1)
    assert result["status"] == "failed" and "timed out" in result["error"]
    grandchild = int((out / "grandchild.pid").read_text())
    wait_until(lambda: _gone(grandchild), what="the script's background child to be killed")


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def save(path: Path, text: str) -> None:
    """Save like an editor that writes a temp file and renames it: one change, never half a file."""
    temp = path.with_name(path.name + ".swp")
    temp.write_text(text)
    os.replace(temp, path)


HANDLER_V1 = """\
def handler(event, context):
    return {"version": 1, "order": event["detail"]["order"]}
"""
HANDLER_V2 = """\
def handler(event, context):
    raise RuntimeError(f"v2 rejects order {event['detail']['order']}")
"""


def test_handler_hot_reload_when_the_file_is_rewritten_mid_stream(
    relay: RunningRelay, tmp_path: Path, hook: Callable[..., Hook]
) -> None:
    """--handler: v1 delivers; rewrite the file; a reload notice; the next event runs v2."""
    folder = tmp_path / "app"
    folder.mkdir()
    module = folder / "orders_handler.py"
    module.write_text(HANDLER_V1)
    listener = hook(*listen(relay.url, "handler", "--handler", f"{module}:handler"))
    ready = listener.wait_ready()
    assert ready["target"].startswith("handler ") and ready["target"].endswith(
        "orders_handler.py:handler"
    )
    ingest(relay.url, "shop", {"order": 1})
    [first] = listener.wait_results(1)
    assert (first["status"], first["error"]) == ("delivered", None)

    save(module, HANDLER_V2)
    listener.wait(
        lambda: any("reloaded handler" in n["message"] for n in listener.of("notice")),
        "a reload notice",
    )
    notice = next(n for n in listener.of("notice") if "reloaded handler" in n["message"])
    assert notice["message"] == "reloaded handler after change to orders_handler.py"
    second = ingest(relay.url, "shop", {"order": 2})
    results = listener.wait_results(2)
    assert (results[1]["id"], results[1]["status"], results[1]["attempts"]) == (
        second["id"],
        "failed",
        1,
    )
    assert results[1]["error"] == "RuntimeError: v2 rejects order 2"


# ----------------------------------------------------------------------------- crashes


def test_listener_sigkilled_and_restarted_delivers_everything_exactly_once(
    relay: RunningRelay, http_target: RecordingTarget, hook: Callable[..., Hook]
) -> None:
    """SIGKILL while idle, events arrive while it is down; restarted, it gets each once."""
    first = hook(*listen(relay.url, "crashy", "--target", http_target.url))
    first.wait_ready()
    before = [ingest(relay.url, "shop", {"n": n}) for n in range(5)]
    first.wait_results(5)
    ids_before = {s["id"] for s in before}
    # Kill only once the relay has stored the results (it flushes every 50 ms): killed while
    # idle, so no delivery is in doubt.
    wait_until(lambda: recorded(relay.url, "crashy") == ids_before, what="results flushed")
    first.kill()
    assert first.proc.returncode == -signal.SIGKILL

    during = [ingest(relay.url, "shop", {"n": n}) for n in range(5, 10)]
    second = hook(*listen(relay.url, "crashy", "--target", http_target.url))
    ready = second.wait_ready()
    assert ready["resumed"] is True and ready["start"] == before[-1]["seq"]
    sentinel = ingest(relay.url, "shop", {"n": 10})
    results = second.wait_results(6)
    assert [r["id"] for r in results] == [s["id"] for s in during + [sentinel]]
    assert not any(r["duplicate"] for r in results)
    everything = [s["id"] for s in before + during + [sentinel]]
    assert hook_ids(http_target) == everything  # none missing, none twice, in order
    wait_until(lambda: recorded(relay.url, "crashy") == set(everything), what="every result stored")
    rows = history(relay.url, listener="crashy", limit="100")
    assert all(len(row["deliveries"]) == 1 for row in rows)


def test_relay_killed_and_restarted_listener_reconnects_and_resumes(
    tmp_path: Path,
    http_target: RecordingTarget,
    hook: Callable[..., Hook],
    relay_processes: list[RelayProcess],
) -> None:
    """SIGKILL the relay; the listener says reconnecting; the relay comes back on the same port and
    store; the listener resubscribes by itself and gets the new events, not the old ones again."""
    port = free_port()
    data_dir = tmp_path / "relay-data"
    relay_processes.append(RelayProcess(port, data_dir, tmp_path, 1))
    url = relay_processes[0].url
    listener = hook(*listen(url, "survivor", "--target", http_target.url))
    listener.wait_ready()
    before = [ingest(url, "shop", {"n": n}) for n in range(3)]
    listener.wait_results(3)
    wait_until(
        lambda: recorded(url, "survivor") == {s["id"] for s in before}, what="results flushed"
    )

    relay_processes[0].kill()
    listener.wait(
        lambda: any(s["state"] == "reconnecting" for s in listener.of("state")),
        "a reconnecting state line",
    )
    with pytest.raises(urllib.error.URLError):
        ingest(url, "shop", {"n": "lost"})

    relay_processes.append(RelayProcess(port, data_dir, tmp_path, 2))
    after = [ingest(url, "shop", {"n": n}) for n in range(3, 6)]
    assert [s["seq"] for s in after] == [before[-1]["seq"] + n for n in (1, 2, 3)]  # same store
    ready = listener.wait_ready(2, timeout=UNIT * 3)
    assert ready["reconnect"] is True and ready["resumed"] is True
    assert ready["start"] == before[-1]["seq"]
    results = listener.wait_results(6)
    assert [r["id"] for r in results] == [s["id"] for s in before + after]
    assert not any(r["duplicate"] for r in results)
    assert hook_ids(http_target) == [s["id"] for s in before + after]
    states = [s["state"] for s in listener.of("state")]
    assert states[-1] == "connected" and "reconnecting" in states
    assert listener.proc.poll() is None


def test_listener_sigkilled_mid_stream_at_concurrency_8_loses_nothing(
    relay: RunningRelay, loop_thread: LoopThread, hook: Callable[..., Hook]
) -> None:
    """Killed with deliveries in flight: after a restart every event arrives, and none whose
    result the relay had stored arrives again (only in-flight ones may repeat: at-least-once)."""
    app = SlowTarget(delay=0.2)
    runner = loop_thread.run(app.start())
    try:
        sent = [ingest(relay.url, "shop", {"n": n}) for n in range(48)]
        everything = {s["id"] for s in sent}
        start = ["--target", app.url, "-c", "8"]
        first = hook(*listen(relay.url, "crashy-8", *start, "--from", str(sent[0]["seq"])))
        first.wait(lambda: len(recorded(relay.url, "crashy-8")) >= 12, "12 results stored")
        stored = recorded(relay.url, "crashy-8")  # a subset of what is stored at the kill
        first.kill()
        assert len(stored) < len(everything), "all delivered before the kill: nothing tested"

        second = hook(*listen(relay.url, "crashy-8", *start))
        assert second.wait_ready()["resumed"] is True
        wait_until(
            lambda: recorded(relay.url, "crashy-8") == everything,
            UNIT * 2,
            "every result stored",
        )
    finally:
        loop_thread.run(runner.cleanup())
    arrivals = Counter(app.ids)
    assert set(arrivals) == everything  # nothing lost
    assert all(arrivals[event_id] == 1 for event_id in stored)  # answered: never again
    assert not {r["id"] for r in second.results()} & stored


def test_a_second_listener_with_the_same_name_takes_over(
    relay: RunningRelay, http_target: RecordingTarget, hook: Callable[..., Hook]
) -> None:
    """Same --name twice: the newer one gets the stream; the older exits 3 saying why."""
    older = hook(*listen(relay.url, "shared-name", "--target", http_target.url))
    older.wait_ready()
    newer = hook(*listen(relay.url, "shared-name", "--target", http_target.url))
    newer.wait_ready()
    assert older.wait_exit() == 3
    assert "same --name" in older.stderr
    sent = ingest(relay.url, "shop", {"order": 1})
    [result] = newer.wait_results(1)
    assert (result["id"], result["status"]) == (sent["id"], "delivered")
    assert older.results() == []


def test_listener_started_before_the_relay_waits_then_subscribes(
    tmp_path: Path, loop_thread: LoopThread, http_target: RecordingTarget, hook: Callable[..., Hook]
) -> None:
    """Relay not up yet: reconnecting lines, no exit; once it is up, ready and deliveries."""
    port = free_port()
    listener = hook(*listen(f"http://127.0.0.1:{port}", "early", "--target", http_target.url))
    listener.wait(
        lambda: any(s["state"] == "reconnecting" for s in listener.of("state")),
        "a reconnecting state line",
    )
    assert "connection refused" in listener.of("state")[-1]["error"]
    running = started_relay(loop_thread, tmp_path / "relay", port=port)
    try:
        ready = listener.wait_ready(timeout=UNIT * 2)
        sent = ingest(running.url, "shop", {"order": 1})
        [result] = listener.wait_results(1)
    finally:
        loop_thread.run(running.stop())
    assert ready["reconnect"] is False
    assert (result["id"], result["status"]) == (sent["id"], "delivered")


def test_a_webhook_at_the_1_mib_cap_is_delivered_byte_exact(
    relay: RunningRelay, loop_thread: LoopThread, hook: Callable[..., Hook]
) -> None:
    """The largest body the relay takes (1 MiB, as EventBridge) reaches the app unchanged."""
    body = json.dumps({"blob": "\u00e9" * (512 * 1024 - 8)}, ensure_ascii=False).encode()
    assert len(body) <= 1024 * 1024 < len(body) + 32
    app = Recorder(secret=SECRET)
    loop_thread.run(app.start())
    try:
        listener = hook(*listen(relay.url, "big", "--target", app.url))
        listener.wait_ready()
        ingest(relay.url, "big", body, headers={"X-Signature": sign(SECRET, body)})
        [result] = listener.wait_results(1)
    finally:
        loop_thread.run(app.stop())
    assert (result["status"], result["code"]) == ("delivered", 200)
    assert app.requests[0].body == body


def test_sigterm_mid_delivery_exits_143_and_kills_the_command(
    relay: RunningRelay, tmp_path: Path, hook: Callable[..., Hook]
) -> None:
    """A supervisor's SIGTERM while a command runs: closed line, exit 143, no process left."""
    out = tmp_path / "term-out"
    out.mkdir()
    command = f"{shlex.quote(str(SCRIPTS / 'hang.sh'))} {shlex.quote(str(out))}"
    listener = hook(*listen(relay.url, "terminated", "--exec", command, "--timeout", "30"))
    listener.wait_ready()
    ingest(relay.url, "shop", {"order": 8})
    wait_until((out / "grandchild.pid").exists, what="the command to start")
    grandchild = int((out / "grandchild.pid").read_text())
    listener.proc.send_signal(signal.SIGTERM)
    assert listener.wait_exit() == 143
    assert listener.lines[-1] == {"type": "state", "state": "closed", "error": None}
    assert listener.results() == []
    wait_until(lambda: _gone(grandchild), what="the command's background child to be killed")


BROKEN_HANDLER = """\
import hook_test_no_such_module


def handler(event, context):
    return "unreachable"
"""


def test_handler_that_stops_importing_fails_events_until_fixed(
    relay: RunningRelay, tmp_path: Path, hook: Callable[..., Hook]
) -> None:
    """Saved with a bad import: a notice, events fail (not retried); fixed: delivered again."""
    folder = tmp_path / "app"
    folder.mkdir()
    module = folder / "flaky_handler.py"
    module.write_text(HANDLER_V1)
    listener = hook(*listen(relay.url, "handler-fix", "--handler", str(module), "--retries", "2"))
    listener.wait_ready()
    ingest(relay.url, "shop", {"order": 0})
    assert listener.wait_results(1)[0]["status"] == "delivered"

    save(module, BROKEN_HANDLER)
    listener.wait(
        lambda: any("failed to load" in n["message"] for n in listener.of("notice")),
        "a failed-to-load notice",
    )
    broken = ingest(relay.url, "shop", {"order": 1})
    failed = listener.wait_results(2)[1]
    assert (failed["id"], failed["status"], failed["attempts"]) == (broken["id"], "failed", 1)
    assert "hook_test_no_such_module" in failed["error"]

    save(module, HANDLER_V1)
    listener.wait(
        lambda: any("reloaded handler" in n["message"] for n in listener.of("notice")),
        "a reload notice",
    )
    fixed = ingest(relay.url, "shop", {"order": 2})
    results = listener.wait_results(3)
    assert (results[2]["id"], results[2]["status"]) == (fixed["id"], "delivered")
