"""hook's pytest plugin: an embedded relay on an emulated EventBridge bus, and waits for events.

Registered as the ``pytest11`` entry point ``hook``, so pytest loads it in every run once
hookcli is installed. Importing it therefore starts nothing and imports nothing heavy: the
relay, moto, boto3 and aiohttp load when a test first asks for ``hook_relay``. Turn it off
with ``pytest -p no:hook``. A test of a producer reads::

    def test_placing_an_order_emits_order_placed(hook_relay, hook_events, monkeypatch):
        for key, value in hook_relay.env.items():
            monkeypatch.setenv(key, value)   # boto3 in the code under test now uses the bus
        place_order("o-1", total=42)
        [event] = hook_events.expect({"detail-type": ["OrderPlaced"]})
        assert event["detail"]["total"] == 42

``hook_relay`` (one per session) runs the same relay as ``hook relay serve --local``, in a
background event-loop thread: the producer's PutEvents go through the emulated bus, rule and
queue to the relay, as in AWS. ``hook_events.expect`` waits like ``hook expect``. moto keeps
its state per process, so do not combine this with moto's ``mock_aws`` in the same tests.
"""

from __future__ import annotations

import threading
from collections.abc import Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    from hookcli.relay.service import RunningRelay

T = TypeVar("T")

#: How long the relay (moto's server, provisioning the bus's rule and queue) may take to start.
START_TIMEOUT = 120.0


class _LoopThread:
    """An asyncio loop in a daemon thread: the relay lives there for the whole session."""

    def __init__(self) -> None:
        import asyncio

        self.loop: asyncio.AbstractEventLoop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="hook-test-relay", daemon=True
        )
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()


@dataclass(frozen=True)
class HookRelay:
    """The session's relay and its emulated bus: what a producer under test needs to reach it."""

    #: The relay's URL and bearer token (for ``hook`` commands: ``--relay`` / ``--token``).
    url: str
    token: str = field(repr=False)
    #: The emulated AWS endpoint (EventBridge, SQS, STS), its region and the bus's name.
    endpoint_url: str
    region: str
    bus: str
    #: Static dummy credentials the emulator accepts; never real ones.
    access_key_id: str
    secret_access_key: str = field(repr=False)
    _running: RunningRelay = field(repr=False, compare=False)
    _loop: _LoopThread = field(repr=False, compare=False)

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that point boto3 (and ``hook``) at this relay and its bus.

        ``AWS_ENDPOINT_URL`` is boto3's own setting for every service's endpoint; the keys
        take precedence over any ``AWS_PROFILE`` in botocore's credential chain.
        """
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "HOOK_RELAY": self.url,
            "HOOK_TOKEN": self.token,
        }

    def head(self) -> int:
        """The sequence number of the newest event the relay has stored."""

        async def read() -> int:
            return self._running.relay.store.head()

        return self._loop.run(read(), 30.0)


class HookEvents:
    """Waits for the events a test's code put on the bus, counted from the test's start."""

    def __init__(self, relay: HookRelay, start: int) -> None:
        self.relay = relay
        #: Events with this sequence number or later count (those stored before the test don't).
        self.start = start

    def expect(
        self,
        pattern: Mapping[str, Any] | str | None = None,
        count: int = 1,
        timeout: float = 10.0,
    ) -> list[dict[str, Any]]:
        """The first ``count`` events matching the EventBridge ``pattern`` (None: any event).

        Events put before the call count, from the start of the test. Fails the test with
        what did arrive when fewer than ``count`` matched within ``timeout`` seconds.
        """
        __tracebackhide__ = True  # a failure points at the test's line, not at this method
        from hookcli.config import Connection
        from hookcli.expect import ExpectSettings, expect
        from hookcli.patterns import compile_pattern
        from hookcli.protocol import Start

        wanted = compile_pattern(pattern or {}, allow_empty=True).source
        settings = ExpectSettings(
            connection=Connection(relay=self.relay.url, token=self.relay.token, configured=True),
            pattern=wanted,
            count=count,
            timeout=timeout,
            start=Start("seq", seq=self.start),
        )
        expected = self.relay._loop.run(expect(settings, lambda update: None), timeout + 30.0)
        if not expected.complete:
            import json

            shown = f" matching {json.dumps(wanted)}" if wanted else ""
            pytest.fail(
                f"hook_events.expect: waited for {count} event(s){shown}\n{expected.summary()}"
            )
        return [event.to_dict() for event in expected.matched]


@pytest.fixture(scope="session")
def hook_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HookRelay]:
    """An embedded relay with an emulated EventBridge bus, started once per session."""
    import secrets

    from hookcli.relay.service import RelaySettings, start_relay
    from hookcli.sources.emulator import CREDENTIALS

    # A token of its own: the session's relay never touches the user's local token file.
    token = secrets.token_urlsafe(32)
    settings = RelaySettings(
        name="hook-test",
        port=0,
        data_dir=tmp_path_factory.mktemp("hook-relay"),
        tokens={token: ""},
    )
    thread = _LoopThread()
    try:
        running = thread.run(start_relay(settings), START_TIMEOUT)
    except BaseException:
        thread.stop()
        raise
    info = running.info
    try:
        yield HookRelay(
            url=running.url,
            token=token,
            endpoint_url=info.endpoint_url,
            region=info.region,
            bus=info.bus,
            access_key_id=CREDENTIALS[0],
            secret_access_key=CREDENTIALS[1],
            _running=running,
            _loop=thread,
        )
    finally:
        try:
            thread.run(running.stop(), 60.0)
        finally:
            thread.stop()


@pytest.fixture
def hook_events(hook_relay: HookRelay) -> HookEvents:
    """Waits for events on ``hook_relay``: only events stored after the test began count."""
    return HookEvents(hook_relay, start=hook_relay.head() + 1)
