"""``hook replay`` as a library: fetch stored events and deliver them again through the live path.

Each replay goes through ``delivery.deliver`` with the same targets and retries as ``hook listen``,
and its result is recorded in the relay's history (``replay: true``, with its target, who
replayed it and the failure it answers), so ``hook events`` shows what really happened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from hookcli.client import RelayApi
from hookcli.config import Connection
from hookcli.delivery import Attempt, RetryPolicy, deliver
from hookcli.errors import NotFoundError, UsageError
from hookcli.events import Event, RawRequest, parse_event
from hookcli.listen import TargetSpec
from hookcli.protocol import Result
from hookcli.targets import Notice as NoticeCallback
from hookcli.targets import Target
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
    #: Replay every event of this failure group: its key (8 hex digits) or its number as
    #: ``hook events --issues`` shows it. Without a target option, to the group's recorded
    #: HTTP target.
    issue: str | None = None


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    """How many replays were delivered and failed."""

    delivered: int
    failed: int


@dataclass
class _Plan:
    """What a replay run delivers: the records, whom each stands in for, where it goes."""

    target: Target | None
    records: list[dict[str, Any]] = field(default_factory=list)
    #: Event id -> the listeners its result is recorded for.
    owners: dict[str, list[str]] = field(default_factory=dict)
    #: Event id -> the failed delivery row it answers (known for a group's events).
    answers: dict[str, int] = field(default_factory=dict)


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
    _check(settings)

    def on_notice(text: str, level: Literal["info", "warning"] = "info") -> None:
        emit(Notice(text, level))

    spec = settings.target
    # Options are checked before any network I/O; only a group's recorded target waits for it.
    plan = _Plan(spec.build(on_notice=on_notice) if _has_target(spec) else None)
    delivered = failed = 0
    async with RelayApi.open(settings.connection) as api:
        plan.records += [await api.event(event_id) for event_id in settings.ids]
        plan.owners.update({r["event"]["id"]: [settings.identity] for r in plan.records})
        if settings.issue is not None:
            await _plan_issue(api, settings.issue, plan, spec, on_notice, emit)
        target = plan.target
        assert target is not None  # built above, or from the group's recorded target
        if settings.failed:
            await _plan_failed(api, settings, plan, target, emit)
        if settings.ids:
            emit(
                Notice(
                    f"Replaying {len(settings.ids)} as {settings.identity} to {target.description}"
                )
            )
        emit(State(ConnectionState.CONNECTED))
        if on_total is not None:
            on_total(len(plan.records))
        await target.start()
        try:
            for record in plan.records:
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
                for listener in plan.owners[event.id]:
                    await api.record(
                        event.id,
                        listener,
                        result,
                        target=target.description,
                        replayed_by=settings.identity,
                        replay_of=plan.answers.get(event.id),
                    )
                if outcome.delivered:
                    delivered += 1
                else:
                    failed += 1
        finally:
            await target.close()
    return ReplaySummary(delivered, failed)


def _check(settings: ReplaySettings) -> None:
    """Options that do not go together, refused before anything else happens."""
    if not settings.ids and not settings.failed and settings.issue is None:
        raise UsageError("name at least one EVENT_ID, or use --failed or --issue")
    if settings.issue is not None and (settings.ids or settings.failed):
        raise UsageError("--issue replays one failure group: give it without EVENT_IDs or --failed")
    if (settings.failed_listener or settings.all_listeners or settings.since) and not (
        settings.failed
    ):
        raise UsageError("--listener, --all-listeners and --since go with --failed")
    if settings.failed_listener and settings.all_listeners:
        raise UsageError("give --listener NAME or --all-listeners, not both")


async def _plan_failed(
    api: RelayApi, settings: ReplaySettings, plan: _Plan, target: Target, emit: Emit
) -> None:
    """Add the failures ``--failed`` names (this identity's, a listener's or everyone's)."""
    scope = None if settings.all_listeners else settings.failed_listener or settings.identity
    # full=1: each row carries its raw webhook request, so one page is enough.
    rows = await api.events(
        status="failed", listener=scope, since=settings.since, limit=FAILED_LIMIT, full=1
    )
    known = {r["event"]["id"] for r in plan.records}
    for row in reversed(rows):  # oldest first
        if row["event"]["id"] not in known:
            known.add(row["event"]["id"])
            plan.records.append(row)
            plan.owners[row["event"]["id"]] = [scope] if scope else _failed_listeners(row)
    whose = "every listener" if scope is None else scope
    found = len(plan.records) - len(settings.ids)
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


async def _plan_issue(
    api: RelayApi,
    given: str,
    plan: _Plan,
    spec: TargetSpec,
    on_notice: NoticeCallback,
    emit: Emit,
) -> None:
    """Add every event of a failure group, each recorded for the group's listener as the
    answer to its failed delivery; without a target option, aim at the group's own target."""
    group, events = await _issue_events(api, given)
    if plan.target is None:
        plan.target = _recorded_target(group, spec).build(on_notice=on_notice)
    for item in events:
        plan.records.append(await api.event(item["id"]))
        plan.owners[item["id"]] = [group["listener"]]
        plan.answers[item["id"]] = int(item["delivery"])
    count = len(events)
    emit(
        Notice(
            f"Replaying {count} failed {'delivery' if count == 1 else 'deliveries'} of issue"
            f" #{group['number']} ({group['cause']}, {group['listener']})"
            f" to {plan.target.description}"
        )
    )


#: Events of a group fetched per page (the relay's maximum).
ISSUE_PAGE = 1000


async def _issue_events(api: RelayApi, given: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The failure group named by ``given`` (its key, or its number as listed now) and every
    event in it, by seq; an unknown one is a UsageError pointing at ``hook events --issues``."""
    key = given.strip().lower()
    unknown = UsageError(
        f"no failure group {given[:40]!r} on this relay",
        hint="`hook events --issues` lists the current groups (a group whose events all"
        " succeeded since is gone)",
    )
    if key.isascii() and key.isdigit() and len(key) < 8:
        # A number names the group at this moment: list the groups and take its key.
        found = [g for g in await api.issues() if g.get("number") == int(key)]
        if not found:
            raise unknown
        key = str(found[0]["key"])
    try:
        page = await api.issue(key, limit=ISSUE_PAGE)
    except NotFoundError:
        raise unknown from None
    group, events = page["issue"], list(page["events"])
    while page.get("more") and page["events"]:
        page = await api.issue(key, after=int(page["events"][-1]["seq"]), limit=ISSUE_PAGE)
        events += page["events"]
    return group, events


def _has_target(spec: TargetSpec) -> bool:
    """Whether a target option was given (``--issue`` alone uses the group's recorded one)."""
    return any(value is not None for value in (spec.url, spec.command, spec.handler))


def _recorded_target(group: dict[str, Any], spec: TargetSpec) -> TargetSpec:
    """The group's recorded target, when it is an HTTP URL (with ``spec``'s HTTP options).

    A command or handler the relay names is never run: the user gives it, as they do to
    ``hook listen``, so a relay cannot make this machine execute anything.
    """
    recorded = group.get("target")
    if group.get("kind") == "http" and isinstance(recorded, str):
        return replace(spec, url=recorded)
    if group.get("kind") in ("exec", "handler"):
        option = "--exec" if group["kind"] == "exec" else "--handler"
        raise UsageError(
            f"issue #{group.get('number')} went to `{recorded}`: give {option} to replay it"
            " (hook runs only commands you name)",
            hint=f"e.g. hook replay --issue {group.get('key')} {option} ...",
        )
    raise UsageError(
        f"issue #{group.get('number')}'s target was not recorded",
        hint="give --target, --exec or --handler",
    )


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
        event = replace(event, request=RawRequest.from_dict(request))
    return event
