"""``--exec``: run a shell command for each event, with the event's JSON on its stdin.

The command runs as ``/bin/sh -c CMD`` in its own process group (``start_new_session``), with
a mark in its environment (``HOOK_EXEC_MARK=<random>``) that every process it starts inherits.
A timeout ends all of them: SIGTERM to the group and to every marked process, then, after a
short grace, SIGKILL to whatever is left. The group alone misses a child that called ``setsid``
or double-forked (it is in another session and group, and its parent is now init), so on Linux
the marked processes are found in ``/proc/<pid>/environ``. The mark was chosen over
``PR_SET_CHILD_SUBREAPER``, which would make the listener (and its handler workers, and every
other command it runs) the parent of every orphan, to reap forever, and tells no run's
orphans from another's; a cgroup would be exact but needs systemd delegation most laptops lack.
What the mark cannot catch: a process that execs with a cleared environment (``env -i``), a
deliberate escape. Without ``/proc`` (macOS), the process group is all there is.

The kill is race-free against forks and exits: marked processes are stopped (SIGSTOP) pass by
pass until a pass finds no new one (a stopped process cannot fork), then killed; a process that
exits mid-scan is skipped, and one whose pid was reused by an unmarked process is let go.

Output is captured bounded: the last 64 KB of stdout and of stderr (the end, where an error
usually is) and the first 4 KB of both as they arrived (the lines shown under the event). The
pipes are always read, so a chatty command never blocks on a full pipe; what passes the bounds
is dropped.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

from hookcli.errors import TargetError
from hookcli.events import Event
from hookcli.targets import OUTPUT_LIMIT, Outcome, clip, first_line

#: Bytes of stdout and of stderr kept per run (the end, where the error usually is).
CAPTURE_LIMIT = 64 * 1024
#: Between SIGTERM and SIGKILL of a timed-out command's process group.
KILL_GRACE_SECONDS = 2.0
# After the command exits, how long to wait for the rest of its output: a background child it
# left behind may hold the pipes open indefinitely.
_DRAIN_SECONDS = 0.5
#: The environment variable marking every process one run started (see the module docstring).
MARK_VARIABLE = "HOOK_EXEC_MARK"
# Stop-and-rescan passes before the kill: each pass stops what the last one missed; a fork bomb
# that outruns this many passes still has every stopped process killed.
_FREEZE_PASSES = 50
_PROC = Path("/proc")
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
        mark = secrets.token_hex(16)  # every process this run starts inherits it
        env = {
            **os.environ,
            "HOOK_EVENT_ID": event.id,
            "HOOK_SOURCE": event.source,
            "HOOK_DETAIL_TYPE": event.detail_type,
            "HOOK_ATTEMPT": str(attempt),
            MARK_VARIABLE: mark,
        }
        run = _Run(loop)
        started = time.perf_counter()
        spawning = asyncio.ensure_future(
            loop.subprocess_exec(
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
        )
        cancelled = False
        try:
            # Shielded: cancelled mid-start, asyncio would only kill the shell and then wait
            # for its pipes, which a child of the shell holds open for as long as it runs.
            transport, _ = await asyncio.shield(spawning)
        except asyncio.CancelledError:
            cancelled = True
            transport, _ = await spawning  # started now: ended below like any cancelled run
        except OSError as exc:
            raise TargetError(f"cannot start /bin/sh to run --exec: {exc}") from exc
        pid = transport.get_pid()
        try:
            if cancelled:
                raise asyncio.CancelledError
            stdin = transport.get_pipe_transport(0)
            assert isinstance(stdin, asyncio.WriteTransport)
            stdin.write(event.payload().encode() + b"\n")
            stdin.close()  # after the buffered bytes are written: the command sees EOF
            done, _ = await asyncio.wait({run.exited}, timeout=timeout)
            timed_out = not done
            if timed_out:
                await _end_all(pid, mark, run)
            await asyncio.wait({run.drained}, timeout=_DRAIN_SECONDS)
        except BaseException:  # cancelled mid-run (listener stopping): leave nothing behind
            _signal_group(pid, signal.SIGKILL)
            _kill_marked(mark)
            await _reaped(run)
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
        output = run.head_text() or None
        if timed_out:
            error = (
                f"timed out after {timeout:g} s; killed the command and every process it started"
            )
            detail = clip(stderr, tail=True) or None
            return Outcome(False, True, latency_ms, None, error, detail, action, output)
        if code == 0:
            # The end of a long output too (-v shows it after the start).
            detail = clip(stdout, tail=True) if run.cut else None
            return Outcome(True, False, latency_ms, 0, None, detail, action, output)
        error = first_line(stderr, last=True) or first_line(stdout, last=True) or _describe(code)
        detail = clip(stderr or stdout, tail=True) or None
        retryable = code not in _NOT_RUNNABLE
        return Outcome(False, retryable, latency_ms, code, error, detail, action, output)


class _Run(asyncio.SubprocessProtocol):
    """Collects one run's output (bounded) and signals exit and end of output."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.stdout = bytearray()
        self.stderr = bytearray()
        #: stdout and stderr interleaved as they arrived, up to OUTPUT_LIMIT bytes (and one
        #: more, which tells a cut-off output from one that fits exactly).
        self.head = bytearray()
        self.exited: asyncio.Future[None] = loop.create_future()
        self.drained: asyncio.Future[None] = loop.create_future()
        self._open_outputs = 2

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        chunk = data.encode() if isinstance(data, str) else data
        if len(self.head) <= OUTPUT_LIMIT:
            self.head += chunk[: OUTPUT_LIMIT + 1 - len(self.head)]
        buffer = self.stdout if fd == 1 else self.stderr
        buffer += chunk
        if len(buffer) > CAPTURE_LIMIT:
            del buffer[:-CAPTURE_LIMIT]

    @property
    def cut(self) -> bool:
        """More was printed than ``head`` keeps."""
        return len(self.head) > OUTPUT_LIMIT

    def head_text(self) -> str:
        """The start of the output, ``…`` where it was cut."""
        text = self.head[:OUTPUT_LIMIT].decode("utf-8", "replace")
        return text + "\u2026" if self.cut else text

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd in (1, 2):
            self._open_outputs -= 1
            if self._open_outputs == 0 and not self.drained.done():
                self.drained.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


async def _reaped(run: _Run) -> None:
    """Wait (bounded, even while being cancelled) until asyncio's child watcher has reaped the
    killed shell.

    ``transport.close()`` on a process not yet reported exited calls ``Popen.poll()``, a
    ``waitpid``: if the shell is already dead, that reaps it behind the watcher's back, and the
    watcher then logs "Unknown child process pid ..., will report returncode 255" (what Ctrl-C
    during a slow --exec used to print).
    """
    try:
        await asyncio.shield(asyncio.wait({run.exited}, timeout=KILL_GRACE_SECONDS))
    except asyncio.CancelledError:
        pass  # cancelled again: close anyway


async def _end_all(pid: int | None, mark: str, run: _Run) -> None:
    """SIGTERM the group and every marked process; SIGKILL whatever is left after the grace."""
    _signal_group(pid, signal.SIGTERM)
    for found in _marked(mark):
        _signal(found, signal.SIGTERM)
    # Output ends when every process holding the pipes is gone, children included; one that
    # left the pipes (setsid, redirected) is caught by its mark below.
    await asyncio.wait({run.exited, run.drained}, timeout=KILL_GRACE_SECONDS)
    _signal_group(pid, signal.SIGKILL)
    _kill_marked(mark)
    await asyncio.wait({run.exited}, timeout=KILL_GRACE_SECONDS)


def _kill_marked(mark: str) -> None:
    """SIGKILL every process carrying ``mark``: stop them all first, so none forks meanwhile."""
    stopped: set[int] = set()
    for _ in range(_FREEZE_PASSES):
        new = [pid for pid in _marked(mark) if pid not in stopped]
        if not new:
            break
        for pid in new:
            if _signal(pid, signal.SIGSTOP):
                stopped.add(pid)
    for pid in stopped:
        # Still ours? Between the scan and SIGSTOP the process may have exited and its pid gone
        # to an unrelated process: let that one go on.
        if _carries(pid, mark):
            _signal(pid, signal.SIGKILL)
        else:
            _signal(pid, signal.SIGCONT)


def _marked(mark: str) -> list[int]:
    """Pids of this user's processes whose environment carries ``mark`` (empty without /proc)."""
    try:
        entries = list(os.scandir(_PROC))
    except OSError:
        return []
    me, uid = os.getpid(), os.getuid()
    found = []
    for entry in entries:
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
        except OSError:  # exited meanwhile
            continue
        if _carries(int(entry.name), mark):
            found.append(int(entry.name))
    return found


def _carries(pid: int, mark: str) -> bool:
    """Does process ``pid`` have ``HOOK_EXEC_MARK=mark`` in its environment?"""
    try:
        environ = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:  # exited, or not ours to read
        return False
    return f"\0{MARK_VARIABLE}={mark}\0".encode() in b"\0" + environ + b"\0"


def _signal(pid: int, signum: signal.Signals) -> bool:
    """Send ``signum`` to ``pid``; False if it is gone or not ours."""
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


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
