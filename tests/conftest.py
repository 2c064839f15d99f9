"""Shared test helpers: one timeout unit, condition waits, a relay in a background loop, a recording
HTTP target. Real peers on loopback only; nothing of hook's own is mocked."""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from aiohttp import web

if TYPE_CHECKING:
    from hookcli.relay.service import RelaySettings, RunningRelay

T = TypeVar("T")

# Every relay started without a token (in this process or in a `hook` subprocess, which
# inherits the environment even where HOOK_* variables are stripped) uses the local token in
# $XDG_STATE_HOME/hook/token: point that at a scratch directory, never the real home's.
_STATE_HOME = tempfile.mkdtemp(prefix="hook-test-state-")
os.environ["XDG_STATE_HOME"] = _STATE_HOME
atexit.register(shutil.rmtree, _STATE_HOME, True)


def auth_headers() -> dict[str, str]:
    """The bearer header a raw client needs for a relay running on the local token."""
    from hookcli.config import ensure_local_token

    return {"Authorization": f"Bearer {ensure_local_token()}"}


#: One timeout unit, scaled for slow machines with HOOK_TEST_TIMEOUT_SCALE.
UNIT = 5.0 * float(os.environ.get("HOOK_TEST_TIMEOUT_SCALE", "1"))


def wait_until(
    condition: Callable[[], bool], timeout: float = UNIT, what: str = "condition"
) -> None:
    """Poll ``condition`` until it holds, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(0.01)


async def async_wait_until(
    condition: Callable[[], bool], timeout: float = UNIT, what: str = "condition"
) -> None:
    """The asyncio form of ``wait_until``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        await asyncio.sleep(0.005)


class LoopThread:
    """An asyncio loop in a daemon thread, for peers that must outlive one ``asyncio.run``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = UNIT * 4) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(UNIT)
        self.loop.close()


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.stop()


def relay_settings(data_dir: Path, **overrides: Any) -> RelaySettings:
    """An ingest-only relay on a free loopback port (fast: no moto) unless overridden."""
    from hookcli.relay.service import RelaySettings

    values: dict[str, Any] = {"port": 0, "data_dir": data_dir, "source": False}
    values.update(overrides)
    return RelaySettings(**values)


@pytest.fixture
def relay(tmp_path: Path, loop_thread: LoopThread) -> Iterator[RunningRelay]:
    """An ingest-only relay running in a background loop."""
    from hookcli.relay.service import start_relay

    running = loop_thread.run(start_relay(relay_settings(tmp_path / "relay")))
    yield running
    loop_thread.run(running.stop())


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class RecordingTarget:
    """A local HTTP app that records every request; ``statuses`` scripts its answers in order."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    default_status: int = 200

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(
            Recorded(
                request.method,
                request.path,
                request.query_string,
                [(k.decode(), v.decode()) for k, v in request.raw_headers],
                body,
            )
        )
        status = self.statuses.pop(0) if self.statuses else self.default_status
        return web.Response(status=status, text="ok" if status < 400 else "nope: rejected\nmore")


async def start_target(target: RecordingTarget, port: int = 0) -> web.AppRunner:
    """Serve ``target`` on 127.0.0.1 and set its URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", target.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    target.url = f"http://127.0.0.1:{bound}"
    return runner


@pytest.fixture
def http_target(loop_thread: LoopThread) -> Iterator[RecordingTarget]:
    """A recording HTTP target in the background loop."""
    target = RecordingTarget()
    runner = loop_thread.run(start_target(target))
    yield target
    loop_thread.run(runner.cleanup())


def run(coro: Awaitable[T]) -> T:
    """Run a coroutine in a fresh loop (tests are sync; no pytest-asyncio)."""

    async def main() -> T:
        return await coro

    return asyncio.run(main())
