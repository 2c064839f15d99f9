"""Retries and backoff (hookcli.delivery) against a real HTTP target that goes down and up."""

from __future__ import annotations

import pytest

from hookcli.delivery import Attempt, RetryPolicy, deliver
from hookcli.errors import TargetError
from hookcli.events import Event, EventId
from hookcli.targets import Outcome, Target, make_target

from conftest import UNIT, run
from fixtures.recorder import Recorder, Reply, free_port

EVENT = Event(
    id=EventId("3b1f8a52-delivery"),
    source="shop.orders",
    detail_type="Order Placed",
    detail={"order": 42},
)


class Sleeps:
    """A recording stand-in for asyncio.sleep (patching the clock is allowed)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


async def deliver_to(
    target: Target, policy: RetryPolicy, sleep: Sleeps
) -> tuple[Outcome, int, list[Attempt]]:
    attempts: list[Attempt] = []
    await target.start()
    try:
        outcome, count = await deliver(target, EVENT, policy, attempts.append, sleep=sleep)
    finally:
        await target.close()
    return outcome, count, attempts


def test_retries_until_the_target_comes_up() -> None:
    """Refused twice, then the app starts: delivered on attempt 3, every attempt reported."""
    port = free_port()
    app = Recorder(port=port)

    class StartAppOnSecondRetry(Sleeps):
        async def __call__(self, seconds: float) -> None:
            await super().__call__(seconds)
            if len(self.delays) == 2:
                await app.start()

    sleep = StartAppOnSecondRetry()

    async def scenario() -> tuple[Outcome, int, list[Attempt]]:
        try:
            target = make_target(url=f"127.0.0.1:{port}/hooks")
            return await deliver_to(target, RetryPolicy(retries=5, timeout=UNIT), sleep)
        finally:
            await app.stop()

    outcome, count, attempts = run(scenario())
    assert outcome.delivered and count == 3
    assert [(a.attempt, a.will_retry) for a in attempts] == [(1, True), (2, True), (3, False)]
    assert (
        attempts[0].outcome.error == f"connection refused: nothing is listening on 127.0.0.1:{port}"
    )
    assert [a.retry_in for a in attempts[:2]] == sleep.delays and attempts[2].retry_in == 0
    [received] = app.requests
    assert received.header("X-Hook-Attempt") == ["3"]


def test_retries_exhausted_ends_failed() -> None:
    """A target that keeps answering 503 gets 1 + retries attempts, then the failure stands."""
    sleep = Sleeps()

    async def scenario() -> tuple[Outcome, int, list[Attempt], int]:
        async with Recorder() as app:
            app.default = Reply(503, b"busy")
            result = await deliver_to(make_target(url=app.url), RetryPolicy(retries=2), sleep)
            return (*result, len(app.requests))

    outcome, count, attempts, received = run(scenario())
    assert (outcome.delivered, outcome.retryable, outcome.error) == (False, True, "busy")
    assert count == received == 3
    assert len(sleep.delays) == 2
    assert [a.will_retry for a in attempts] == [True, True, False]


def test_non_retryable_failure_stops_at_once() -> None:
    """A 400 is final: one attempt, no sleep."""
    sleep = Sleeps()

    async def scenario() -> tuple[Outcome, int, list[Attempt]]:
        async with Recorder() as app:
            app.default = Reply(400, b"bad order")
            return await deliver_to(make_target(url=app.url), RetryPolicy(retries=5), sleep)

    outcome, count, attempts = run(scenario())
    assert (outcome.delivered, outcome.error, count) == (False, "bad order", 1)
    assert sleep.delays == [] and [a.will_retry for a in attempts] == [False]


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [
        (0, 0.5, 0.0),
        (1, 0.0, 0.25),  # never below base_delay / 2
        (1, 1.0, 0.5),
        (2, 1.0, 1.0),
        (3, 0.5, 1.0),
        (4, 0.1, 0.4),
        (7, 1.0, 30.0),  # 0.5 * 2**6 = 32, capped at max_delay
        (10_000, 1.0, 30.0),  # no overflow for absurd attempt numbers
        (10_000, 0.0, 0.25),
    ],
)
def test_backoff_is_full_jitter_with_a_floor(attempt: int, rand: float, expected: float) -> None:
    """delay = max(base/2, rand * min(max_delay, base * 2**(attempt-1)))."""
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0)
    assert policy.delay(attempt, lambda: rand) == pytest.approx(expected)


def test_backoff_floor_never_exceeds_the_cap() -> None:
    """A max_delay below base_delay / 2 still caps every delay."""
    policy = RetryPolicy(base_delay=1.0, max_delay=0.2)
    assert policy.delay(1, lambda: 0.0) == pytest.approx(0.2)
    assert policy.delay(5, lambda: 1.0) == pytest.approx(0.2)


def test_deliver_sleeps_within_the_backoff_bounds() -> None:
    """The sleeps deliver() takes stay in [base/2, min(max, base * 2**(n-1))] for retry n."""
    policy = RetryPolicy(retries=6, base_delay=0.2, max_delay=1.0)
    sleep = Sleeps()

    async def scenario() -> int:
        async with Recorder() as app:
            app.default = Reply(500, b"boom")
            return (await deliver_to(make_target(url=app.url), policy, sleep))[1]

    assert run(scenario()) == 7
    for n, delay in enumerate(sleep.delays, start=1):
        assert 0.1 <= delay <= min(1.0, 0.2 * 2 ** (n - 1)), (n, delay)


class BrokenTarget:
    """A target with a bug: deliver() raises."""

    description = "broken"

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    async def start(self) -> None:
        pass

    async def deliver(self, event: Event, attempt: int, timeout: float) -> Outcome:
        raise self.exc

    async def probe(self) -> str | None:
        return None

    async def close(self) -> None:
        pass


def test_exception_in_target_becomes_a_failed_outcome() -> None:
    """A crashing target fails this event (no retry) instead of stopping the listener."""
    sleep = Sleeps()
    outcome, count, attempts = run(
        deliver_to(BrokenTarget(RuntimeError("boom")), RetryPolicy(retries=3), sleep)
    )
    assert (outcome.delivered, outcome.retryable, count) == (False, False, 1)
    assert (outcome.error, outcome.action) == ("RuntimeError: boom", "broken")
    assert outcome.detail is not None and "Traceback" in outcome.detail
    assert len(attempts) == 1 and sleep.delays == []


def test_target_error_propagates() -> None:
    """TargetError means the target cannot work at all: it is raised, not recorded."""
    with pytest.raises(TargetError):
        run(deliver_to(BrokenTarget(TargetError("no /bin/sh")), RetryPolicy(), Sleeps()))
