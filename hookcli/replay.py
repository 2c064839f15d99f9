"""``hook replay`` as a library: fetch stored events and deliver them again through the live path.

Each replay goes through ``delivery.deliver`` with the same targets and retries as ``hook listen``,
and its result is recorded in the relay's history (``replay: true``, with its target, who
replayed it and the failure it answers), so ``hook events`` shows what really happened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hookcli.client import RelayApi
from hookcli.config import Connection
from hookcli.delivery import Attempt, RetryPolicy, deliver
from hookcli.errors import NotFoundError, UsageError
from hookcli.events import Event, RawRequest, parse_event, with_request
from hookcli.listen import TargetSpec
from hookcli.protocol import Result
from hookcli.transform import RuleTarget
from hookcli.updates import ConnectionState, Delivered, Notice, Retry, State, Update

Emit = Callable[[Update], None]
FAILED_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class ReplaySettings:
    """Everything ``hook replay`` takes, parsed."""

    connection: Connection
    target: TargetSpec
    #: Who replays: ``--name``, else the identity ``hook listen`` would use for this target.
    #: Replays of explicit ids are recorded under it; ``--failed`` replays its failures.
    identity: str
    ids: tuple[str, ...] = ()
    failed: bool = False
    #: With ``failed``: replay this listener's failures instead of ``identity``'s.
    failed_listener: str | None = None
    #: With ``failed``: every listener's failures (each result recorded for its listener).
    all_listeners: bool = False
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
    """Deliver each chosen event once more (with retries); never stops at a failed one.

    Each result is recorded in the history for the listener it stands in for, with the target
    it went to, who replayed it, and the failed delivery it answers: history never claims a
    listener received what went elsewhere.
    """
    if not settings.ids and not settings.failed:
        raise UsageError("name at least one EVENT_ID, or use --failed")
    if (settings.failed_listener or settings.all_listeners or settings.since) and not (
        settings.failed
    ):
        raise UsageError("--listener, --all-listeners and --since go with --failed")
    if settings.failed_listener and settings.all_listeners:
        raise UsageError("give --listener NAME or --all-listeners, not both")
    target = settings.target.build(on_notice=lambda text, level="info": emit(Notice(text, level)))
    delivered = failed = 0
    async with RelayApi.open(settings.connection) as api:
        records = [await api.event(event_id) for event_id in settings.ids]
        owners = {_key(r): [settings.identity] for r in records}
        if settings.failed:
            scope = (
                None if settings.all_listeners else settings.failed_listener or settings.identity
            )
            # full=1: each row carries its raw webhook request, so one page is enough.
            rows = await api.events(
                status="failed", listener=scope, since=settings.since, limit=FAILED_LIMIT, full=1
            )
            known = {_key(r) for r in records}
            for row in reversed(rows):  # oldest first
                if _key(row) not in known:
                    known.add(_key(row))
                    records.append(row)
                    owners[_key(row)] = [scope] if scope else _failed_listeners(row)
            whose = "every listener" if scope is None else scope
            found = len(records) - len(settings.ids)
            if not found:
                others = "" if scope is None else " (--listener NAME or --all-listeners for others)"
                emit(Notice(f"No failed deliveries of {whose} to replay{others}."))
            else:
                emit(
                    Notice(
                        f"Replaying {found} failed {'delivery' if found == 1 else 'deliveries'}"
                        f" of {whose} to {target.description}"
                    )
                )
        if settings.ids:
            emit(
                Notice(
                    f"Replaying {len(settings.ids)} as {settings.identity} to {target.description}"
                )
            )
        emit(State(ConnectionState.CONNECTED))
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
                # One delivery, recorded for each listener it stands in for (so a replayed
                # failure stops counting as failed for that listener), saying where it went
                # and who replayed it; the relay links it to the failure it answers.
                for listener in owners[event.key]:
                    await api.record(
                        event.key,  # ID@REPLAY: the copy an archive replay stored, if any
                        listener,
                        result,
                        target=target.description,
                        replayed_by=settings.identity,
                    )
                if outcome.delivered:
                    delivered += 1
                else:
                    failed += 1
        finally:
            await target.close()
    return ReplaySummary(delivered, failed)


def _key(record: dict[str, Any]) -> str:
    """A history record's event key: its id, plus ``@replay-name`` for an archive replay's copy."""
    event = record["event"]
    name = event.get("replay-name")
    return str(event["id"]) if name is None else f"{event['id']}@{name}"


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
    # The event's text as the relay stored it (newer relays), so a target gets those bytes.
    text = record.get("event_text")
    event = parse_event(text if isinstance(text, str) else body)
    request = record.get("request")
    if isinstance(request, dict) and "body_b64" in request:
        event = with_request(event, RawRequest.from_dict(request))
    return event
