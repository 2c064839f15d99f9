"""Archive replay onto the laptop (``hook replay --archive``, ``hook relay archives``).

The relay says which bus it serves (``/v1/info``: bus, region, the emulator's endpoint in local
mode, and its name, which tags its rule). EventBridge then replays the archive to that rule
only (``Destination.FilterArns``), so the bus's other rules, production targets among them, see
nothing. The relay receives the replayed events as it receives live ones, each marked with
``replay-name``, and streams them to listeners like any other event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from hookcli.config import Connection
from hookcli.errors import SourceError, UsageError
from hookcli.sources.eventbridge import (
    ArchiveInfo,
    AwsSettings,
    ReplayStatus,
    cancel_replay,
    describe_replay,
    list_archives,
    replay_name,
    start_replay,
)
from hookcli.updates import ArchiveReplay

Emit = Callable[[ArchiveReplay], None]
#: Seconds between DescribeReplay calls: EventBridge replays in one-minute slices of event time.
POLL_INTERVAL = 5.0


@dataclass(frozen=True, slots=True)
class ArchiveReplaySettings:
    """Everything ``hook replay --archive`` takes, parsed."""

    connection: Connection
    archive: str
    since: datetime
    until: datetime
    poll: float = POLL_INTERVAL


async def relay_bus(connection: Connection) -> AwsSettings:
    """The AWS settings of the bus the relay serves (its emulator's, in local mode)."""
    from hookcli.client import RelayApi

    async with RelayApi.open(connection, timeout=10.0) as api:
        info = await api.info()
    if info.get("mode") not in ("local", "aws"):
        raise UsageError(
            f"the relay at {connection.http_url} serves no EventBridge bus (--ingest-only)",
            hint="archives belong to an EventBridge bus: use a relay started with --bus or --local",
        )
    endpoint = str(info.get("endpoint_url") or "") or None
    credentials = None
    if endpoint is not None:
        from hookcli.sources.emulator import CREDENTIALS

        credentials = CREDENTIALS
    return AwsSettings(
        bus=str(info.get("bus") or "default"),
        region=str(info.get("region") or "") or None,
        endpoint_url=endpoint,
        credentials=credentials,
        relay_name=str(info.get("relay") or "hook"),
    )


async def archives(connection: Connection) -> list[ArchiveInfo]:
    """The archives of the relay's bus (``hook relay archives``)."""
    aws = await relay_bus(connection)
    return await asyncio.to_thread(list_archives, aws)


async def replay_archive(settings: ArchiveReplaySettings, emit: Emit) -> ArchiveReplay:
    """Start the replay, report its progress until it ends; cancelled, cancel it in AWS too.

    Returns the last state seen. A cancellation (Ctrl-C, SIGTERM) calls CancelReplay, reports
    the state EventBridge answers, and is re-raised.
    """
    if settings.since >= settings.until:
        raise UsageError(
            "--since must be before --until",
            hint="e.g. --since 2h (ago), or --since 2026-12-01T09:00Z --until 2026-12-01T10:00Z",
        )
    aws = await relay_bus(settings.connection)
    name = replay_name(aws.relay_name, datetime.now(UTC))
    status = await asyncio.to_thread(
        start_replay, aws, settings.archive, settings.since, settings.until, name
    )
    last = _update(status, settings.archive)
    emit(last)
    try:
        while not last.done:
            await asyncio.sleep(settings.poll)
            status = await asyncio.to_thread(describe_replay, aws, name)
            update = _update(status, settings.archive)
            if update != last:
                emit(update)
            last = update
    except asyncio.CancelledError:
        emit(await _cancel(aws, name, last))
        raise
    return last


async def _cancel(aws: AwsSettings, name: str, last: ArchiveReplay) -> ArchiveReplay:
    """CancelReplay; when EventBridge refuses (it ended meanwhile), what DescribeReplay says."""
    try:
        state = await asyncio.to_thread(cancel_replay, aws, name)
    except SourceError:
        try:
            return _update(await asyncio.to_thread(describe_replay, aws, name), last.archive)
        except SourceError as exc:
            return ArchiveReplay(
                name, last.archive, last.state, last.event_start, last.event_end,
                last.reached, f"could not cancel: {exc.message}", last.rules,
            )  # fmt: skip
    return ArchiveReplay(
        name, last.archive, state, last.event_start, last.event_end, last.reached,
        "cancelled by the user", last.rules,
    )  # fmt: skip


def _update(status: ReplayStatus, archive: str) -> ArchiveReplay:
    return ArchiveReplay(
        name=status.name,
        archive=archive,
        state=status.state,
        event_start=status.event_start,
        event_end=status.event_end,
        reached=status.event_last_replayed,
        reason=status.reason,
        rules=status.filter_arns,
    )
