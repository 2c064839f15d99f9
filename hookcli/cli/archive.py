"""``hook replay --archive`` and ``hook relay archives``: parse, run ``archive.py``, render."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TypeVar

from hookcli.errors import UsageError

T = TypeVar("T")


def parse_moment(value: str, what: str, now: datetime) -> datetime:
    """An ISO time with a zone, or a duration meaning that long ago (``2h``, ``1d``)."""
    from hookcli.cli.inputs import parse_duration

    text = value.strip()
    if text and text[-1:].lower() in "smhdw" and text[:-1].replace(".", "", 1).isdigit():
        return now - timedelta(seconds=parse_duration(text, what))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{what}: {value!r} is not an ISO time or a duration",
            hint="e.g. 2026-12-01T09:00Z, or 2h / 1d for that long ago",
        ) from None
    if moment.tzinfo is None:
        raise UsageError(f"{what}: {value!r} needs a timezone (e.g. a trailing Z)")
    return moment.astimezone(UTC)


def replay_archive(
    archive: str,
    since: str | None,
    until: str | None,
    poll: float,
    relay: str | None,
    token: str | None,
    as_json: bool,
    *,
    mixed: bool = False,
) -> None:
    """``hook replay --archive``: replay an archive onto the relay only, showing its progress."""
    from hookcli.archive import ArchiveReplaySettings
    from hookcli.archive import replay_archive as run
    from hookcli.cli.listen import run_async
    from hookcli.cli.render import render_archive_replay
    from hookcli.config import resolve
    from hookcli.errors import SourceError

    if mixed:
        raise UsageError(
            "--archive replays from an EventBridge archive; it takes no event ids or --failed",
            hint="run `hook replay --archive NAME --since TIME` on its own",
        )
    if since is None:
        raise UsageError("--archive needs --since", hint="e.g. --since 1d (a day ago)")
    now = datetime.now(UTC)
    settings = ArchiveReplaySettings(
        connection=resolve(relay, token),
        archive=archive,
        since=parse_moment(since, "--since", now),
        until=parse_moment(until, "--until", now) if until else now,
        poll=poll,
    )
    final = run_async(run(settings, lambda update: render_archive_replay(update, as_json=as_json)))
    if final.state != "COMPLETED":
        raise SourceError(
            f"replay {final.name} ended {final.state}: {final.reason or 'no reason given'}",
            hint="`aws events describe-replay --replay-name NAME` shows the details",
        )


def archives(relay: str | None, token: str | None, as_json: bool) -> None:
    """``hook relay archives``: the archives of the relay's bus."""
    from hookcli.archive import archives as run
    from hookcli.cli.listen import run_async
    from hookcli.cli.render import render_archives
    from hookcli.config import resolve

    render_archives(run_async(run(resolve(relay, token))), as_json=as_json)
