"""hookcli.sources against moto's real server on 127.0.0.1 (port 0): provisioning, PutEvents,
the SQS poller, teardown. Nothing of hook's own is mocked; each test gets its own bus and relay
name, since every moto server in a process shares one state."""

from __future__ import annotations

import asyncio
import dataclasses
import http.client
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from hookcli.errors import ConfigError, SourceError
from hookcli.events import Event
from hookcli.sources import eventbridge as eb
from hookcli.sources.emulator import Emulator, start_emulator
from hookcli.sources.sqs import SourceState, SqsSource

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_sqs.client import SQSClient

pytestmark = pytest.mark.slow

#: One timeout unit, scaled for slow machines.
UNIT = 5.0 * float(os.environ.get("HOOK_TEST_TIMEOUT_SCALE", "1"))


# -- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    running = start_emulator()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def settings(emulator: Emulator) -> eb.AwsSettings:
    """Settings for a fresh custom bus and a relay name no other test uses."""
    suffix = uuid.uuid4().hex[:8]
    base = emulator.settings(bus=f"bus-{suffix}", relay_name=f"relay-{suffix}")
    events, _, _ = eb.clients(base)
    events.create_event_bus(Name=base.bus)
    return base


@pytest.fixture
def aws(settings: eb.AwsSettings) -> tuple[EventBridgeClient, SQSClient]:
    """Plain boto3 clients on the emulator, for checking what hook did."""
    events, sqs, _ = eb.clients(settings)
    return events, sqs


def wait_until(condition: Callable[[], bool], what: str, timeout: float = UNIT) -> None:
    """Poll ``condition`` until it holds, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(0.01)


async def async_wait_until(condition: Callable[[], bool], what: str, timeout: float = UNIT) -> None:
    """The asyncio form of ``wait_until``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        await asyncio.sleep(0.005)


def entry(n: int) -> dict[str, Any]:
    """A PutEvents entry with a distinct detail."""
    return {"Source": "test.orders", "DetailType": "Order Placed", "Detail": json.dumps({"n": n})}


def queue_depth(sqs: SQSClient, url: str) -> int:
    """Messages in the queue, visible or in flight."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


async def run_source(
    source: SqsSource,
    commit: Callable[[list[Event]], Awaitable[None]],
    until: Callable[[], bool],
    what: str,
) -> None:
    """Run the source until ``until`` holds, then cancel it and check it stopped."""
    task = asyncio.create_task(source.run(commit))
    try:
        await async_wait_until(lambda: until() or task.done(), what)
        if task.done():
            task.result()  # raise what stopped it
        assert until()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert source.state is SourceState.STOPPED


def moto_auth(emulator: Emulator, count: str) -> None:
    """Switch moto's IAM enforcement: "0" checks every request, "inf" none (moto-api)."""
    parts = urlsplit(emulator.endpoint_url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=UNIT)
    try:
        connection.request(
            "POST", "/moto-api/reset-auth", body=count, headers={"Content-Type": "text/plain"}
        )
        assert connection.getresponse().status == 200
    finally:
        connection.close()


# -- emulator --------------------------------------------------------------------------------


def test_emulator_serves_sts_on_loopback_and_stops() -> None:
    """start_emulator binds 127.0.0.1 on a free port, answers as moto's account, stop() closes."""
    running = start_emulator()
    parts = urlsplit(running.endpoint_url)
    assert (parts.scheme, parts.hostname) == ("http", "127.0.0.1")
    assert parts.port
    _, _, sts = eb.clients(running.settings())
    assert sts.get_caller_identity()["Account"] == running.account == "123456789012"
    assert running.region == "us-east-1"
    running.stop()
    running.stop()  # idempotent
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", parts.port)):
        pass


def test_emulator_is_quiet(capfd: pytest.CaptureFixture[str]) -> None:
    """The emulator prints nothing and werkzeug logs no request lines on stderr."""
    running = start_emulator()
    try:
        eb.clients(running.settings())[2].get_caller_identity()
    finally:
        running.stop()
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_emulator_settings_ignore_the_users_aws_environment(
    settings: eb.AwsSettings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Local mode uses its static keys, not the user's AWS_* keys, profile or ~/.aws files."""
    (tmp_path / "config").write_text("[profile work]\nregion = eu-west-1\n")
    (tmp_path / "credentials").write_text(
        "[work]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = s\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_PROFILE", "work")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    local = eb.session(settings)
    credentials = local.get_credentials()
    assert credentials is not None and credentials.access_key == "hook-local"
    assert (local.profile_name, local.available_profiles) == ("default", [])
    assert "hook-local-secret" not in repr(settings)
    assert eb.provision(settings).region == "us-east-1"


# -- provision ---------------------------------------------------------------------------------


def test_provision_is_idempotent(settings: eb.AwsSettings) -> None:
    """A second provision finds the same resources by tag and creates nothing."""
    first = eb.provision(settings)
    second = eb.provision(settings)
    assert len(first.created) == 2
    assert second.created == ()
    assert (second.queue_url, second.rule_arn) == (first.queue_url, first.rule_arn)
    assert (first.bus, first.region, first.account) == (settings.bus, "us-east-1", "123456789012")


def test_provisioned_resources_are_tagged_and_configured(
    settings: eb.AwsSettings, aws: tuple[EventBridgeClient, SQSClient]
) -> None:
    """Rule and queue carry hook:relay / hook:bus; the queue has SSE, retention, long poll."""
    events, sqs = aws
    provisioned = eb.provision(settings)
    wanted = {"hook:relay": settings.relay_name, "hook:bus": settings.bus}
    rule_tags = events.list_tags_for_resource(ResourceARN=provisioned.rule_arn)["Tags"]
    assert {tag["Key"]: tag["Value"] for tag in rule_tags} == wanted
    assert sqs.list_queue_tags(QueueUrl=provisioned.queue_url)["Tags"] == wanted
    attributes = sqs.get_queue_attributes(QueueUrl=provisioned.queue_url, AttributeNames=["All"])
    assert {
        key: attributes["Attributes"][key]
        for key in (
            "SqsManagedSseEnabled",
            "MessageRetentionPeriod",
            "ReceiveMessageWaitTimeSeconds",
            "VisibilityTimeout",
        )
    } == {
        "SqsManagedSseEnabled": "true",
        "MessageRetentionPeriod": "345600",
        "ReceiveMessageWaitTimeSeconds": "20",
        "VisibilityTimeout": "60",
    }
    rule = events.describe_rule(Name=provisioned.rule_name, EventBusName=settings.bus)
    assert json.loads(rule["EventPattern"]) == {"source": [{"prefix": ""}]}
    assert rule["State"] == "ENABLED"


def test_queue_policy_lets_only_the_rule_send(
    settings: eb.AwsSettings, aws: tuple[EventBridgeClient, SQSClient]
) -> None:
    """The queue policy allows events.amazonaws.com SendMessage only from the relay's rule."""
    events, sqs = aws
    provisioned = eb.provision(settings)
    policy = json.loads(
        sqs.get_queue_attributes(QueueUrl=provisioned.queue_url, AttributeNames=["Policy"])[
            "Attributes"
        ]["Policy"]
    )
    assert policy["Statement"] == [
        {
            "Sid": "HookRelayRuleSendMessage",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": provisioned.queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": provisioned.rule_arn}},
        }
    ]
    targets = events.list_targets_by_rule(Rule=provisioned.rule_name, EventBusName=settings.bus)
    assert [target["Arn"] for target in targets["Targets"]] == [provisioned.queue_arn]


def test_names_fit_aws_limits_for_a_long_relay_name(settings: eb.AwsSettings) -> None:
    """A 128-character relay name still gives names within 64 characters, distinct per relay."""
    long_a = dataclasses.replace(settings, relay_name="a" * 127 + "1")
    long_b = dataclasses.replace(settings, relay_name="a" * 127 + "2")
    first, second = eb.provision(long_a), eb.provision(long_b)
    queue_names = [p.queue_url.rsplit("/", 1)[-1] for p in (first, second)]
    assert all(len(name) <= 64 for name in [first.rule_name, second.rule_name, *queue_names])
    assert first.rule_name != second.rule_name
    assert eb.provision(long_a).created == ()


@pytest.mark.parametrize(
    ("relay", "bus", "expected"),
    [
        ("hook", "default", "hook-default"),
        ("team.a", "orders", "team-a-orders-"),  # "." is not allowed in queue names: hashed
        ("r" * 70, "default", "r" * 55 + "-"),
    ],
)
def test_resource_name(relay: str, bus: str, expected: str) -> None:
    """Names are <relay>-<bus>, sanitized and hash-suffixed when changed or too long."""
    name = eb.resource_name(relay, bus)
    assert name.startswith(expected)
    assert len(name) <= 64
    assert name == eb.resource_name(relay, bus)  # stable
    if name != expected:
        assert len(name) == len(expected) + 8


def test_provision_rejects_an_unusable_relay_name(settings: eb.AwsSettings) -> None:
    """A relay name that cannot be a tag value is a ConfigError before any AWS call."""
    bad = dataclasses.replace(settings, relay_name="no spaces\n")
    with pytest.raises(ConfigError):
        eb.provision(bad)


def test_missing_bus_is_a_source_error_with_a_hint(emulator: Emulator) -> None:
    """Provisioning on a bus that does not exist names the bus and region and says what to do."""
    with pytest.raises(SourceError) as caught:
        eb.provision(emulator.settings(bus="no-such-bus", relay_name="missing"))
    assert "no-such-bus" in caught.value.message
    assert "us-east-1" in caught.value.message
    assert caught.value.hint and "aws events list-event-buses" in caught.value.hint


def test_no_credentials_is_a_source_error_with_a_hint(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without any credentials, provision says so and suggests a profile or --local."""
    for name in list(os.environ):
        if name.startswith("AWS_") and name != "AWS_CA_BUNDLE":
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never try 169.254.169.254
    bare = eb.AwsSettings(region=emulator.region, endpoint_url=emulator.endpoint_url)
    with pytest.raises(SourceError) as caught:
        eb.provision(bare)
    assert caught.value.message == "no AWS credentials found"
    assert caught.value.hint and "hook relay serve --local" in caught.value.hint


def test_provision_refuses_a_rule_it_did_not_create(
    settings: eb.AwsSettings, aws: tuple[EventBridgeClient, SQSClient]
) -> None:
    """A user's rule holding the relay's name is left alone by provision (an error, nothing
    created) and by teardown."""
    events, sqs = aws
    name = eb.resource_name(settings.relay_name, settings.bus)
    events.put_rule(Name=name, EventBusName=settings.bus, EventPattern='{"source":["mine"]}')
    with pytest.raises(SourceError) as caught:
        eb.provision(settings)
    assert "not relay" in caught.value.message
    assert sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", []) == []
    assert eb.teardown(settings) == []
    rule = events.describe_rule(Name=name, EventBusName=settings.bus)
    assert rule["EventPattern"] == '{"source":["mine"]}'


def test_partial_failure_rolls_back_what_it_created(
    emulator: Emulator, settings: eb.AwsSettings, aws: tuple[EventBridgeClient, SQSClient]
) -> None:
    """An identity allowed everything but events:PutTargets: provision creates the queue and
    the rule, fails at the target, removes both, and names the missing IAM action.

    A real partial failure, not a simulated one: moto enforces the IAM policy (moto-api
    reset-auth), as AWS would for a developer whose role lacks one permission.
    """
    events, sqs = aws
    iam: Any = eb.session(settings).client("iam", endpoint_url=emulator.endpoint_url)
    user = f"dev-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(
        UserName=user,
        PolicyName="all-but-put-targets",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "*", "Resource": "*"},
                    {"Effect": "Deny", "Action": "events:PutTargets", "Resource": "*"},
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    limited = dataclasses.replace(
        settings, credentials=(key["AccessKeyId"], key["SecretAccessKey"])
    )
    moto_auth(emulator, "0")
    try:
        with pytest.raises(SourceError) as caught:
            eb.provision(limited)
    finally:
        moto_auth(emulator, "inf")
    name = eb.resource_name(settings.relay_name, settings.bus)
    assert "PutTargets" in caught.value.message
    assert "rolled back SQS queue" in caught.value.message
    assert caught.value.hint and "events:PutTargets" in caught.value.hint
    assert events.list_rules(EventBusName=settings.bus, NamePrefix=name)["Rules"] == []
    assert sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", []) == []
    assert eb.provision(settings).created  # nothing left behind to trip over


# -- teardown ------------------------------------------------------------------------------------


def test_teardown_removes_exactly_what_the_relay_created(
    settings: eb.AwsSettings, aws: tuple[EventBridgeClient, SQSClient]
) -> None:
    """Teardown deletes the relay's rule (targets first) and queue; a user's own rule and queue
    on the same bus stay; a second teardown finds nothing."""
    events, sqs = aws
    mine_url = sqs.create_queue(QueueName=f"users-own-{settings.relay_name}")["QueueUrl"]
    mine_arn = sqs.get_queue_attributes(QueueUrl=mine_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(
        Name="users-own-rule", EventBusName=settings.bus, EventPattern='{"source":["x"]}'
    )
    events.put_targets(
        Rule="users-own-rule", EventBusName=settings.bus, Targets=[{"Id": "t", "Arn": mine_arn}]
    )
    provisioned = eb.provision(settings)

    removed = eb.teardown(settings)

    assert removed == [
        f"1 target(s) of EventBridge rule {provisioned.rule_name}",
        f"EventBridge rule {provisioned.rule_name} on bus {settings.bus}",
        f"SQS queue {provisioned.rule_name}",
    ]
    rules = events.list_rules(EventBusName=settings.bus)["Rules"]
    assert [rule["Name"] for rule in rules] == ["users-own-rule"]
    targets = events.list_targets_by_rule(Rule="users-own-rule", EventBusName=settings.bus)
    assert [target["Arn"] for target in targets["Targets"]] == [mine_arn]
    assert provisioned.queue_url not in sqs.list_queues().get("QueueUrls", [])
    assert mine_url in sqs.list_queues().get("QueueUrls", [])
    assert eb.teardown(settings) == []


# -- put_events ----------------------------------------------------------------------------------


def test_put_events_reports_each_entry(settings: eb.AwsSettings) -> None:
    """Accepted entries get an event id; a malformed Detail and an entry over 1 MiB fail alone."""
    too_big = {**entry(2), "Detail": json.dumps({"blob": "x" * (1024 * 1024)})}
    bad = {**entry(1), "Detail": "{not json"}
    results = eb.put_events(settings, [entry(0), bad, too_big, entry(3)])
    assert [r.index for r in results] == [0, 1, 2, 3]
    assert [r.ok for r in results] == [True, False, False, True]
    assert results[0].event_id and results[3].event_id
    assert (results[1].error_code, results[1].event_id) == ("MalformedDetail", None)
    assert results[2].error_code == "EntryTooLarge"
    assert results[2].error_message and "1048576" in results[2].error_message


def test_put_events_batches_by_ten(settings: eb.AwsSettings) -> None:
    """More than 10 entries go out in several PutEvents calls, results in input order."""
    results = eb.put_events(settings, [entry(n) for n in range(23)])
    assert [r.index for r in results] == list(range(23))
    assert all(r.ok for r in results)
    assert len({r.event_id for r in results}) == 23


def test_put_events_on_a_missing_bus_raises(emulator: Emulator) -> None:
    """PutEvents to a bus that does not exist is a SourceError naming the bus."""
    with pytest.raises(SourceError) as caught:
        eb.put_events(emulator.settings(bus="gone-bus"), [entry(0)])
    assert "gone-bus" in caught.value.message


# -- the SQS source ------------------------------------------------------------------------------


def test_events_flow_from_put_events_through_sqs_to_commit(
    settings: eb.AwsSettings, aws: tuple[EventBridgeClient, SQSClient]
) -> None:
    """put_events -> rule -> queue -> SqsSource commits exactly those events, then deletes them."""
    _, sqs = aws
    provisioned = eb.provision(settings)
    source = SqsSource(settings, provisioned)
    assert source.wait_seconds == 1  # local mode
    committed: list[Event] = []
    states: list[SourceState] = []
    in_flight_at_commit: list[int] = []

    async def commit(events: list[Event]) -> None:
        states.append(source.state)
        in_flight_at_commit.append(await asyncio.to_thread(queue_depth, sqs, provisioned.queue_url))
        committed.extend(events)

    async def scenario() -> list[str]:
        task = asyncio.create_task(source.run(commit))
        await async_wait_until(lambda: source.state is SourceState.POLLING, "polling")
        results = await asyncio.to_thread(eb.put_events, settings, [entry(n) for n in range(3)])
        ids = [str(r.event_id) for r in results]
        await async_wait_until(lambda: len(committed) >= 3 or task.done(), "3 commits")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return ids

    ids = asyncio.run(scenario())
    assert sorted(event.id for event in committed) == sorted(ids)
    assert sorted(event.detail["n"] for event in committed) == [0, 1, 2]
    assert {(e.source, e.detail_type) for e in committed} == {("test.orders", "Order Placed")}
    assert set(states) == {SourceState.POLLING}
    assert all(depth >= 1 for depth in in_flight_at_commit)  # not deleted before commit
    assert source.received == 3
    assert source.state is SourceState.STOPPED
    wait_until(lambda: queue_depth(sqs, provisioned.queue_url) == 0, "deletes after commit")


def test_failing_commit_keeps_the_messages_and_retries(
    settings: eb.AwsSettings, aws: tuple[EventBridgeClient, SQSClient]
) -> None:
    """A commit that raises leaves the messages in the queue; the source backs off and the same
    events are committed again (SQS redelivery; deduplication is the store's job)."""
    _, sqs = aws
    provisioned = eb.provision(settings)
    source = SqsSource(settings, provisioned)
    calls: list[list[str]] = []
    states_on_retry: list[SourceState] = []

    async def commit(events: list[Event]) -> None:
        calls.append(sorted(event.id for event in events))
        if len(calls) == 1:
            raise RuntimeError("disk full")
        states_on_retry.append(source.state)

    ids = [str(r.event_id) for r in eb.put_events(settings, [entry(0), entry(1)])]
    wait_until(lambda: queue_depth(sqs, provisioned.queue_url) == 2, "2 messages queued")
    asyncio.run(run_source(source, commit, lambda: len(calls) >= 2, "a retried commit"))
    committed = {event_id for call in calls for event_id in call}
    assert committed == set(ids)
    assert calls[0] == calls[1] == sorted(ids)  # the same events came back
    assert source.last_error == "commit failed: disk full"
    assert states_on_retry[0] is SourceState.POLLING
    wait_until(lambda: queue_depth(sqs, provisioned.queue_url) == 0, "deleted after commit")


def test_malformed_body_is_dropped_and_the_next_event_committed(
    settings: eb.AwsSettings,
    aws: tuple[EventBridgeClient, SQSClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A message that is not an EventBridge event is logged, deleted, and polling goes on."""
    _, sqs = aws
    provisioned = eb.provision(settings)
    sqs.send_message(QueueUrl=provisioned.queue_url, MessageBody="not an event")
    event_id = eb.put_events(settings, [entry(7)])[0].event_id
    committed: list[Event] = []

    async def commit(events: list[Event]) -> None:
        committed.extend(events)

    source = SqsSource(settings, provisioned)
    with caplog.at_level(logging.WARNING, logger="hook.sources"):
        asyncio.run(run_source(source, commit, lambda: bool(committed), "the good event"))
    assert [event.id for event in committed] == [event_id]
    assert source.received == 2
    warnings = [r for r in caplog.records if r.name == "hook.sources"]
    assert any("not an EventBridge event" in r.getMessage() for r in warnings)
    wait_until(lambda: queue_depth(sqs, provisioned.queue_url) == 0, "both deleted")


def test_a_redelivered_event_id_is_committed_again(
    settings: eb.AwsSettings, aws: tuple[EventBridgeClient, SQSClient]
) -> None:
    """The source does not deduplicate: the same event id twice reaches commit twice."""
    _, sqs = aws
    provisioned = eb.provision(settings)
    body = json.dumps(
        {"id": "same-id", "source": "s", "detail-type": "d", "detail": {}, "account": "1"}
    )
    for _ in range(2):
        sqs.send_message(QueueUrl=provisioned.queue_url, MessageBody=body)
    committed: list[Event] = []

    async def commit(events: list[Event]) -> None:
        committed.extend(events)

    source = SqsSource(settings, provisioned)
    asyncio.run(run_source(source, commit, lambda: len(committed) >= 2, "two commits"))
    assert [event.id for event in committed] == ["same-id", "same-id"]


def test_cancel_returns_at_once_and_gives_back_what_the_poll_got(
    settings: eb.AwsSettings,
) -> None:
    """Cancelling during a 20 s long poll returns without waiting for it; the abandoned poll
    makes what it receives visible again, so the next run gets it without the 60 s timeout."""
    provisioned = eb.provision(settings)
    committed: list[Event] = []

    async def commit(events: list[Event]) -> None:
        committed.extend(events)

    async def scenario() -> str:
        slow = SqsSource(settings, provisioned, wait_seconds=20)
        task = asyncio.create_task(slow.run(commit))
        await async_wait_until(lambda: slow.state is SourceState.POLLING, "polling")
        task.cancel()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), timeout=UNIT)
        assert slow.state is SourceState.STOPPED
        event_id = (await asyncio.to_thread(eb.put_events, settings, [entry(1)]))[0].event_id
        fresh = SqsSource(settings, provisioned)
        await run_source(fresh, commit, lambda: bool(committed), "the event after restart")
        return str(event_id)

    event_id = asyncio.run(scenario())
    assert [event.id for event in committed] == [event_id]


def test_unreachable_endpoint_backs_off_and_keeps_running(settings: eb.AwsSettings) -> None:
    """A refused connection is transient: BACKING_OFF with last_error, the task stays alive."""
    provisioned = eb.provision(settings)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = dataclasses.replace(settings, endpoint_url=f"http://127.0.0.1:{port}")
    source = SqsSource(closed, provisioned)

    async def never(events: list[Event]) -> None:
        raise AssertionError("nothing to commit")

    async def scenario() -> None:
        task = asyncio.create_task(source.run(never))
        try:
            await async_wait_until(
                lambda: source.state is SourceState.BACKING_OFF or task.done(), "backing off"
            )
            assert not task.done()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    assert source.last_error and "cannot reach" in source.last_error


def test_deleted_queue_stops_the_source_with_a_source_error(settings: eb.AwsSettings) -> None:
    """Retrying cannot bring back a deleted queue: run raises SourceError with a hint."""
    provisioned = eb.provision(settings)
    eb.teardown(settings)
    source = SqsSource(settings, provisioned)

    async def never(events: list[Event]) -> None:
        raise AssertionError("nothing to commit")

    with pytest.raises(SourceError) as caught:
        asyncio.run(asyncio.wait_for(source.run(never), timeout=UNIT))
    assert "no longer exists" in caught.value.message
    assert source.state is SourceState.STOPPED


@pytest.mark.parametrize(("wait", "batch"), [(21, 10), (0, 10), (1, 0), (1, 11)])
def test_source_rejects_sqs_limits(emulator: Emulator, wait: int, batch: int) -> None:
    """wait_seconds beyond 1-20 and batch beyond 1-10 are refused up front."""
    provisioned = eb.Provisioned("1", "r", "b", "arn", "url", "qarn", "rule", "rarn", created=())
    with pytest.raises(ConfigError):
        SqsSource(emulator.settings(), provisioned, wait_seconds=wait, batch=batch)
