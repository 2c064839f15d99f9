"""Deliver one event to a target with retries: the one path for live, replayed and retried events.

Transient failures (``Outcome.retryable``) are retried with exponential backoff and jitter;
every attempt is reported through ``on_attempt`` so the terminal shows retries as they happen.
A target that raises is turned into a failed outcome here: a failing target never stops the
listener.
"""

from __future__ import annotations

import asyncio
import random
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from hookcli.errors import TargetError
from hookcli.events import Event
from hookcli.targets import Outcome, Target, clip, first_line
from hookcli.transform import RuleTarget, TransformError

# 2**62 times any sane base delay is already far past max_delay; bounding the exponent keeps the
# float arithmetic from overflowing on a huge attempt number.
_MAX_EXPONENT = 62


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry a delivery."""

    #: Attempts after the first (so at most ``retries + 1`` in all).
    retries: int = 3
    #: Seconds allowed for each attempt.
    timeout: float = 10.0
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        "Full jitter" from the AWS Architecture Blog's *Exponential Backoff And Jitter*:
        uniform over [0, min(max_delay, base_delay * 2**(attempt-1))], which spreads the retries
        of many events hitting one recovering server. Unlike pure full jitter, the wait is never
        below ``base_delay / 2`` (nor above the cap): an immediate retry against a server that
        just refused a connection is wasted.
        """
        if attempt < 1:
            return 0.0
        cap = min(self.max_delay, self.base_delay * float(2 ** min(attempt - 1, _MAX_EXPONENT)))
        floor = min(self.base_delay / 2, cap)
        return max(floor, rand() * cap)


@dataclass(frozen=True, slots=True)
class Attempt:
    """Reported after every attempt: what happened and whether another attempt follows."""

    event: Event
    attempt: int
    outcome: Outcome
    will_retry: bool
    #: Seconds until the next attempt (0 when there is none).
    retry_in: float


async def deliver(
    target: Target,
    event: Event,
    policy: RetryPolicy,
    on_attempt: Callable[[Attempt], None] | None = None,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rule_target: RuleTarget | None = None,
) -> tuple[Outcome, int]:
    """Attempt delivery until delivered, not retryable, or out of retries.

    Returns the final outcome and the number of attempts made. TargetError (a target that
    cannot work at all) propagates; any other exception from the target is a failed,
    non-retryable outcome carrying the exception text. With ``rule_target``, the target gets
    that rule target's input (InputPath, InputTransformer, Input) instead of the event; an
    event the transformation cannot give an input for fails without an attempt.
    """
    if rule_target is not None:
        try:
            event = with_input(event, rule_target)
        except TransformError as exc:
            outcome = Outcome(False, False, 0.0, None, str(exc), None, target.description)
            if on_attempt is not None:
                on_attempt(Attempt(event, 1, outcome, False, 0.0))
            return outcome, 1
    attempt = 0
    while True:
        attempt += 1
        started = time.perf_counter()
        try:  # inline, not a coroutine of its own: once per event on the listener's hot path
            outcome = await target.deliver(event, attempt, policy.timeout)
        except TargetError:
            raise
        except Exception as exc:  # a bug in a target is this event's failure, not the listener's
            outcome = _crashed(target, started, exc)
        will_retry = not outcome.delivered and outcome.retryable and attempt <= policy.retries
        retry_in = policy.delay(attempt) if will_retry else 0.0
        if on_attempt is not None:
            on_attempt(Attempt(event, attempt, outcome, will_retry, retry_in))
        if not will_retry:
            return outcome, attempt
        await sleep(retry_in)


def _crashed(target: Target, started: float, exc: Exception) -> Outcome:
    """The failed outcome of an attempt whose target raised ``exc`` (with its traceback)."""
    latency_ms = (time.perf_counter() - started) * 1000
    error = first_line(f"{type(exc).__name__}: {exc}") or type(exc).__name__
    detail = clip(traceback.format_exc(), tail=True)
    return Outcome(False, False, latency_ms, None, error, detail, target.description)


def with_input(event: Event, rule_target: RuleTarget) -> Event:
    """``event`` carrying what the rule's target gets; raises TransformError if it gets nothing.

    A webhook (``event.request`` set) is left alone: it is replayed byte for byte, and
    InputPath/InputTransformer are settings of an EventBridge rule's target, which a webhook
    never passed through.
    """
    if event.request is not None or rule_target.input.is_event:
        return event
    return replace(event, input=rule_target.render(event.to_dict()))
