"""`hook replay --archive` and `hook relay archives` against a real relay on moto's EventBridge.

What moto can show: the StartReplay call as DescribeReplay echoes it (the archive, the time
window, Destination.Arn = the relay's bus, FilterArns = the relay's own rule), replayed events
reaching the relay marked with ``replay-name``, and CancelReplay on Ctrl-C. What it cannot:
moto replays every archived event to every rule of the bus, synchronously inside StartReplay,
ignoring FilterArns and the time window, and never reports RUNNING or EventLastReplayedTime;
and it gives each replayed event a new id, so whether AWS keeps the original id cannot be
seen here (tests/test_replay_ids.py writes same-id copies into the relay's queue instead).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from test_commands import Background, Terminal, history, hook

from hookcli.relay.service import RunningRelay, start_relay
from hookcli.sources.emulator import CREDENTIALS

from conftest import LoopThread, relay_settings, wait_until
from fixtures.cli import clean_env

pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment for `hook`: no HOOK_* or AWS_* from the caller, no config, no colour."""
    return clean_env(tmp_path, ("HOOK_", "AWS_"))


@pytest.fixture
def terminal(env: dict[str, str]) -> Iterator[Callable[..., Terminal]]:
    """Start `hook` on a pseudo-terminal; closed (and killed if need be) at the end."""
    started: list[Terminal] = []

    def start(*args: str) -> Terminal:
        started.append(Terminal(env, *args))
        return started[-1]

    yield start
    for term in started:
        term.close()


@pytest.fixture
def local_relay(tmp_path: Path, loop_thread: LoopThread) -> Iterator[RunningRelay]:
    """A relay on moto's emulated bus, named uniquely (moto's state is per process, shared)."""
    name = f"arch-{uuid.uuid4().hex[:8]}"
    running = loop_thread.run(
        start_relay(relay_settings(tmp_path / "relay", source=True, name=name))
    )
    yield running
    loop_thread.run(running.stop())


def events_api(relay: RunningRelay) -> Any:
    """A boto3 EventBridge client on the relay's emulator (what an AWS console user would do)."""
    return boto3.client(
        "events",
        endpoint_url=relay.info.endpoint_url,
        region_name=relay.info.region,
        aws_access_key_id=CREDENTIALS[0],
        aws_secret_access_key=CREDENTIALS[1],
    )


@pytest.fixture
def archive(local_relay: RunningRelay) -> Iterator[str]:
    """An archive of the relay's bus (retention 3 days) holding two orders put after it."""
    api = events_api(local_relay)
    name = f"orders-{uuid.uuid4().hex[:8]}"
    bus_arn = api.describe_event_bus(Name=local_relay.info.bus)["Arn"]
    api.create_archive(ArchiveName=name, EventSourceArn=bus_arn, RetentionDays=3)
    tag = name  # tells this test's orders from other tests' on the shared emulated bus
    entries = [
        {
            "Source": "shop.orders",
            "DetailType": "OrderPlaced",
            "Detail": json.dumps({"n": n, "tag": tag}),
            "EventBusName": local_relay.info.bus,
        }
        for n in (1, 2)
    ]
    assert api.put_events(Entries=entries)["FailedEntryCount"] == 0
    wait_until(lambda: len(tagged(local_relay, tag)) == 2, what="the orders at the relay")
    yield name
    api.delete_archive(ArchiveName=name)


def tagged(relay: RunningRelay, tag: str) -> list[dict[str, Any]]:
    """History rows of this test's orders (newest first)."""
    rows = history(relay, limit=1000)
    return [
        r
        for r in rows
        if isinstance(r["event"]["detail"], dict) and r["event"]["detail"].get("tag") == tag
    ]


def relay_rule_arn(relay: RunningRelay) -> str:
    """The ARN of the rule the relay provisioned on its bus (name ``<relay>-<bus>``)."""
    api = events_api(relay)
    rule = api.describe_rule(
        Name=f"{relay.info.name}-{relay.info.bus}", EventBusName=relay.info.bus
    )
    return str(rule["Arn"])


def replay_lines(ran_stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ran_stdout.splitlines()]


def test_relay_archives_lists_the_bus_archives(
    local_relay: RunningRelay, archive: str, env: dict[str, str]
) -> None:
    """Name, state, retention, event count and size of the relay's bus's archives."""
    ran = hook(env, "relay", "archives", "--json", "--relay", local_relay.url)
    assert ran.code == 0, ran.stderr
    (row,) = [r for r in ran.lines() if r["name"] == archive]
    assert row["type"] == "archive"
    assert (row["state"], row["retention_days"], row["event_count"]) == ("ENABLED", 3, 2)
    assert row["size_bytes"] > 0


def test_archive_replay_targets_the_relay_rule_only_with_the_window(
    local_relay: RunningRelay, archive: str, env: dict[str, str]
) -> None:
    """StartReplay as DescribeReplay echoes it: the archive, [since, until), the relay's bus as
    destination and its own rule as the only FilterArns; the command ends at COMPLETED, exit 0."""
    since = datetime.now(UTC) - timedelta(hours=1)
    until = datetime.now(UTC) + timedelta(minutes=1)
    ran = hook(
        env, "replay", "--archive", archive, "--since", since.isoformat(),
        "--until", until.isoformat(), "--poll", "0.1", "--json", "--relay", local_relay.url,
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    lines = replay_lines(ran.stdout)
    assert [line["state"] for line in lines] == ["STARTING", "COMPLETED"]
    assert lines[-1]["progress"] == 1.0
    name = lines[0]["replay"]
    described = events_api(local_relay).describe_replay(ReplayName=name)
    bus_arn = events_api(local_relay).describe_event_bus(Name=local_relay.info.bus)["Arn"]
    rule_arn = relay_rule_arn(local_relay)
    assert described["Destination"] == {"Arn": bus_arn, "FilterArns": [rule_arn]}
    assert described["EventSourceArn"].endswith(f":archive/{archive}")
    assert described["EventStartTime"] == since
    assert described["EventEndTime"] == until


def test_replayed_events_reach_the_relay_marked_with_replay_name(
    local_relay: RunningRelay,
    archive: str,
    env: dict[str, str],
    terminal: Callable[..., Terminal],
) -> None:
    """The archived orders arrive again as new events carrying replay-name; `hook events` (JSON)
    and `hook events show` (terminal) show it."""
    ran = hook(
        env, "replay", "--archive", archive, "--since", "1h", "--poll", "0.1", "--json",
        "--relay", local_relay.url,
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    name = replay_lines(ran.stdout)[0]["replay"]
    wait_until(lambda: len(tagged(local_relay, archive)) == 4, what="the replayed orders")
    replayed = [r for r in tagged(local_relay, archive) if "replay-name" in r["event"]]
    assert sorted(r["event"]["detail"]["n"] for r in replayed) == [1, 2]
    assert {r["event"]["replay-name"] for r in replayed} == {name}
    listed = hook(env, "events", "--json", "--relay", local_relay.url, "-n", "1000")
    assert {r["event"].get("replay-name") for r in listed.lines()} >= {name}
    show = terminal("events", "show", replayed[0]["event"]["id"], "--relay", local_relay.url)
    code, err = show.wait()
    assert code == 0, err
    assert f"replay {name}" in show.text


def test_a_replayed_copy_is_addressed_as_id_at_replay_name(
    local_relay: RunningRelay, archive: str, env: dict[str, str]
) -> None:
    """`hook events show ID@REPLAY` finds a copy moto's replay delivered; another name 404s."""
    ran = hook(
        env, "replay", "--archive", archive, "--since", "1h", "--poll", "0.1", "--json",
        "--relay", local_relay.url,
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    name = replay_lines(ran.stdout)[0]["replay"]
    wait_until(lambda: len(tagged(local_relay, archive)) == 4, what="the replayed orders")
    copy = next(r for r in tagged(local_relay, archive) if "replay-name" in r["event"])
    short = copy["event"]["id"][:8]
    show = hook(env, "events", "show", f"{short}@{name}", "--json", "--relay", local_relay.url)
    assert show.code == 0, show.stderr
    assert [line["seq"] for line in show.lines()] == [copy["seq"]]
    other = hook(env, "events", "show", f"{short}@not-{name}", "--relay", local_relay.url)
    assert other.code == 5, other.stderr
    assert "no copy from the replay" in other.stderr


def test_ctrl_c_cancels_the_replay(
    local_relay: RunningRelay, archive: str, env: dict[str, str]
) -> None:
    """Ctrl-C while waiting calls CancelReplay, shows the answer, and exits 130."""
    waiting = Background(
        env, "replay", "--archive", archive, "--since", "1h", "--poll", "600", "--json",
        "--relay", local_relay.url,
    )  # fmt: skip
    try:
        waiting.wait_for_line(waiting.out, lambda d: d.get("state") == "STARTING", "STARTING")
        assert waiting.interrupt() == 130
    finally:
        waiting.kill()
    lines = [json.loads(line) for line in waiting.out]
    assert lines[-1]["state"] == "CANCELLING"
    assert lines[-1]["reason"] == "cancelled by the user"
    described = events_api(local_relay).describe_replay(ReplayName=lines[0]["replay"])
    assert described["State"] == "CANCELLED"


def test_an_archive_of_another_bus_is_refused(
    local_relay: RunningRelay, env: dict[str, str]
) -> None:
    """EventBridge replays an archive only onto its own bus: hook says so before starting."""
    api = events_api(local_relay)
    bus = f"other-{uuid.uuid4().hex[:8]}"
    bus_arn = api.create_event_bus(Name=bus)["EventBusArn"]
    name = f"elsewhere-{uuid.uuid4().hex[:8]}"
    api.create_archive(ArchiveName=name, EventSourceArn=bus_arn)
    try:
        ran = hook(env, "replay", "--archive", name, "--since", "1h", "--relay", local_relay.url)
    finally:
        api.delete_archive(ArchiveName=name)
        api.delete_event_bus(Name=bus)
    assert ran.code == 6, ran.stderr
    assert f"archive {name!r} archives {bus_arn}, not the relay's bus" in ran.stderr
    assert "Hint:" in ran.stderr


def test_an_unknown_archive_exits_6_with_a_hint(
    local_relay: RunningRelay, env: dict[str, str]
) -> None:
    """A missing archive names itself and points at `hook relay archives`."""
    ran = hook(env, "replay", "--archive", "nope", "--since", "1h", "--relay", local_relay.url)
    assert ran.code == 6, ran.stderr
    assert "no archive named 'nope'" in ran.stderr
    assert "hook relay archives" in ran.stderr


def test_an_ingest_only_relay_has_no_archives(relay: RunningRelay, env: dict[str, str]) -> None:
    """A relay without an EventBridge bus cannot replay an archive: exit 2, saying why."""
    ran = hook(env, "relay", "archives", "--relay", relay.url)
    assert ran.code == 2, ran.stderr
    assert "serves no EventBridge bus" in ran.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--archive", "a"], "--archive needs --since"),
        (["--archive", "a", "--since", "yesterday"], "is not an ISO time or a duration"),
        (["--archive", "a", "--since", "2026-12-01T09:00"], "needs a timezone"),
        (["--archive", "a", "--since", "1h", "--until", "2h"], "--since must be before --until"),
        (["--archive", "a", "--since", "1h", "--failed"], "takes no event ids or --failed"),
        (["--archive", "a", "--since", "1h", "some-id"], "takes no event ids or --failed"),
    ],
)
def test_bad_archive_options_exit_2_before_any_network_io(
    env: dict[str, str], args: list[str], message: str
) -> None:
    """Usage errors are caught before asking the relay (none answers here) or AWS."""
    ran = hook(env, "replay", *args, "--relay", "http://127.0.0.1:9")
    assert ran.code == 2, ran.stderr
    assert message in ran.stderr
