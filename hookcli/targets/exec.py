"""``--exec``: run a shell command for each event, with the event's JSON on its stdin.

The command runs as ``/bin/sh -c CMD`` in its own process group (``start_new_session``), so a
timeout ends the command and everything it started: SIGTERM to the group, SIGKILL after a short
grace. Output is captured bounded (the last 64 KB of stdout and of stderr).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time

from hookcli.errors import TargetError
from hookcli.events import Event
from hookcli.targets import Outcome, clip, first_line

#: Bytes of stdout and of stderr kept per run (the end, where the error usually is).
CAPTURE_LIMIT = 64 * 1024
#: Between SIGTERM and SIGKILL of a timed-out command's process group.
KILL_GRACE_SECONDS = 2.0
# After the command exits, how long to wait for the rest of its output: a background child it
# left behind may hold the pipes open indefinitely.
_DRAIN_SECONDS = 0.5
# POSIX shell exit statuses for a command that cannot run at all (XCU 2.8.2); a retry cannot help.
_NOT_RUNNABLE = {126: "command is not executable", 127: "command not found"}


class ExecTarget:
    """Run ``command`` through the shell per event; exit status 0 means delivered."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.description = f"exec {command}"

    async def start(self) -> None:
        """Nothing to open: each event gets a fresh process."""

    async def deliver(self, event: Event, attempt: int, timeout: float) -> Outcome:
        """Run the command once with the event on stdin and ``HOOK_*`` in its environment."""
        loop = asyncio.get_running_loop()
        env = {
            **os.environ,
            "HOOK_EVENT_ID": event.id,
            "HOOK_SOURCE": event.source,
            "HOOK_DETAIL_TYPE": event.detail_type,
            "HOOK_ATTEMPT": str(attempt),
        }
        run = _Run(loop)
        started = time.perf_counter()
        try:
            transport, _ = await loop.subprocess_exec(
                lambda: run,
                "/bin/sh",
                "-c",
                self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise TargetError(f"cannot start /bin/sh to run --exec: {exc}") from exc
        pid = transport.get_pid()
        try:
            stdin = transport.get_pipe_transport(0)
            assert isinstance(stdin, asyncio.WriteTransport)
            stdin.write(event.to_json().encode() + b"\n")
            stdin.close()  # after the buffered bytes are written: the command sees EOF
            done, _ = await asyncio.wait({run.exited}, timeout=timeout)
            timed_out = not done
            if timed_out:
                await _end_group(pid, run)
            await asyncio.wait({run.drained}, timeout=_DRAIN_SECONDS)
        except BaseException:  # cancelled mid-run (listener stopping): leave nothing behind
            _signal_group(pid, signal.SIGKILL)
            raise
        finally:
            transport.close()
        latency_ms = (time.perf_counter() - started) * 1000
        return self._outcome(run, transport.get_returncode(), timed_out, timeout, latency_ms)

    async def probe(self) -> str | None:
        """Nothing to check before an event arrives."""
        return None

    async def close(self) -> None:
        """Nothing is kept open between events."""

    def _outcome(
        self, run: _Run, code: int | None, timed_out: bool, timeout: float, latency_ms: float
    ) -> Outcome:
        action = self.description
        stdout = run.stdout.decode("utf-8", "replace")
        stderr = run.stderr.decode("utf-8", "replace")
        if timed_out:
            error = f"timed out after {timeout:g} s; killed the command's process group"
            return Outcome(
                False, True, latency_ms, None, error, clip(stderr, tail=True) or None, action
            )
        if code == 0:
            return Outcome(
                True, False, latency_ms, 0, None, clip(stdout, tail=True) or None, action
            )
        error = first_line(stderr, last=True) or first_line(stdout, last=True) or _describe(code)
        detail = clip(stderr or stdout, tail=True) or None
        return Outcome(False, code not in _NOT_RUNNABLE, latency_ms, code, error, detail, action)


class _Run(asyncio.SubprocessProtocol):
    """Collects one run's output (bounded) and signals exit and end of output."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.exited: asyncio.Future[None] = loop.create_future()
        self.drained: asyncio.Future[None] = loop.create_future()
        self._open_outputs = 2

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        buffer = self.stdout if fd == 1 else self.stderr
        buffer += data.encode() if isinstance(data, str) else data
        if len(buffer) > CAPTURE_LIMIT:
            del buffer[:-CAPTURE_LIMIT]

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd in (1, 2):
            self._open_outputs -= 1
            if self._open_outputs == 0 and not self.drained.done():
                self.drained.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


async def _end_group(pid: int | None, run: _Run) -> None:
    """SIGTERM the process group; SIGKILL whatever is left after the grace period."""
    _signal_group(pid, signal.SIGTERM)
    # Output ends when every process holding the pipes is gone, children included.
    await asyncio.wait({run.exited, run.drained}, timeout=KILL_GRACE_SECONDS)
    _signal_group(pid, signal.SIGKILL)
    await asyncio.wait({run.exited}, timeout=KILL_GRACE_SECONDS)


def _signal_group(pid: int | None, signum: signal.Signals) -> None:
    if pid is None:
        return
    try:
        os.killpg(pid, signum)  # the shell leads its own group: start_new_session=True
    except (ProcessLookupError, PermissionError):
        pass


def _describe(code: int | None) -> str:
    if code is None:
        return "the command did not report an exit status"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return _NOT_RUNNABLE.get(code, f"exited with code {code}")
