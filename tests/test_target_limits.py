"""A target cannot hurt the listener: huge answers are not buffered, a timed-out --exec leaves
no process behind, however it detached (setsid, double fork).

Real ``hook listen`` subprocesses against a real relay on loopback; memory is read from
``/proc/<pid>/status``, surviving processes from ``/proc``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from test_listen import Hook, hook_env, listen
from test_targets import deliver_once

from hookcli.events import Event, EventId
from hookcli.relay.service import RunningRelay, start_relay
from hookcli.targets import DETAIL_LIMIT, OUTPUT_LIMIT, make_target

from conftest import UNIT, LoopThread, relay_settings, run, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc"),
]

TOKEN = "target-limits-token-5e2a90c1"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MIB = 1024 * 1024
GIB_IN_MIB = 1024


@pytest.fixture
def token_relay(tmp_path: Path, loop_thread: LoopThread) -> Iterator[RunningRelay]:
    running = loop_thread.run(start_relay(relay_settings(tmp_path / "relay", tokens={TOKEN: ""})))
    yield running
    loop_thread.run(running.stop())


@pytest.fixture
def hook(tmp_path: Path) -> Iterator[Callable[..., Hook]]:
    started: list[Hook] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Hook:
        process = Hook(list(args), env or hook_env(tmp_path), tmp_path)
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()


def status_kib(pid: int, field: str) -> int:
    """A ``VmRSS``/``VmHWM`` figure of ``pid`` in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def ingest(relay: RunningRelay, body: dict[str, Any]) -> str:
    request = urllib.request.Request(
        f"{relay.url}/v1/ingest/big", data=json.dumps(body).encode(), method="POST"
    )
    with _HTTP.open(request, timeout=UNIT) as response:
        event_id: str = json.load(response)["id"]
        return event_id


class GigabyteTarget:
    """Answers every request with ``status`` and a 1 GiB body, written fast in 1 MiB chunks."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.written: list[int] = []  # bytes written per answered request
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(status=self.status)
        response.content_length = GIB_IN_MIB * MIB
        await response.prepare(request)
        chunk = b"x" * MIB
        written = 0
        try:
            for _ in range(GIB_IN_MIB):  # bounded: at most 1 GiB, then the answer is complete
                await response.write(chunk)
                written += len(chunk)
        except (ConnectionError, RuntimeError):
            pass  # the listener hung up: what we want
        self.written.append(written)
        return response


async def serve(target: GigabyteTarget) -> web.AppRunner:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", target.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    target.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    return runner


@pytest.mark.parametrize(("status", "outcome"), [(200, "delivered"), (502, "failed")])
def test_gigabyte_answer_does_not_grow_the_listener(
    status: int,
    outcome: str,
    token_relay: RunningRelay,
    loop_thread: LoopThread,
    hook: Callable[..., Hook],
) -> None:
    """The listener reads the answer's start, hangs up, records the status; RSS stays flat."""
    target = GigabyteTarget(status)
    runner = loop_thread.run(serve(target))
    try:
        listener = hook(*listen(token_relay.url, "big", "--target", target.url, "--json"),
                        "--retries", "0", "--token", TOKEN)  # fmt: skip
        listener.wait_ready()
        baseline = status_kib(listener.proc.pid, "VmHWM")
        event_id = ingest(token_relay, {"n": 1})
        [result] = listener.wait_results(1, UNIT * 2)
        peak = status_kib(listener.proc.pid, "VmHWM")
        wait_until(lambda: len(target.written) == 1, UNIT, "the target's handler to end")
    finally:
        loop_thread.run(runner.cleanup())
    assert (result["id"], result["status"], result["code"]) == (event_id, outcome, status)
    grown_mib = (peak - baseline) / 1024
    assert grown_mib < 200, f"the listener's peak RSS grew by {grown_mib:.0f} MiB"
    assert target.written[0] < GIB_IN_MIB * MIB  # it stopped reading, it did not drain

    def recorded() -> list[dict[str, Any]]:
        request = urllib.request.Request(f"{token_relay.url}/v1/events/{event_id}", headers=AUTH)
        with _HTTP.open(request, timeout=UNIT) as response:
            deliveries: list[dict[str, Any]] = json.load(response)["deliveries"]
            return deliveries

    wait_until(lambda: bool(recorded()), UNIT, "the result in the relay's history")
    [delivery] = recorded()
    assert (delivery["status"], delivery["code"]) == (outcome, status)


# ------------------------------------------------------------------------------------- --exec

DAEMON = """\
import os, sys, time
if os.fork():
    os._exit(0)
os.setsid()
if os.fork():
    os._exit(0)
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
with open(os.environ["PIDS"], "a") as pids:
    pids.write(f"{os.getpid()}\\n")
time.sleep(300)
"""

HANG = """\
setsid sh -c 'echo $$ >> "$PIDS"; exec sleep 300' &
"$PYTHON" "$DAEMON"
echo $$ >> "$PIDS"
sleep 302
"""


def tagged(tag: str) -> list[int]:
    """Pids of live processes whose environment carries ``EXEC_KILL_TEST=tag``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if f"EXEC_KILL_TEST={tag}".encode() in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_exec_timeout_ends_detached_children(tmp_path: Path, token_relay: RunningRelay,
                                             hook: Callable[..., Hook]) -> None:  # fmt: skip
    """After a timeout no process the command started survives, setsid or double-forked."""
    tag = uuid.uuid4().hex
    pids = tmp_path / "pids"
    pids.touch()
    (tmp_path / "daemon.py").write_text(DAEMON)
    (tmp_path / "hang.sh").write_text(HANG)
    env = hook_env(tmp_path) | {
        "EXEC_KILL_TEST": tag,
        "PIDS": str(pids),
        "PYTHON": sys.executable,
        "DAEMON": str(tmp_path / "daemon.py"),
    }
    try:
        listener = hook(*listen(token_relay.url, "exec", "--exec", f"sh {tmp_path / 'hang.sh'}"),
                        "--json", "--retries", "0", "--timeout", "5", "--token", TOKEN,
                        env=env)  # fmt: skip
        listener.wait_ready()
        ingest(token_relay, {"n": 1})
        [result] = listener.wait_results(1, UNIT * 3)
        assert result["status"] == "failed" and "timed out" in result["error"]
        started = [int(line) for line in pids.read_text().split()]
        assert len(started) == 3, "the command did not start all of its processes in time"
        wait_until(lambda: not any(alive(pid) for pid in started), UNIT, "every child to end")
        # The listener carries the tag too (it is where the command's environment comes from).
        assert [p for p in tagged(tag) if alive(p) and p != listener.proc.pid] == []
        assert listener.proc.poll() is None  # the listener itself lives on
    finally:
        for pid in tagged(tag):  # never leave sleeps behind, even when the test fails
            if pid != os.getpid():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass


def test_exec_output_flood_is_captured_bounded(tmp_path: Path) -> None:
    """A command printing 64 MiB is never blocked on its pipe; only its start and tail are kept."""
    command = "head -c 67108864 /dev/zero | tr '\\0' x; echo; echo the-end"
    event = Event(id=EventId("e-1"), source="s", detail_type="t", detail={})
    outcome = run(deliver_once(make_target(command=command), event, timeout=UNIT * 2))
    assert (outcome.delivered, outcome.code) == (True, 0), outcome.error
    assert outcome.detail is not None and len(outcome.detail) <= DETAIL_LIMIT
    assert outcome.detail.endswith("x\nthe-end\n")
    assert outcome.output == "x" * OUTPUT_LIMIT + "\u2026"


GARBLING_HANDLER = """\
import fcntl, os

def handler(event, context):
    # Write a 2 GiB frame length into every writable pipe this worker holds: the reply pipe
    # among them (the others carry stderr, where it is harmless).
    for fd in range(3, 64):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        except OSError:
            continue
        if link.startswith("pipe:") and flags & os.O_ACCMODE == os.O_WRONLY:
            os.write(fd, b"\\x7f\\xff\\xff\\xff")
    return "ok"
"""


def test_handler_writing_into_the_reply_pipe_is_not_buffered(tmp_path: Path) -> None:
    """A frame claiming 2 GiB fails the event at once; the listener does not wait to buffer it."""
    (tmp_path / "app.py").write_text(GARBLING_HANDLER)
    target = make_target(handler=f"{tmp_path / 'app.py'}:handler")
    event = Event(id=EventId("e-1"), source="s", detail_type="t", detail={})
    outcome = run(deliver_once(target, event, timeout=UNIT * 2))
    assert not outcome.delivered
    assert outcome.error is not None and "sent a broken reply" in outcome.error
