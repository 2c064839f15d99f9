"""``hook replay`` as a library: fetch stored events and deliver them again through the live path.

Each replay goes through ``delivery.deliver`` with the same targets and retries as ``hook listen``,
and its result is recorded in the relay's history (``replay: true``), so ``hook events`` shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hookcli.client import RelayApi
from hookcli.config import Connection
from hookcli.delivery import Attempt, RetryPolicy, deliver
from hookcli.errors import NotFoundError, UsageError
from hookcli.events import Event, RawRequest, parse_event
from hookcli.listen import TargetSpec
from hookcli.protocol import Result
from hookcli.transform import RuleTarget
from hookcli.updates import Delivered, Notice, Retry, Update

Emit = Callable[[Update], None]
FAILED_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class ReplaySettings:
    """Everything ``hook replay`` takes, parsed."""

    connection: Connection
    target: TargetSpec
    #: Record results under this listener name. None: under the listener whose delivery
    #: failed (for --failed), else under ``default_listener``.
    listener: str | None
    default_listener: str
    ids: tuple[str, ...] = ()
    failed: bool = False
    failed_listener: str | None = None
    since: str | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    #: What the target gets (--input-path, --input-transformer); None: the event.
    rule_target: RuleTarget | None = None


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    """How many replays were delivered and failed."""

    delivered: int
    failed: int


async def replay(
    settings: ReplaySettings,
    emit: Emit,
    on_total: Callable[[int], None] | None = None,
) -> ReplaySummary:
    """Deliver each chosen event once more (with retries); never stops at a failed one."""
    if not settings.ids and not settings.failed:
        raise UsageError("name at least one EVENT_ID, or use --failed")
    target = settings.target.build(on_notice=lambda text, level="info": emit(Notice(text, level)))
    delivered = failed = 0
    async with RelayApi.open(settings.connection) as api:
        records = [await api.event(event_id) for event_id in settings.ids]
        owners = {
            r["event"]["id"]: [settings.listener or settings.default_listener] for r in records
        }
        if settings.failed:
            # full=1: each row carries its raw webhook request, so one page is enough.
            rows = await api.events(
                status="failed",
                listener=settings.failed_listener,
                since=settings.since,
                limit=FAILED_LIMIT,
                full=1,
            )
            known = {r["event"]["id"] for r in records}
            for row in reversed(rows):  # oldest first
                if row["event"]["id"] not in known:
                    known.add(row["event"]["id"])
                    records.append(row)
                    owners[row["event"]["id"]] = (
                        [settings.listener] if settings.listener else _failed_listeners(row)
                    ) or [settings.default_listener]
            if not records:
                emit(Notice("No failed deliveries to replay."))
        if on_total is not None:
            on_total(len(records))
        await target.start()
        try:
            for record in records:
                seq = int(record["seq"])
                event = _event_of(record)

                def on_attempt(attempt: Attempt, seq: int = seq, event: Event = event) -> None:
                    if attempt.will_retry:
                        emit(Retry(seq, event, attempt.attempt, attempt.outcome, attempt.retry_in))

                outcome, attempts = await deliver(
                    target, event, settings.policy, on_attempt, rule_target=settings.rule_target
                )
                emit(Delivered(seq, event, outcome, attempts))
                result = Result(
                    seq=seq,
                    id=event.id,
                    status="delivered" if outcome.delivered else "failed",
                    attempt=attempts,
                    latency_ms=outcome.latency_ms,
                    code=outcome.code,
                    error=outcome.error,
                )
                # One delivery, recorded for each listener it stands in for, so a replayed
                # failure stops counting as failed for the listener that had it.
                for listener in owners[event.id]:
                    await api.record(event.id, listener, result)
                if outcome.delivered:
                    delivered += 1
                else:
                    failed += 1
        finally:
            await target.close()
    return ReplaySummary(delivered, failed)


def _failed_listeners(record: dict[str, Any]) -> list[str]:
    """The listeners whose latest delivery of this event failed."""
    latest: dict[str, str] = {}
    for delivery in record.get("deliveries", []):
        latest[delivery["listener"]] = delivery["status"]
    return [name for name, status in latest.items() if status == "failed"]


def _event_of(record: dict[str, object]) -> Event:
    """The Event (with its raw webhook request) from a ``GET /v1/events/<id>`` record."""
    body = record.get("event")
    if not isinstance(body, dict):
        raise NotFoundError("the relay returned a record without an event")
    event = parse_event(body)
    request = record.get("request")
    if isinstance(request, dict) and "body_b64" in request:
        from dataclasses import replace

        event = replace(event, request=RawRequest.from_dict(request))
    return event
