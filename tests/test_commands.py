"""Each command as a user drives it: ``hook tail``, ``replay``, ``events`` and ``send`` in real
subprocesses against a real relay on loopback.

Most tests use an ingest-only relay (webhooks in, no moto); ``hook send`` needs a relay in local
mode (moto's emulated EventBridge + SQS), started once for the module. Events are answered by a
raw websocket client speaking docs/protocol.md, or by a real ``hook listen``. Terminal output is
checked under a pseudo-terminal. Nothing of hook's own is mocked; only env vars are set.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hookcli.events import parse_event
from hookcli.relay.service import RelaySettings, RunningRelay, start_relay

from conftest import (
    UNIT,
    LoopThread,
    RecordingTarget,
    auth_headers,
    start_target,
    wait_until,
)
from fixtures.cli import answer_as, clean_env, hook
from fixtures.terminal import PtyProcess

pytestmark = pytest.mark.slow

#: No proxy from the environment for loopback calls.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# --- running `hook` -------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment for `hook`: no HOOK_* from the caller, no config file, no colour."""
    return clean_env(tmp_path)


class Background:
    """A `hook` subprocess with piped output, collected line by line as it comes."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hookcli", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=_collect, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=_collect, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def wait_for_line(
        self, stream: list[str], check: Callable[[dict[str, Any]], bool], what: str
    ) -> None:
        """Wait until a JSON line of ``stream`` passes ``check``."""

        def seen() -> bool:
            if self.proc.poll() is not None and not any(_passes(check, s) for s in stream):
                raise AssertionError(f"hook exited {self.proc.returncode}: {self.err}")
            return any(_passes(check, line) for line in list(stream))

        wait_until(seen, UNIT * 2, what)

    def wait(self, timeout: float = UNIT * 2) -> int:
        """The exit code, once both output streams are read to the end."""
        code = self.proc.wait(timeout)
        self._close()
        return code

    def interrupt(self) -> int:
        """Ctrl-C, as a user stops a listener."""
        self.proc.send_signal(signal.SIGINT)
        return self.wait()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(UNIT)
        self._close()

    def _close(self) -> None:
        for reader in self._readers:
            reader.join(UNIT)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def _collect(stream: Any, into: list[str]) -> None:
    for line in stream:
        into.append(line.rstrip("\n"))


def _passes(check: Callable[[dict[str, Any]], bool], line: str) -> bool:
    try:
        data = json.loads(line)
    except ValueError:
        return False
    return isinstance(data, dict) and check(data)


class Terminal(PtyProcess):
    """A `hook` subprocess whose stdin and stdout are a pseudo-terminal; stderr is piped."""

    def __init__(self, env: dict[str, str], *args: str, columns: int = 200) -> None:
        super().__init__(
            [sys.executable, "-m", "hookcli", *args],
            {**env, "TERM": "xterm-256color"},
            columns=columns,
            rows=50,
            pipe_stderr=True,
        )

    def wait(self, timeout: float = UNIT * 2) -> tuple[int, str]:
        """The exit code and stderr, once the terminal output is read to the end."""
        _, err = self.proc.communicate(timeout=timeout)
        self._reader.join(UNIT)
        return self.proc.returncode, err.decode("utf-8", "replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(UNIT)
        self._reader.join(UNIT)
        os.close(self.master)


@pytest.fixture
def spawn(env: dict[str, str]) -> Iterator[Callable[..., Background]]:
    """Start `hook` in the background; whatever is still running at the end is killed."""
    started: list[Background] = []

    def start(*args: str) -> Background:
        started.append(Background(env, *args))
        return started[-1]

    yield start
    for proc in started:
        proc.kill()


@pytest.fixture
def terminal(env: dict[str, str]) -> Iterator[Callable[..., Terminal]]:
    """Start `hook` on a pseudo-terminal; closed (and killed if need be) at the end."""
    started: list[Terminal] = []

    def start(*args: str, columns: int = 200) -> Terminal:
        started.append(Terminal(env, *args, columns=columns))
        return started[-1]

    yield start
    for term in started:
        term.close()


# --- talking to the relay directly ----------------------------------------------------------


def http(method: str, url: str, body: bytes | None = None, **headers: str) -> Any:
    """A JSON call to the relay on loopback (with the local token the relay runs on)."""
    request = urllib.request.Request(
        url, data=body, method=method, headers={**auth_headers(), **headers}
    )
    with _HTTP.open(request, timeout=UNIT) as response:
        return json.loads(response.read())


def ingest(relay: RunningRelay, channel: str, body: bytes, **headers: str) -> str:
    """POST a webhook; the new event's id."""
    return str(http("POST", f"{relay.url}/v1/ingest/{channel}", body, **headers)["id"])


def history(relay: RunningRelay, **query: Any) -> list[dict[str, Any]]:
    """``GET /v1/events`` rows, newest first."""
    text = urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
    return list(http("GET", f"{relay.url}/v1/events?{text}")["events"])


def record(relay: RunningRelay, event_id: str) -> dict[str, Any]:
    """``GET /v1/events/<id>``."""
    return dict(http("GET", f"{relay.url}/v1/events/{event_id}"))


def free_port() -> int:
    """A loopback port nothing listens on (yet)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ns(rows: list[dict[str, Any]]) -> list[int]:
    """The ``n`` in each row's detail, in row order."""
    return [row["event"]["detail"]["n"] for row in rows]


# --- hook tail ------------------------------------------------------------------------------


def test_tail_piped_prints_bare_events_and_stops_after_count(
    relay: RunningRelay, spawn: Callable[..., Background]
) -> None:
    """Piped: stdout is one bare EventBridge event per line (--source kept), stderr JSON, exit 0."""
    tail = spawn("tail", "--source", "webhook.shop", "--count", "2", "--relay", relay.url)
    tail.wait_for_line(tail.err, lambda d: d.get("type") == "ready", "tail's ready line")
    ids = [
        ingest(relay, "other", b'{"n": 0}'),
        ingest(relay, "shop", b'{"n": 1}', **{"X-Hook-Detail-Type": "OrderCreated"}),
        ingest(relay, "shop", b'{"n": 2}'),
    ]
    assert tail.wait() == 0
    events = [json.loads(line) for line in tail.out]
    assert [e["id"] for e in events] == ids[1:]
    assert [e["source"] for e in events] == ["webhook.shop", "webhook.shop"]
    assert [e["detail"] for e in events] == [{"n": 1}, {"n": 2}]
    assert events[0]["detail-type"] == "OrderCreated"
    assert {"version", "account", "region", "time", "resources"} <= set(events[0])
    diagnostics = [json.loads(line) for line in tail.err]  # every stderr line is JSON
    assert "ready" in [d["type"] for d in diagnostics]


def test_tail_moves_no_listener_cursor(relay: RunningRelay, env: dict[str, str]) -> None:
    """A tail that reads every stored event leaves a listener's pending events pending."""
    answer_as(relay, "carol", [])  # carol exists, with her cursor at the (empty) head
    for n in range(3):
        ingest(relay, "shop", f'{{"n": {n}}}'.encode())
    assert len(history(relay, status="pending", listener="carol")) == 3
    tailed = hook(env, "tail", "--from", "0", "--count", "3", "--relay", relay.url)
    assert tailed.code == 0, tailed.stderr
    assert [e["detail"]["n"] for e in tailed.lines()] == [0, 1, 2]
    pending = hook(
        env, "events", "--status", "pending", "--listener", "carol", "--relay", relay.url
    )
    assert pending.code == 0, pending.stderr
    assert ns(pending.lines()) == [2, 1, 0]


def test_tail_on_a_terminal_shows_lines_and_json(
    relay: RunningRelay, terminal: Callable[..., Terminal]
) -> None:
    """On a TTY: a line with detail-type and source, the JSON body indented; exit 0 at --count."""
    tail = terminal("tail", "--count", "1", "--relay", relay.url)
    wait_until(lambda: "Ready." in tail.text, UNIT * 2, "the terminal's ready line")
    event_id = ingest(
        relay, "shop", b'{"amount": 12, "currency": "eur"}', **{"X-Hook-Detail-Type": "Paid"}
    )
    code, err = tail.wait()
    assert code == 0, err
    line = next(text for text in tail.text.splitlines() if "Paid" in text)
    assert "webhook.shop" in line
    assert event_id[:8] in line
    assert '"amount": 12,' in tail.text  # indented JSON, not one compact line
    assert f'"id": "{event_id}"' in tail.text
    assert "Traceback" not in err


def reader_leaves(proc: subprocess.Popen[bytes], after: Callable[[], None]) -> tuple[int, str]:
    """Read a stdout line, close the pipe as `| head -1` does, run ``after``: exit code, stderr."""
    assert proc.stdout is not None and proc.stderr is not None
    try:
        ready, _, _ = select.select([proc.stdout], [], [], UNIT * 2)
        assert ready, "no output line"
        assert proc.stdout.readline()
        proc.stdout.close()
        after()
        try:
            code = proc.wait(UNIT)
        except subprocess.TimeoutExpired:
            raise AssertionError("hook still runs after its reader left") from None
        return code, proc.stderr.read().decode("utf-8", "replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(UNIT)
        proc.stderr.close()


def popen(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "hookcli", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def test_tail_piped_into_head_exits_0(relay: RunningRelay, env: dict[str, str]) -> None:
    """`hook tail | head -1`: once the reader leaves, tail exits 0 quietly (no reconnect loop)."""
    ingest(relay, "shop", b'{"n": 0}')
    tail = popen(env, "tail", "--from", "0", "--relay", relay.url)
    code, err = reader_leaves(tail, lambda: ingest(relay, "shop", b'{"n": 1}'))
    assert "Traceback" not in err
    assert code == 0, err


def test_events_piped_into_head_exits_0(relay: RunningRelay, env: dict[str, str]) -> None:
    """`hook events | head -1` with more history than a pipe holds: exit 0, nothing on stderr."""
    pad = "x" * 4096
    for n in range(40):  # ~170 KB of JSON lines: more than a 64 KiB pipe buffer
        ingest(relay, "shop", json.dumps({"n": n, "pad": pad}).encode())
    listed = popen(env, "events", "--limit", "100", "--relay", relay.url)
    code, err = reader_leaves(listed, lambda: None)
    assert (code, err) == (0, "")


# --- hook replay ----------------------------------------------------------------------------

WEBHOOK = b'{ "type" : "charge.succeeded",\n  "amount":12 }'
SIGNATURE = "t=1,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd"


@pytest.mark.parametrize("first", ["delivered", "failed"])
def test_replay_delivers_the_webhook_byte_for_byte(
    first: str, relay: RunningRelay, http_target: RecordingTarget, env: dict[str, str]
) -> None:
    """Replaying a delivered or failed webhook sends its exact bytes and records replay: true."""
    event_id = ingest(relay, "stripe", WEBHOOK, **{"Stripe-Signature": SIGNATURE})
    answer_as(relay, "dev", [(first, 200 if first == "delivered" else 503, None)])
    replayed = hook(
        env, "replay", event_id, "--target", http_target.url, "--name", "me", "--json",
        "--relay", relay.url,
    )  # fmt: skip
    assert replayed.code == 0, replayed.stderr
    assert [r.body for r in http_target.requests] == [WEBHOOK]
    assert ("Stripe-Signature", SIGNATURE) in http_target.requests[0].headers
    results = [line for line in replayed.lines() if line["type"] == "result"]
    assert [(r["id"], r["status"], r["code"]) for r in results] == [(event_id, "delivered", 200)]
    deliveries = record(relay, event_id)["deliveries"]
    assert [(d["listener"], d["status"], d["replay"]) for d in deliveries] == [
        ("dev", first, False),
        ("me", "delivered", True),
    ]


def test_replay_to_a_failing_target_exits_1(
    relay: RunningRelay, http_target: RecordingTarget, env: dict[str, str]
) -> None:
    """A target answering 500 (no retries): exit 1, `Error:` on stderr, a failed replay recorded."""
    http_target.default_status = 500
    event_id = ingest(relay, "stripe", WEBHOOK)
    replayed = hook(
        env, "replay", event_id, "--target", http_target.url, "--retries", "0", "--name", "me",
        "--json", "--relay", relay.url,
    )  # fmt: skip
    assert replayed.code == 1
    assert replayed.stderr.startswith("Error: 1 of 1 replays failed")
    assert "Traceback" not in replayed.stderr
    results = [line for line in replayed.lines() if line["type"] == "result"]
    assert [(r["status"], r["code"], r["error"]) for r in results] == [
        ("failed", 500, "nope: rejected")
    ]
    deliveries = record(relay, event_id)["deliveries"]
    assert [(d["listener"], d["status"], d["code"], d["replay"]) for d in deliveries] == [
        ("me", "failed", 500, True)
    ]


def test_replay_unknown_id_exits_5(
    relay: RunningRelay, http_target: RecordingTarget, env: dict[str, str]
) -> None:
    """An id the relay does not have: exit 5, a clear error naming it, no traceback."""
    replayed = hook(env, "replay", "no-such-id", "--target", http_target.url, "--relay", relay.url)
    assert replayed.code == 5
    assert replayed.stderr.startswith("Error: no event with id 'no-such-id' on this relay")
    assert "Hint:" in replayed.stderr
    assert "Traceback" not in replayed.stderr
    assert http_target.requests == []


def outage(
    relay: RunningRelay, spawn: Callable[..., Background], port: int, count: int
) -> list[str]:
    """`hook listen --name outage` with nothing on ``port``: ``count`` events end failed."""
    listener = spawn(
        "listen", "--target", f"127.0.0.1:{port}", "--name", "outage", "--retries", "0",
        "--relay", relay.url,
    )  # fmt: skip
    listener.wait_for_line(listener.out, lambda d: d.get("type") == "ready", "listen's ready line")
    ids = [ingest(relay, "shop", f'{{"n": {n}}}'.encode()) for n in range(count)]
    wait_until(
        lambda: len(history(relay, status="failed", listener="outage")) == count,
        UNIT * 2,
        "the failures recorded",
    )
    assert listener.interrupt() == 130
    failed = [json.loads(line) for line in listener.out if '"type":"result"' in line]
    assert [(r["id"], r["status"]) for r in failed] == [(i, "failed") for i in ids]
    assert "connection refused" in failed[0]["error"]
    return ids


def test_replay_failed_after_an_outage_delivers_them_all(
    relay: RunningRelay,
    loop_thread: LoopThread,
    spawn: Callable[..., Background],
    env: dict[str, str],
) -> None:
    """The target comes back: `replay --failed --listener` delivers every failure, in order."""
    port = free_port()
    ids = outage(relay, spawn, port, 3)
    target = RecordingTarget()
    runner = loop_thread.run(start_target(target, port))
    try:
        replayed = hook(
            env, "replay", "--failed", "--listener", "outage", "--target", f"127.0.0.1:{port}",
            "--json", "--relay", relay.url,
        )  # fmt: skip
        assert replayed.code == 0, replayed.stderr
        results = [line for line in replayed.lines() if line["type"] == "result"]
        assert [(r["id"], r["status"]) for r in results] == [(i, "delivered") for i in ids]
        assert [json.loads(r.body) for r in target.requests] == [{"n": n} for n in range(3)]
    finally:
        loop_thread.run(runner.cleanup())


def test_replay_failed_twice_delivers_once(
    relay: RunningRelay,
    loop_thread: LoopThread,
    spawn: Callable[..., Background],
    env: dict[str, str],
) -> None:
    """After a successful `replay --failed --listener X`, X has no failures left to replay."""
    port = free_port()
    outage(relay, spawn, port, 2)
    target = RecordingTarget()
    runner = loop_thread.run(start_target(target, port))
    try:
        args = ["replay", "--failed", "--listener", "outage", "--target", f"127.0.0.1:{port}"]
        assert hook(env, *args, "--relay", relay.url).code == 0
        assert len(target.requests) == 2
        assert history(relay, status="failed", listener="outage") == []
        again = hook(env, *args, "--json", "--relay", relay.url)
        assert again.code == 0, again.stderr
        assert len(target.requests) == 2
    finally:
        loop_thread.run(runner.cleanup())


# --- ids as printed, and truthful replay history (issue 9) --------------------------------


def me_as(port: int) -> str:
    """The identity `hook listen --target 127.0.0.1:PORT` takes without --name."""
    from hookcli.cli.options import default_name

    return f"{default_name()}:{port}"


def test_listeners_side_by_side_keep_their_own_identity(
    relay: RunningRelay, http_target: RecordingTarget, spawn: Callable[..., Background]
) -> None:
    """Three listeners without --name (a URL, a command, a handler) all stay connected, each
    under user@host:<target>, and each gets the event (none replaced another, issue 9 item 1)."""
    port = int(http_target.url.rsplit(":", 1)[1])
    handler = str(Path(__file__).resolve().parent.parent / "examples" / "handler.py")
    commands = [("--target", http_target.url), ("--exec", "cat"), ("--handler", handler)]
    listeners = [spawn("listen", *target, "--relay", relay.url) for target in commands]
    for listener in listeners:
        listener.wait_for_line(listener.out, lambda d: d.get("type") == "ready", "ready")
    ready = [
        next(d for line in one.out if (d := json.loads(line)).get("type") == "ready")
        for one in listeners
    ]
    names = [line["listener"] for line in ready]
    assert names[0] == me_as(port)
    assert names[1].startswith(me_as(port).rsplit(":", 1)[0] + ":exec:")
    assert names[2].endswith(":handler:handler.py")
    event_id = ingest(relay, "shop", b'{"n": 1}')
    for listener in listeners:
        listener.wait_for_line(
            listener.out, lambda d: d.get("type") == "result" and d["id"] == event_id, "result"
        )
    assert all(listener.proc.poll() is None for listener in listeners)
    wait_until(
        lambda: len(record(relay, event_id)["deliveries"]) == 3, UNIT * 2, "three results stored"
    )
    targets = {d["listener"]: d["target"] for d in record(relay, event_id)["deliveries"]}
    assert targets[names[0]] == f"{http_target.url}/"
    assert targets[names[1]] == "exec cat"
    assert targets[names[2]].startswith("handler ") and targets[names[2]].endswith(":handler")


def test_the_same_listen_command_resumes_its_cursor(
    relay: RunningRelay, http_target: RecordingTarget, spawn: Callable[..., Background]
) -> None:
    """Run again, `hook listen --target X` resumes after what it answered (same identity)."""
    args = ("listen", "--target", http_target.url, "--relay", relay.url)
    first = spawn(*args)
    first.wait_for_line(first.out, lambda d: d.get("type") == "ready", "ready")
    ingest(relay, "shop", b'{"n": 1}')
    first.wait_for_line(first.out, lambda d: d.get("type") == "result", "result")
    assert first.interrupt() == 130
    missed = ingest(relay, "shop", b'{"n": 2}')
    again = spawn(*args)
    again.wait_for_line(again.out, lambda d: d.get("type") == "ready" and d["resumed"], "resumed")
    again.wait_for_line(again.out, lambda d: d.get("id") == missed, "the event sent meanwhile")
    assert [json.loads(r.body) for r in http_target.requests] == [{"n": 1}, {"n": 2}]


def store_ids(relay: RunningRelay, loop_thread: LoopThread, ids: list[str]) -> None:
    """Commit events with these ids (sharing prefixes, as random ids rarely do)."""
    events = [parse_event({"id": i, "source": "s", "detail-type": "d", "detail": {}}) for i in ids]
    loop_thread.run(relay.relay.commit(events))


def test_replay_takes_the_short_id_hook_prints(
    relay: RunningRelay, http_target: RecordingTarget, env: dict[str, str]
) -> None:
    """`hook replay <first 8 characters>` replays that event (a unique prefix is enough)."""
    event_id = ingest(relay, "shop", b'{"n": 1}')
    replayed = hook(env, "replay", event_id[:8], "--target", http_target.url, "--json",
                    "--relay", relay.url)  # fmt: skip
    assert replayed.code == 0, replayed.stderr
    assert [json.loads(r.body) for r in http_target.requests] == [{"n": 1}]
    assert [d["listener"] for d in record(relay, event_id)["deliveries"]] == [
        me_as(int(http_target.url.rsplit(":", 1)[1]))
    ]


def test_events_show_takes_the_short_id(relay: RunningRelay, env: dict[str, str]) -> None:
    """`hook events show <8 characters>` shows the event whose id starts with them."""
    event_id = ingest(relay, "shop", b'{"n": 1}')
    shown = hook(env, "events", "show", event_id[:8], "--json", "--relay", relay.url)
    assert shown.code == 0, shown.stderr
    assert [line["event"]["id"] for line in shown.lines()] == [event_id]


@pytest.mark.parametrize(
    ("given", "status", "error"),
    [
        ("abcd", 409, "'abcd' is the start of 10 (and more) event ids"),
        ("abcd-1", 409, "'abcd-1' is the start of 2 event ids"),
        ("abcd-00", 200, None),
        ("abc", 404, "no event with id 'abc' on this relay"),
        ("abce", 404, "no event with id 'abce' on this relay"),
    ],
)
def test_get_event_resolves_a_unique_prefix(
    relay: RunningRelay, loop_thread: LoopThread, given: str, status: int, error: str | None
) -> None:
    """GET /v1/events/<prefix>: one match is the event, several a 409 listing at most 10, none
    (or fewer than 4 characters) a 404 with a hint."""
    store_ids(relay, loop_thread, [f"abcd-{n:02}" for n in range(12)])
    request = urllib.request.Request(f"{relay.url}/v1/events/{given}", headers=auth_headers())
    try:
        with _HTTP.open(request, timeout=UNIT) as response:
            answer, code = json.loads(response.read()), response.status
    except urllib.error.HTTPError as exc:
        answer, code = json.loads(exc.read()), exc.code
    assert code == status
    if status == 200:
        assert answer["event"]["id"] == "abcd-00"
        return
    assert answer["error"] == error
    assert answer["hint"]
    if status == 409:
        assert answer["candidates"] == sorted(answer["candidates"])
        assert len(answer["candidates"]) == (10 if given == "abcd" else 2)
        assert all(c.startswith(given) for c in answer["candidates"])


def test_an_ambiguous_id_lists_the_candidates(
    relay: RunningRelay, loop_thread: LoopThread, http_target: RecordingTarget, env: dict[str, str]
) -> None:
    """`hook replay <shared prefix>`: exit 2, each candidate on its own line, a hint, no replay."""
    store_ids(relay, loop_thread, ["dup-0", "dup-1"])
    replayed = hook(env, "replay", "dup-", "--target", http_target.url, "--relay", relay.url)
    assert replayed.code == 2
    assert replayed.stderr.startswith(
        "Error: 'dup-' is the start of 2 event ids:\n  dup-0\n  dup-1"
    )
    assert "Hint: give more characters of the id" in replayed.stderr
    assert http_target.requests == []


def test_replay_failed_replays_only_this_identitys_failures(
    relay: RunningRelay, http_target: RecordingTarget, env: dict[str, str]
) -> None:
    """`replay --failed --target X` replays the failures of the listener `listen --target X`
    would be, and leaves another listener's failures failed (issue 9 item 4)."""
    port = int(http_target.url.rsplit(":", 1)[1])
    ids = [ingest(relay, "shop", f'{{"n": {n}}}'.encode()) for n in range(2)]
    answer_as(relay, me_as(port), [("failed", 500, "down"), ("delivered", 200, None)])
    answer_as(
        relay, "someone@else:handler:app.py", [("delivered", 200, None), ("failed", 500, "x")]
    )
    replayed = hook(env, "replay", "--failed", "--target", http_target.url, "--json",
                    "--relay", relay.url)  # fmt: skip
    assert replayed.code == 0, replayed.stderr
    assert [json.loads(r.body) for r in http_target.requests] == [{"n": 0}]
    assert [row["event"]["id"] for row in history(relay, status="failed")] == [ids[1]]


def test_replay_failed_with_nothing_to_do_names_whose_failures_it_looked_for(
    relay: RunningRelay, http_target: RecordingTarget, env: dict[str, str]
) -> None:
    """Another listener's failure is not this identity's: exit 0, a notice naming the identity
    it looked under and how to reach the others, nothing delivered."""
    port = int(http_target.url.rsplit(":", 1)[1])
    ingest(relay, "shop", b"{}")
    answer_as(relay, "a", [("failed", 500, "down")])
    replayed = hook(env, "replay", "--failed", "--target", http_target.url, "--json",
                    "--relay", relay.url)  # fmt: skip
    assert replayed.code == 0, replayed.stderr
    [notice] = [line["message"] for line in replayed.lines() if line["type"] == "notice"]
    assert notice == (
        f"No failed deliveries of {me_as(port)} to replay"
        " (--listener NAME or --all-listeners for others)."
    )
    assert http_target.requests == []


def test_replay_failed_all_listeners_records_each_with_the_real_target(
    relay: RunningRelay, http_target: RecordingTarget, env: dict[str, str]
) -> None:
    """`--all-listeners` replays every listener's failure, each recorded for its listener with
    the target it really went to, who replayed it and the failure it answers."""
    port = int(http_target.url.rsplit(":", 1)[1])
    event_id = ingest(relay, "shop", b'{"n": 0}')
    answer_as(relay, "a", [("failed", 500, "down")])
    answer_as(relay, "b", [("failed", 503, "down")])
    replayed = hook(env, "replay", "--failed", "--all-listeners", "--target", http_target.url,
                    "--json", "--relay", relay.url)  # fmt: skip
    assert replayed.code == 0, replayed.stderr
    assert len(http_target.requests) == 1
    deliveries = record(relay, event_id)["deliveries"]
    failures = {d["listener"]: d["id"] for d in deliveries if not d["replay"]}
    replays = [
        (d["listener"], d["status"], d["target"], d["replayed_by"], d["replay_of"])
        for d in deliveries
        if d["replay"]
    ]
    assert sorted(replays) == [
        ("a", "delivered", f"{http_target.url}/", me_as(port), failures["a"]),
        ("b", "delivered", f"{http_target.url}/", me_as(port), failures["b"]),
    ]


@pytest.mark.parametrize(
    ("options", "error"),
    [
        (("--listener", "x"), "--listener, --all-listeners and --since go with --failed"),
        (("--failed", "--listener", "x", "--all-listeners"), "give --listener NAME or"),
    ],
)
def test_replay_scope_options_need_failed(
    options: tuple[str, ...], error: str, relay: RunningRelay, env: dict[str, str]
) -> None:
    """Scope options that cannot apply are a usage error (exit 2), not silently ignored."""
    event_id = ingest(relay, "shop", b"{}")
    replayed = hook(env, "replay", event_id, *options, "--target", "3000", "--relay", relay.url)
    assert replayed.code == 2
    assert replayed.stderr.startswith(f"Error: {error}")


def test_events_show_tells_the_replay_story(
    relay: RunningRelay, http_target: RecordingTarget, terminal: Callable[..., Terminal],
    env: dict[str, str],
) -> None:  # fmt: skip
    """`hook events show`: each delivery's row id; the replay names its target, the failure it
    answers and who ran it."""
    event_id = ingest(relay, "shop", b'{"n": 0}')
    answer_as(relay, "a", [("failed", 500, "down")])
    replayed = hook(env, "replay", "--failed", "--listener", "a", "--target", http_target.url,
                    "--name", "fixer", "--relay", relay.url)  # fmt: skip
    assert replayed.code == 0, replayed.stderr
    failed_id = record(relay, event_id)["deliveries"][0]["id"]
    shown = terminal("events", "show", event_id[:8], "--relay", relay.url)
    code, err = shown.wait()
    assert code == 0, err
    lines = shown.text.splitlines()
    [failure, replay] = [n for n, line in enumerate(lines) if "  attempt " in line]
    assert lines[failure].startswith(f"#{failed_id}") and "a  failed 500" in lines[failure]
    assert "a  delivered 200" in lines[replay]
    assert lines[replay].endswith(f"-> {http_target.url}/")
    assert lines[replay + 1].strip() == f"replay of #{failed_id} by fixer"


def test_post_result_refuses_a_link_to_another_listeners_failure(relay: RunningRelay) -> None:
    """`replay_of` naming another listener's delivery is a 400: a replay answers its own."""
    event_id = ingest(relay, "shop", b"{}")
    answer_as(relay, "a", [("failed", 500, "down")])
    [failed] = record(relay, event_id)["deliveries"]
    body = {"listener": "b", "status": "delivered", "replay_of": failed["id"]}
    request = urllib.request.Request(
        f"{relay.url}/v1/events/{event_id}/results",
        data=json.dumps(body).encode(),
        method="POST",
        headers={**auth_headers(), "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        _HTTP.open(request, timeout=UNIT)
    assert caught.value.code == 400
    assert "is not a delivery of this event to 'b'" in json.loads(caught.value.read())["error"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"replay_of": 999999}, "'replay_of' 999999 is not a delivery of this event"),
        ({"replay_of": "1"}, "'replay_of' must be a delivery id"),
        ({"target": 5}, "'target' must be text"),
        ({"replayed_by": ""}, "'replayed_by' must be 1-200 characters"),
    ],
)
def test_post_result_checks_the_replay_fields(
    relay: RunningRelay, body: dict[str, Any], error: str
) -> None:
    """A replay result with a bad target, replayer or failure link is a 400 with a hint."""
    event_id = ingest(relay, "shop", b"{}")
    result = {"listener": "me", "status": "delivered", **body}
    request = urllib.request.Request(
        f"{relay.url}/v1/events/{event_id}/results",
        data=json.dumps(result).encode(),
        method="POST",
        headers={**auth_headers(), "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        _HTTP.open(request, timeout=UNIT)
    answer = json.loads(caught.value.read())
    assert caught.value.code == 400
    assert answer["error"].startswith(f"bad result: {error}")
    assert answer["hint"]
    assert record(relay, event_id)["deliveries"] == []


# --- hook events ----------------------------------------------------------------------------

#: (channel, detail-type, n, listener x's result, listener y's result), oldest first.
SEEDED = [
    ("shop", "OrderCreated", 1, "delivered", "failed"),
    ("billing", "OrderCreated", 2, "failed", "delivered"),
    ("shop", "OrderShipped", 3, "failed", "delivered"),
    ("shop", "OrderCreated", 4, "delivered", "delivered"),
]


@dataclass(frozen=True)
class Seeded:
    relay: RunningRelay
    ids: dict[int, str]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """One relay with four events, each answered by listeners x and y (read-only for tests)."""
    thread = LoopThread()
    settings = RelaySettings(port=0, data_dir=tmp_path_factory.mktemp("events"), source=False)
    running = thread.run(start_relay(settings))
    try:
        ids = {
            n: ingest(running, channel, f'{{"n": {n}}}'.encode(), **{"X-Hook-Detail-Type": kind})
            for channel, kind, n, _, _ in SEEDED
        }

        def outcome(status: str) -> tuple[str, int, str | None]:
            return (status, 200, None) if status == "delivered" else (status, 503, "boom")

        answer_as(running, "x", [outcome(x) for *_, x, _ in SEEDED])
        answer_as(running, "y", [outcome(y) for *_, y in SEEDED])
        yield Seeded(running, ids)
    finally:
        thread.run(running.stop())
        thread.stop()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ((), [4, 3, 2, 1]),
        (("--source", "webhook.billing"), [2]),
        (("--detail-type", "OrderShipped"), [3]),
        (("--pattern", '{"detail": {"n": [{"numeric": [">=", 3]}]}}'), [4, 3]),
        (("--status", "failed", "--listener", "x"), [3, 2]),
        (("--status", "failed", "--listener", "y"), [1]),
        (("--status", "delivered", "--listener", "x"), [4, 1]),
        (("--status", "failed"), [3, 2, 1]),
        (("--limit", "2"), [4, 3]),
        (("--source", "webhook.shop", "--detail-type", "OrderCreated", "--limit", "1"), [4]),
        (("--source", "webhook.billing", "--source", "webhook.shop"), [4, 3, 2, 1]),
        (("--source", "webhook.billing", "--source", "webhook.other"), [2]),
        (("--detail-type", "OrderShipped", "--detail-type", "OrderCreated"), [4, 3, 2, 1]),
        (("--detail-type", "OrderShipped", "--detail-type", "Nope"), [3]),
        (("--source", "webhook.shop", "--detail-type", "OrderShipped", "--detail-type", "X"), [3]),
    ],
)
def test_events_filters(
    options: tuple[str, ...], expected: list[int], seeded: Seeded, env: dict[str, str]
) -> None:
    """`hook events --json`: history lines, newest first, narrowed by each filter."""
    listed = hook(env, "events", *options, "--json", "--relay", seeded.relay.url)
    assert listed.code == 0, listed.stderr
    rows = listed.lines()
    assert all(row["type"] == "history" for row in rows)
    assert ns(rows) == expected
    assert [row["seq"] for row in rows] == sorted((row["seq"] for row in rows), reverse=True)


def test_events_listener_rows_carry_only_its_deliveries(
    seeded: Seeded, env: dict[str, str]
) -> None:
    """With --listener, each row lists that listener's results (status, code, error) only."""
    listed = hook(env, "events", "--listener", "y", "--json", "--relay", seeded.relay.url)
    assert listed.code == 0, listed.stderr
    summary = [
        [(d["listener"], d["status"], d["code"], d["error"]) for d in row["deliveries"]]
        for row in listed.lines()
    ]
    assert summary == [
        [("y", "delivered", 200, None)],
        [("y", "delivered", 200, None)],
        [("y", "delivered", 200, None)],
        [("y", "failed", 503, "boom")],
    ]


def test_events_pending_needs_a_listener(seeded: Seeded, env: dict[str, str]) -> None:
    """`--status pending` alone is a usage error (exit 2) saying what is missing."""
    listed = hook(env, "events", "--status", "pending", "--relay", seeded.relay.url)
    assert listed.code == 2
    assert listed.stderr.startswith("Error: --status pending needs --listener")
    assert listed.stdout == ""


def test_events_on_a_terminal_is_a_table(seeded: Seeded, terminal: Callable[..., Terminal]) -> None:
    """On an 80-column TTY, `hook events` is a table of one line per listener result: short id,
    source, detail-type and a mark, code and listener per result (no id wrapped)."""
    listed = terminal("events", "--relay", seeded.relay.url, columns=80)
    code, err = listed.wait()
    assert code == 0, err
    lines = listed.text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert not any(seeded.ids[3] in line for line in lines)
    [at] = [n for n, line in enumerate(lines) if seeded.ids[3][:8] in line]
    assert re.search(
        rf"{seeded.ids[3][:8]}\s+webhook\.shop\s+OrderShipped\s+✗ failed 503 x$", lines[at]
    )
    assert lines[at + 1].rstrip().endswith("✓ 200 y")


def test_events_names_your_own_listeners_by_their_target(
    relay: RunningRelay, terminal: Callable[..., Terminal]
) -> None:
    """At 80 columns your own listeners read `:3000`, others' in full; `--wide` names all."""
    ingest(relay, "shop", b"{}")
    answer_as(relay, me_as(3000), [("failed", 500, "down")])
    answer_as(relay, "you@there:3000", [("delivered", 200, None)])
    narrow = terminal("events", "--relay", relay.url, columns=80)
    assert narrow.wait()[0] == 0
    assert "✗ failed 500 :3000" in narrow.text and me_as(3000) not in narrow.text
    assert "✓ 200 you@there:3000" in narrow.text
    wide = terminal("events", "--wide", "--relay", relay.url)
    assert wide.wait()[0] == 0
    assert f"{me_as(3000)} failed 500" in wide.text


def test_events_wide_shows_full_ids_and_results(
    seeded: Seeded, terminal: Callable[..., Terminal]
) -> None:
    """`hook events --wide`: full ids, each listener's status, code and latency."""
    listed = terminal("events", "--wide", "--relay", seeded.relay.url)
    code, err = listed.wait()
    assert code == 0, err
    lines = listed.text.splitlines()
    [at] = [n for n, line in enumerate(lines) if seeded.ids[3] in line]
    assert re.search(
        rf"{seeded.ids[3]}\s+webhook\.shop\s+OrderShipped\s+x failed 503 2 ms", lines[at]
    )
    assert "y delivered 200 2 ms" in lines[at + 1]


@pytest.mark.parametrize("where", ["after", "before"])
def test_events_show_json(where: str, seeded: Seeded, env: dict[str, str]) -> None:
    """`hook events show ID --json` (options after or before `show`): event, request, deliveries."""
    event_id = seeded.ids[2]
    options = ["--json", "--relay", seeded.relay.url]
    args = ["show", event_id, *options] if where == "after" else [*options, "show", event_id]
    shown = hook(env, "events", *args)
    assert shown.code == 0, shown.stderr
    [line] = shown.lines()
    assert line["type"] == "event_record"
    assert line["event"]["id"] == event_id
    assert line["event"]["source"] == "webhook.billing"
    assert line["request"]["body_b64"] == "eyJuIjogMn0="  # b'{"n": 2}'
    deliveries = {(d["listener"], d["status"], d["code"], d["error"]) for d in line["deliveries"]}
    assert deliveries == {("x", "failed", 503, "boom"), ("y", "delivered", 200, None)}


def test_events_show_on_a_terminal(seeded: Seeded, terminal: Callable[..., Terminal]) -> None:
    """On a TTY, `events show` prints the event, its raw request and one line per delivery."""
    event_id = seeded.ids[3]
    shown = terminal("events", "--relay", seeded.relay.url, "show", event_id)
    code, err = shown.wait()
    assert code == 0, err
    text = shown.text
    assert f"OrderShipped  webhook.shop  {event_id}" in text
    assert '"n": 3' in text
    assert "raw request  POST /" in text
    assert "x  failed 503  attempt 1" in text
    assert "boom" in text
    assert "y  delivered 200  attempt 1" in text


def test_events_show_unknown_id_exits_5(seeded: Seeded, env: dict[str, str]) -> None:
    """An unknown id: exit 5, `Error:` naming it, nothing on stdout, no traceback."""
    shown = hook(env, "events", "show", "no-such-id", "--relay", seeded.relay.url)
    assert shown.code == 5
    assert shown.stderr.startswith("Error: no event with id 'no-such-id' on this relay")
    assert shown.stdout == ""
    assert "Traceback" not in shown.stderr


# --- hook send ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRelay]:
    """A relay in local mode: moto's emulated EventBridge bus -> rule -> SQS -> relay."""
    thread = LoopThread()
    settings = RelaySettings(
        name="hook-commands", port=0, data_dir=tmp_path_factory.mktemp("local")
    )
    running = thread.run(start_relay(settings), timeout=UNIT * 6)
    try:
        yield running
    finally:
        thread.run(running.stop())
        thread.stop()


def arrived(relay: RunningRelay, source: str, count: int) -> list[dict[str, Any]]:
    """Wait until ``count`` events from ``source`` are in the relay's store; newest first."""
    wait_until(
        lambda: len(history(relay, source=source)) >= count, UNIT * 2, f"{count} from {source}"
    )
    return history(relay, source=source)


def test_send_one_event_arrives_through_the_bus(
    local_relay: RunningRelay, terminal: Callable[..., Terminal]
) -> None:
    """On a terminal `hook send` prints the bare id; that event reaches the store through SQS."""
    sent = terminal(
        "send", "--source", "commands.single", "--detail-type", "Hello", "--detail", '{"a": 1}',
        "--relay", local_relay.url,
    )  # fmt: skip
    code, err = sent.wait()
    assert code == 0, err
    [event_id] = sent.text.split()
    assert "put 1 of 1 events on bus 'default' (emulated bus at http://127.0.0.1:" in err
    [row] = arrived(local_relay, "commands.single", 1)
    assert row["event"]["id"] == event_id
    assert (row["event"]["detail-type"], row["event"]["detail"]) == ("Hello", {"a": 1})


def test_send_piped_prints_json_lines(local_relay: RunningRelay, env: dict[str, str]) -> None:
    """Piped, `hook send` prints one `sent` JSON line per entry and no summary on stderr."""
    sent = hook(
        env, "send", "--source", "commands.piped", "--detail-type", "Hello", "--relay",
        local_relay.url,
    )  # fmt: skip
    assert sent.code == 0, sent.stderr
    [line] = sent.lines()
    assert line | {"id": None} == {
        "type": "sent", "index": 0, "id": None, "ok": True, "error_code": None, "error": None,
    }  # fmt: skip
    [row] = arrived(local_relay, "commands.piped", 1)
    assert row["event"]["id"] == line["id"]
    assert row["event"]["detail"] == {}


def test_send_file_takes_both_line_shapes(
    local_relay: RunningRelay, env: dict[str, str], tmp_path: Path
) -> None:
    """--file: PutEvents-shaped and EventBridge-shaped lines (blank lines skipped) all arrive."""
    lines = [
        json.dumps({"Source": "commands.file", "DetailType": "Put", "Detail": '{"k": 1}'}),
        "",
        json.dumps({"source": "commands.file", "detail-type": "Bridge", "detail": {"k": 2}}),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sent = hook(env, "send", "--file", str(path), "--json", "--relay", local_relay.url)
    assert sent.code == 0, sent.stderr
    results = sent.lines()
    assert [(r["type"], r["index"], r["ok"]) for r in results] == [
        ("sent", 0, True),
        ("sent", 1, True),
    ]
    rows = arrived(local_relay, "commands.file", 2)
    got = {
        row["event"]["id"]: (row["event"]["detail-type"], row["event"]["detail"]) for row in rows
    }
    assert got == {results[0]["id"]: ("Put", {"k": 1}), results[1]["id"]: ("Bridge", {"k": 2})}


@pytest.mark.parametrize(
    "text",
    [
        json.dumps([{"source": "commands.doc", "detail-type": "A", "detail": {"k": 1}}], indent=2),
        json.dumps({"source": "commands.doc", "detail-type": "A", "detail": {"k": 1}}, indent=2),
    ],
    ids=["array", "pretty-object"],
)
def test_send_file_takes_a_json_document(
    text: str, local_relay: RunningRelay, env: dict[str, str], tmp_path: Path
) -> None:
    """--file also takes a JSON array of events or one pretty-printed event object."""
    path = tmp_path / "event.json"
    path.write_text(text + "\n", encoding="utf-8")
    sent = hook(env, "send", "--file", str(path), "--json", "--relay", local_relay.url)
    assert sent.code == 0, sent.stderr
    [result] = sent.lines()
    rows = arrived(local_relay, "commands.doc", 1)
    assert {(r["event"]["id"], r["event"]["detail"]["k"]) for r in rows} >= {(result["id"], 1)}


def test_pattern_test_events_agrees_with_what_the_relay_stored(
    local_relay: RunningRelay, env: dict[str, str]
) -> None:
    """`pattern test --events F`: each line gets the verdict its stored event gets."""
    from hookcli.patterns import compile_pattern

    examples = Path(__file__).parent.parent / "examples"
    sent = hook(env, "send", "--file", str(examples / "events.jsonl"), "--relay", local_relay.url)
    assert sent.code == 0, sent.stderr
    ids = [line["id"] for line in sent.lines()]
    wait_until(
        lambda: set(ids) <= {r["event"]["id"] for r in history(local_relay, limit=500)},
        UNIT * 3,
        "examples/events.jsonl stored",
    )
    stored = {r["event"]["id"]: r["event"] for r in history(local_relay, limit=500)}
    pattern = '{"source": ["shop.payments"]}'
    tested = hook(
        env, "pattern", "test", pattern, "--events", str(examples / "events.jsonl"), "--json"
    )
    assert tested.code == 0, tested.stderr
    expected = [compile_pattern(pattern).matches(stored[event_id]) for event_id in ids]
    verdicts = tested.lines()
    assert [(v["position"], v["match"]) for v in verdicts] == [
        (f"line {n}", matched) for n, matched in enumerate(expected, 1)
    ]
    assert expected.count(True) == 1


def test_send_aws_sample_arrives_through_the_bus(
    local_relay: RunningRelay, env: dict[str, str]
) -> None:
    """`hook send --sample s3-object-created` puts an S3 Object Created event on the bus."""
    sent = hook(env, "send", "--sample", "s3-object-created", "--relay", local_relay.url)
    assert sent.code == 0, sent.stderr
    [line] = sent.lines()
    [row] = [r for r in arrived(local_relay, "aws.s3", 1) if r["event"]["id"] == line["id"]]
    assert row["event"]["detail-type"] == "Object Created"
    assert row["event"]["detail"]["bucket"] == {"name": "amzn-s3-demo-bucket"}


@pytest.fixture(scope="module")
def signed_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRelay]:
    """An ingest-only relay whose ``github`` channel requires X-Hook-Signature."""
    from hookcli.relay.server import IngestSettings

    thread = LoopThread()
    settings = RelaySettings(
        name="hook-signed",
        port=0,
        data_dir=tmp_path_factory.mktemp("signed"),
        source=False,
        ingest=IngestSettings(secrets={"github": "channel-secret"}),
    )
    running = thread.run(start_relay(settings), timeout=UNIT * 6)
    try:
        yield running
    finally:
        thread.run(running.stop())
        thread.stop()


def test_send_github_sample_signed_for_the_channel_and_the_app(
    signed_relay: RunningRelay, env: dict[str, str]
) -> None:
    """A GitHub push sample passes the channel's check, is a `push`, and its GitHub signature
    verifies with --provider-secret."""
    sent = hook(
        {**env, "HOOK_SEND_SECRET": "channel-secret"}, "send", "--sample", "github-push",
        "--provider-secret", "app-secret", "--relay", signed_relay.url,
    )  # fmt: skip
    assert sent.code == 0, sent.stderr
    [line] = sent.lines()
    stored = record(signed_relay, line["id"])
    assert (stored["event"]["source"], stored["event"]["detail-type"]) == (
        "webhook.github",
        "push",
    )
    body = base64.b64decode(stored["request"]["body_b64"])
    headers = {k.lower(): v for k, v in stored["request"]["headers"]}
    digest = hmac.new(b"app-secret", body, hashlib.sha256).hexdigest()
    assert headers["x-hub-signature-256"] == f"sha256={digest}"
    assert "authorization" not in headers


def test_send_webhook_sample_without_the_channel_secret_exits_4(
    signed_relay: RunningRelay, env: dict[str, str]
) -> None:
    """Without --secret the channel refuses the sample: exit 4 and a hint naming --secret."""
    sent = hook(env, "send", "--sample", "github-push", "--relay", signed_relay.url)
    assert sent.code == 4
    assert sent.stderr.startswith("Error: signature check failed for channel 'github'")
    assert "--secret" in sent.stderr


@pytest.mark.parametrize(
    ("bad", "line", "why"),
    [
        ('{"source": "commands.bad", "detail-type": "X"', 3, "JSON"),
        ('{"source": "commands.bad", "detail": {}}', 3, "detail-type"),
        ('{"Source": "commands.bad", "DetailType": "X", "Detail": "nope"}', 3, "Detail"),
    ],
)
def test_send_bad_line_sends_nothing(
    bad: str,
    line: int,
    why: str,
    local_relay: RunningRelay,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    """A bad line: exit 2 naming its line number, and not even the good lines are put."""
    good = json.dumps({"source": "commands.bad", "detail-type": "X", "detail": {}})
    path = tmp_path / "events.jsonl"
    path.write_text(f"{good}\n\n{bad}\n{good}\n", encoding="utf-8")
    sent = hook(env, "send", "--file", str(path), "--relay", local_relay.url)
    assert sent.code == 2
    assert sent.stdout == ""
    first = sent.stderr.splitlines()[0]
    assert first.startswith("Error: ") and f"line {line}" in first and why in first, first
    # A sentinel sent afterwards arrives; nothing from the bad file came before it.
    sentinel = hook(
        env, "send", "--source", "commands.sentinel", "--detail-type", why, "--relay",
        local_relay.url,
    )  # fmt: skip
    assert sentinel.code == 0, sentinel.stderr
    [sentinel_id] = [line["id"] for line in sentinel.lines()]
    wait_until(
        lambda: any(r["event"]["id"] == sentinel_id for r in history(local_relay)),
        UNIT * 2,
        "the sentinel",
    )
    assert history(local_relay, source="commands.bad") == []


def write_partly_too_big(path: Path, source: str) -> None:
    """Three entries; the second is over EventBridge's 1 MiB entry limit."""
    lines = [
        {"source": source, "detail-type": "Small", "detail": {"n": 1}},
        {"source": source, "detail-type": "Big", "detail": {"n": 2, "pad": "x" * (1 << 20)}},
        {"source": source, "detail-type": "Small", "detail": {"n": 3}},
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")


def test_send_rejected_entry_is_reported_and_the_rest_sent(
    local_relay: RunningRelay, env: dict[str, str], tmp_path: Path
) -> None:
    """An entry over 1 MiB is rejected alone (its `sent` line says why), the others put, exit 1."""
    path = tmp_path / "events.jsonl"
    write_partly_too_big(path, "commands.partial.json")
    sent = hook(env, "send", "--file", str(path), "--json", "--relay", local_relay.url)
    assert sent.code == 1
    assert sent.stderr.startswith("Error: 1 of 3 events were rejected by EventBridge")
    results = sent.lines()
    assert [(r["index"], r["ok"], r["error_code"]) for r in results] == [
        (0, True, None),
        (1, False, "EntryTooLarge"),
        (2, True, None),
    ]
    assert results[1]["id"] is None and "1048576" in results[1]["error"]
    rows = arrived(local_relay, "commands.partial.json", 2)
    assert {row["event"]["id"]: row["event"]["detail"]["n"] for row in rows} == {
        results[0]["id"]: 1,
        results[2]["id"]: 3,
    }


def test_send_rejected_entry_on_a_terminal(
    local_relay: RunningRelay, terminal: Callable[..., Terminal], tmp_path: Path
) -> None:
    """On a terminal: the good ids on stdout, `entry 2 rejected` with the reason on stderr."""
    path = tmp_path / "events.jsonl"
    write_partly_too_big(path, "commands.partial.text")
    sent = terminal("send", "--file", str(path), "--relay", local_relay.url)
    code, err = sent.wait()
    assert code == 1
    ids = sent.text.split()
    assert len(ids) == 2
    assert err.startswith("entry 2 rejected: EntryTooLarge: entry is ")
    assert "put 2 of 3 events on bus 'default'" in err
    assert "Error: 1 of 3 events were rejected by EventBridge" in err
    rows = arrived(local_relay, "commands.partial.text", 2)
    assert sorted(row["event"]["id"] for row in rows) == sorted(ids)


def test_send_without_a_relay_exits_3(env: dict[str, str]) -> None:
    """No relay at --relay: exit 3, an error naming the URL and a hint, no traceback."""
    url = f"http://127.0.0.1:{free_port()}"
    sent = hook(env, "send", "--source", "s", "--detail-type", "d", "--relay", url)
    assert sent.code == 3
    assert sent.stderr.startswith(f"Error: cannot reach the relay at {url}")
    assert "\nHint: " in sent.stderr
    assert "Traceback" not in sent.stderr
    assert sent.stdout == ""


def test_send_to_an_ingest_only_relay_exits_2(relay: RunningRelay, env: dict[str, str]) -> None:
    """A relay with no bus: exit 2, pointing at its ingest endpoint instead."""
    sent = hook(env, "send", "--source", "s", "--detail-type", "d", "--relay", relay.url)
    assert sent.code == 2
    assert "has no EventBridge bus" in sent.stderr
    assert f"{relay.url}/v1/ingest/" in sent.stderr
