"""``--handler app.py:handler``: call a Lambda-style ``handler(event, context)`` in a worker.

The worker (``hookcli.targets._worker``) is one long-lived subprocess of this interpreter, so the
handler's imports are paid once, not per event; events go to it one at a time. It is replaced
when it dies, when an invocation times out, and when a watched file changes (hot reload, with
watchfiles), always between events: an event that arrives during a reload waits for it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from hookcli.errors import TargetError
from hookcli.events import Event
from hookcli.targets import DETAIL_LIMIT, OUTPUT_LIMIT, Notice, Outcome, clip

#: How long a worker may take to import the handler before it counts as a failed import.
START_TIMEOUT_SECONDS = 30.0
#: A worker asked to exit (stdin closed) is killed after this long.
STOP_GRACE_SECONDS = 1.0
#: watchfiles: yield a batch of changes once no new one came for STEP ms (at most DEBOUNCE ms).
WATCH_DEBOUNCE_MS = 400
WATCH_STEP_MS = 50
_STDERR_LIMIT = 16 * 1024
# Largest reply frame: the worker clips what it sends to a few KiB (``_worker.VALUE_LIMIT`` and
# the like), so a bigger length prefix means the handler wrote into the protocol pipe itself.
_FRAME_LIMIT = 1024 * 1024


class HandlerTarget:
    """Deliver events to ``function`` in ``path`` through a worker process, reloading on edits."""

    def __init__(
        self,
        path: Path,
        function: str,
        *,
        watch: Sequence[Path] = (),
        reload: bool = True,
        on_notice: Notice | None = None,
    ) -> None:
        self.path = path.resolve()
        self.function = function
        self.folder = self.path.parent
        self.description = f"handler {_display(self.path)}:{function}"
        #: Worker restarts caused by file changes (for tests and status lines).
        self.reloads = 0
        self._watch_paths = tuple(watch)
        self._reload = reload
        self._notice: Notice = on_notice or _quiet
        self._lock = asyncio.Lock()
        self._worker: _Worker | None = None
        self._import_error: tuple[str, str] | None = None
        self._changed: set[Path] = set()
        self._stop_watching: asyncio.Event | None = None
        self._watcher: asyncio.Task[None] | None = None

    @property
    def reload_pending(self) -> bool:
        """A watched file changed and the worker has not been replaced yet."""
        return bool(self._changed)

    async def start(self) -> None:
        """Start watching (first, so no edit is missed) and spawn the worker."""
        if self._reload and self._watcher is None:
            self._stop_watching = asyncio.Event()
            self._watcher = asyncio.create_task(self._watch(self._stop_watching))
        async with self._lock:
            if self._worker is None and self._import_error is None:
                await self._spawn()

    async def deliver(self, event: Event, attempt: int, timeout: float) -> Outcome:
        """Invoke the handler once; a raised exception fails, a dead worker is retryable."""
        async with self._lock:
            if self._changed:
                await self._restart()
            if self._worker is None and self._import_error is None:
                await self._spawn()
            if self._import_error is not None:
                error, detail = self._import_error
                error = f"cannot load handler: {error}"
                return Outcome(
                    False, False, 0.0, error=error, detail=detail, action=self.description
                )
            assert self._worker is not None
            return await self._invoke(self._worker, event, attempt, timeout)

    async def probe(self) -> str | None:
        """The import error, if the handler did not load."""
        if self._import_error is None:
            return None
        return (
            f"{self.description} did not load: {self._import_error[0]}; "
            "events fail until the file is fixed (it reloads on save)"
        )

    async def close(self) -> None:
        """Stop watching and stop the worker."""
        if self._stop_watching is not None:
            self._stop_watching.set()
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            try:
                await asyncio.wait_for(watcher, timeout=2.0)
            except TimeoutError:
                pass  # wait_for cancelled it
        async with self._lock:
            worker, self._worker = self._worker, None
            if worker is not None:
                await worker.stop()

    async def _invoke(self, worker: _Worker, event: Event, attempt: int, timeout: float) -> Outcome:
        request = {
            "type": "invoke",
            "attempt": attempt,
            "timeout": timeout,
            "event": event.to_dict() if event.input is None else _decoded(event.input),
            "id": event.id,
        }
        action = self.description
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                reply = await worker.call(request)
        except TimeoutError:
            self._worker = None
            await worker.kill()
            error = (
                f"timed out after {timeout:g} s; killed the worker (a new one takes the next event)"
            )
            return _failed(started, True, error, worker.stderr_tail(), action)
        except asyncio.CancelledError:
            # The listener is stopping: the reply to this request must not be read as the next
            # event's, so this worker goes.
            self._worker = None
            worker.kill_now()
            await worker.reaped()
            raise
        latency_ms = (time.perf_counter() - started) * 1000
        if reply is None or reply.get("type") != "result":
            self._worker = None
            code = await worker.stop()
            error = (
                "the handler's worker sent a broken reply (does the handler write to file "
                "descriptors it did not open?); a new worker takes the next event"
                if reply is not None and reply.get("type") == "garbled"
                else f"the handler's worker died mid-event ({_exit_text(code)})"
            )
            return Outcome(
                False, True, latency_ms, code, error, worker.stderr_tail() or None, action
            )
        # What it printed and returned, each bounded on its own: shown under the event's line.
        output = clip(str(reply.get("output") or ""), OUTPUT_LIMIT) or None
        if reply.get("ok"):
            value = clip(str(reply.get("value", "null")), OUTPUT_LIMIT)
            return Outcome(True, False, latency_ms, None, None, None, action, output, value)
        trace = clip(str(reply.get("traceback") or ""), DETAIL_LIMIT, tail=True) or None
        error = str(reply.get("error") or "the handler raised an exception")
        return Outcome(False, False, latency_ms, None, error, trace, action, output)

    async def _spawn(self) -> None:
        """Start a worker and wait until it has imported the handler (or failed to)."""
        self._import_error = None
        worker = await _Worker.spawn(self.path, self.function)
        message = await worker.handshake(START_TIMEOUT_SECONDS)
        if message is not None and message.get("type") == "ready":
            self._worker = worker
            return
        if message is not None and message.get("type") == "import-error":
            await worker.stop()
            error = str(message.get("error") or "import failed")
            detail = str(message.get("traceback") or "")
        elif worker.hung:
            await worker.kill()
            error = f"importing took longer than {START_TIMEOUT_SECONDS:g} s"
            detail = worker.stderr_tail()
        else:
            code = await worker.stop()
            error = f"the worker exited while starting ({_exit_text(code)})"
            detail = worker.stderr_tail()
        hint = f"fix {_display(self.path)} and save: the handler reloads"
        self._import_error = (error, f"{detail.rstrip()}\n{hint}".lstrip())

    async def _restart(self) -> None:
        """Replace the worker after a change; between events (the caller holds the lock)."""
        changed = sorted(self._changed)
        self._changed.clear()
        worker, self._worker = self._worker, None
        if worker is not None:
            await worker.stop()
        await self._spawn()
        self.reloads += 1
        names = _display(changed[0], self.folder) + (
            f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
        )
        if self._import_error is None:
            self._notice(f"reloaded handler after change to {names}")
        else:
            self._notice(
                f"handler failed to load after change to {names}: {self._import_error[0]}",
                "warning",
            )

    async def _watch(self, stop: asyncio.Event) -> None:
        """Collect changed files; restart the worker as soon as no event is running."""
        from watchfiles import DefaultFilter, awatch

        default = DefaultFilter()
        explicit = self._watch_paths
        folder = self.folder

        def wanted(change: Any, name: str) -> bool:
            if not default(change, name):
                return False
            path = Path(name)
            if any(path == root or root in path.parents for root in explicit):
                return True
            return path.suffix == ".py" and (path.parent == folder or folder in path.parents)

        try:
            async for changes in awatch(
                folder,
                *explicit,
                watch_filter=wanted,
                debounce=WATCH_DEBOUNCE_MS,
                step=WATCH_STEP_MS,
                stop_event=stop,
            ):
                self._changed.update(Path(name) for _, name in changes)
                async with self._lock:  # waits for a running delivery to finish
                    if self._changed:
                        await self._restart()
        except Exception as exc:  # a broken watcher must not take the listener down with it
            self._notice(f"stopped watching for changes: {type(exc).__name__}: {exc}", "warning")


class _Worker:
    """One worker process: framed JSON over its stdin/stdout, its stderr kept (the tail)."""

    def __init__(self, transport: asyncio.SubprocessTransport, protocol: _WorkerProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        #: Still importing when the start timeout ran out.
        self.hung = False

    @classmethod
    async def spawn(cls, path: Path, function: str) -> _Worker:
        loop = asyncio.get_running_loop()
        protocol = _WorkerProtocol(loop)
        try:
            transport, _ = await loop.subprocess_exec(
                lambda: protocol,
                sys.executable,
                "-B",  # write no .pyc next to the user's code: a stale one could hide an edit
                "-m",
                "hookcli.targets._worker",
                str(path),
                function,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # Ctrl-C in the terminal is the listener's to handle
            )
        except OSError as exc:
            raise TargetError(f"cannot start a Python worker ({sys.executable}): {exc}") from exc
        return cls(transport, protocol)

    async def handshake(self, timeout: float) -> dict[str, Any] | None:
        """The worker's first message; None if it exited or did not answer in time."""
        try:
            async with asyncio.timeout(timeout):
                message = await self._protocol.messages.get()
        except TimeoutError:
            self.hung = True
            return None
        return message

    async def call(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """Send one invocation and wait for its reply; None if the worker died."""
        data = json.dumps(request, ensure_ascii=False, separators=(",", ":")).encode()
        stdin = self._transport.get_pipe_transport(0)
        assert isinstance(stdin, asyncio.WriteTransport)
        if stdin.is_closing():
            return None
        stdin.write(len(data).to_bytes(4, "big") + data)
        return await self._protocol.messages.get()

    def stderr_tail(self) -> str:
        return clip(self._protocol.stderr.decode("utf-8", "replace"), DETAIL_LIMIT, tail=True)

    async def stop(self) -> int | None:
        """Ask the worker to exit (close its stdin); kill it if it does not; its exit code."""
        stdin = self._transport.get_pipe_transport(0)
        if stdin is not None:
            stdin.close()
        done, _ = await asyncio.wait({self._protocol.exited}, timeout=STOP_GRACE_SECONDS)
        if not done:
            return await self.kill()
        await self._finish()
        return self._transport.get_returncode()

    async def kill(self) -> int | None:
        """SIGKILL the worker's process group (the handler's own children too)."""
        pid = self._transport.get_pid()
        if self._transport.get_returncode() is None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        await asyncio.wait({self._protocol.exited}, timeout=STOP_GRACE_SECONDS)
        await self._finish()
        return self._transport.get_returncode()

    def kill_now(self) -> None:
        """SIGKILL without waiting (for cancellation paths, which must not block); ``reaped``
        closes the transport once the process is gone."""
        if self._transport.get_returncode() is None:
            try:
                os.killpg(self._transport.get_pid(), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    async def reaped(self) -> None:
        """Close the transport once asyncio's child watcher reaped the process (bounded, even
        while being cancelled): closing earlier polls it (a ``waitpid``) and, if that reaps it
        first, the watcher logs "Unknown child process pid"."""
        try:
            await asyncio.shield(asyncio.wait({self._protocol.exited}, timeout=STOP_GRACE_SECONDS))
        except asyncio.CancelledError:
            pass
        finally:
            self._transport.close()

    async def _finish(self) -> None:
        # The stderr tail explains a crash: let the pipes drain before closing them.
        await asyncio.wait({self._protocol.drained}, timeout=0.5)
        self._transport.close()


class _WorkerProtocol(asyncio.SubprocessProtocol):
    """Parses frames from the worker's stdout into ``messages``; None there means EOF."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.messages: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.stderr = bytearray()
        self.exited: asyncio.Future[None] = loop.create_future()
        self.drained: asyncio.Future[None] = loop.create_future()
        self._buffer = bytearray()
        self._garbled = False
        self._open_outputs = 2

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        chunk = data.encode() if isinstance(data, str) else data
        if fd == 2:
            self.stderr += chunk
            if len(self.stderr) > _STDERR_LIMIT:
                del self.stderr[:-_STDERR_LIMIT]
            return
        if self._garbled:
            return  # nothing more from this worker can be trusted; it is stopped
        buffer = self._buffer
        buffer += chunk
        while len(buffer) >= 4:
            size = int.from_bytes(buffer[:4], "big")
            if size > _FRAME_LIMIT:
                # Not waiting for up to 4 GiB to arrive: the stream is broken, say so now.
                self._garbled = True
                buffer.clear()
                self.messages.put_nowait({"type": "garbled"})
                return
            if len(buffer) < 4 + size:
                break
            try:
                message = json.loads(buffer[4 : 4 + size])
            except ValueError:
                message = {"type": "garbled"}
            del buffer[: 4 + size]
            self.messages.put_nowait(message if isinstance(message, dict) else None)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd in (1, 2):
            if fd == 1:
                self.messages.put_nowait(None)
            self._open_outputs -= 1
            if self._open_outputs == 0 and not self.drained.done():
                self.drained.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


def _failed(started: float, retryable: bool, error: str, detail: str, action: str) -> Outcome:
    latency_ms = (time.perf_counter() - started) * 1000
    return Outcome(False, retryable, latency_ms, None, error, detail or None, action)


def _exit_text(code: int | None) -> str:
    if code is None:
        return "no exit status"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _display(path: Path, base: Path | None = None) -> str:
    """``path`` relative to ``base`` (default: the working directory) when it is inside it."""
    try:
        return str(path.relative_to(base or Path.cwd()))
    except ValueError:
        return str(path)


def _quiet(text: str, level: Literal["info", "warning"] = "info") -> None:
    """The notice callback when nobody listens."""


def _decoded(text: str) -> Any:
    """A transformed input as Lambda gets it: the JSON value, or the text if it is not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return text
