"""EventBridge + SQS control plane: the relay's queue and rule on a bus; PutEvents for `hook send`.

Adapter (boto3). What a relay owns on a bus, all tagged ``hook:relay=<relay name>`` and
``hook:bus=<bus name>`` and found again by those tags (never by parsing names):

    EventBridge rule  <name>  on the bus, pattern {"source": [{"prefix": ""}]}, target: the queue
    SQS queue         <name>  SSE-SQS, 4 days retention, 20 s long poll, 60 s visibility,
                              policy: events.amazonaws.com may SendMessage, only from that rule

``provision`` is idempotent and rolls back what it created when a later step fails;
``teardown`` removes exactly those resources and is safe to run twice. Nothing here prints:
functions return data and raise ``SourceError`` (with a hint) for every AWS failure.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSOError,
    TokenRetrievalError,
)

from hookcli.config import is_loopback
from hookcli.errors import ConfigError, SourceError, UsageError
from hookcli.events import short_text

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType
    from mypy_boto3_sts.client import STSClient

#: Tag keys on everything a relay creates; teardown and re-provisioning find resources by them.
TAG_RELAY = "hook:relay"
TAG_BUS = "hook:bus"

#: Rule names are at most 64 characters, queue names 80; one name (the shorter limit) for both.
NAME_MAX = 64

#: Matches every event on the bus. EventBridge needs a non-empty pattern; every event has a
#: string ``source`` (PutEvents requires it) and the empty prefix matches every string
#: (EventBridge user guide, "Content filtering: prefix matching"). Unlike
#: {"account": ["<id>"]} it also matches events other accounts put on a shared bus.
EVENT_PATTERN: Mapping[str, Any] = {"source": [{"prefix": ""}]}

#: Queue settings (SQS API reference, CreateQueue attributes).
QUEUE_ATTRIBUTES: Mapping[QueueAttributeNameType, str] = {
    "SqsManagedSseEnabled": "true",
    "MessageRetentionPeriod": str(4 * 24 * 3600),
    "ReceiveMessageWaitTimeSeconds": "20",
    "VisibilityTimeout": "60",
}

#: The id of the queue target on the relay's rule.
TARGET_ID = "hook-relay-queue"

#: PutEvents takes at most 10 entries and 1 MiB per request (DESIGN.md: AWS raised the event
#: size limit from 256 KB to 1 MiB).
PUT_EVENTS_MAX_ENTRIES = 10
PUT_EVENTS_MAX_BYTES = 1024 * 1024

_CREDENTIAL_HINT = "set AWS_PROFILE or run `aws configure`, or use `hook relay serve --local`"
_RELAY_NAME = re.compile(r"^[A-Za-z0-9_.:/=+@-]{1,128}$")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_THROTTLING = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "LimitExceededException",
}
_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "AuthorizationError",
    "UnauthorizedOperation",
    "KMS.AccessDeniedException",
}
_BAD_CREDENTIALS = {
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "IncompleteSignature",
    "MissingAuthenticationToken",
}
_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}
_UNREACHABLE = (
    EndpointConnectionError,
    ConnectTimeoutError,
    ReadTimeoutError,
    ConnectionClosedError,
)


@dataclass(frozen=True, slots=True)
class AwsSettings:
    """Where the relay's source lives: a bus in an account and region, real or emulated."""

    bus: str = "default"
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    credentials: tuple[str, str] | None = None
    relay_name: str = "hook"

    def __repr__(self) -> str:
        # Never show the secret, even in a traceback or a debug log.
        keys = "(***)" if self.credentials else "None"
        return (
            f"AwsSettings(bus={self.bus!r}, region={self.region!r}, profile={self.profile!r}, "
            f"endpoint_url={self.endpoint_url!r}, credentials={keys}, "
            f"relay_name={self.relay_name!r})"
        )


@dataclass(frozen=True, slots=True)
class Provisioned:
    """The relay's resources on one bus, as ``provision`` found or created them."""

    account: str
    region: str
    bus: str
    bus_arn: str
    queue_url: str
    queue_arn: str
    rule_name: str
    rule_arn: str
    created: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PutResult:
    """The outcome of one PutEvents entry; ``index`` is its position in the input."""

    index: int
    event_id: str | None
    error_code: str | None = None
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        """True when EventBridge accepted the entry."""
        return self.error_code is None


# -- clients and error translation ---------------------------------------------------------


def client_config(read_timeout: float = 30.0, *, max_attempts: int = 4) -> Config:
    """Standard-mode retries (with throttling backoff) and timeouts above the 20 s long poll."""
    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=5,
        read_timeout=read_timeout,
        user_agent_extra="hookcli",
    )


def session(settings: AwsSettings) -> boto3.session.Session:
    """A boto3 session for ``settings``; explicit credentials never read ~/.aws or AWS_* keys."""
    try:
        if settings.credentials is None:
            return boto3.session.Session(profile_name=settings.profile, region_name=settings.region)
        # The emulator's static keys: cut the session off from AWS_PROFILE and the ~/.aws files
        # (session_vars replaces botocore's env var / config lookup for these names), so a local
        # run never reads, uses or prints real credentials.
        core = botocore.session.Session(
            session_vars={
                "profile": (None, None, None, None),
                "config_file": (None, None, os.devnull, None),
                "credentials_file": (None, None, os.devnull, None),
            }
        )
        access_key, secret_key = settings.credentials
        return boto3.session.Session(
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=settings.region,
            botocore_session=core,
        )
    except (BotoCoreError, ClientError) as exc:
        raise translate(exc, settings=settings) from exc


def _config_for(settings: AwsSettings, read_timeout: float) -> Config:
    if settings.endpoint_url is not None and is_loopback(
        urlsplit(settings.endpoint_url).hostname or ""
    ):
        # The emulator in this process: it does not throttle, and a refused connection means it
        # stopped, so surface that after one retry. Never send loopback traffic through an
        # HTTP(S)_PROXY from the environment.
        return client_config(read_timeout, max_attempts=2).merge(Config(proxies={}))
    return client_config(read_timeout)


def sqs_client(settings: AwsSettings, *, read_timeout: float = 30.0) -> SQSClient:
    """An SQS client for ``settings`` (the poller's; ``read_timeout`` above its wait time)."""
    boto = session(settings)
    try:
        return boto.client(
            "sqs",
            endpoint_url=settings.endpoint_url,
            config=_config_for(settings, read_timeout),
        )
    except (BotoCoreError, ClientError) as exc:
        raise translate(exc, settings=settings) from exc


@functools.lru_cache(maxsize=8)
def events_client(settings: AwsSettings) -> EventBridgeClient:
    """A shared EventBridge client for ``settings`` (all ``put_events`` needs).

    Cached: creating a boto3 client costs ~60 ms (it parses the service model), more than a
    PutEvents call; boto3 clients are thread-safe and refresh expiring credentials.
    """
    boto = session(settings)
    try:
        return boto.client(
            "events", endpoint_url=settings.endpoint_url, config=_config_for(settings, 30.0)
        )
    except (BotoCoreError, ClientError) as exc:
        raise translate(exc, settings=settings) from exc


def clients(settings: AwsSettings) -> tuple[EventBridgeClient, SQSClient, STSClient]:
    """EventBridge, SQS and STS clients sharing one session, endpoint and retry config."""
    boto = session(settings)
    config = _config_for(settings, 30.0)
    try:
        events = boto.client("events", endpoint_url=settings.endpoint_url, config=config)
        sqs = boto.client("sqs", endpoint_url=settings.endpoint_url, config=config)
        sts = boto.client("sts", endpoint_url=settings.endpoint_url, config=config)
    except (BotoCoreError, ClientError) as exc:
        raise translate(exc, settings=settings) from exc
    return events, sqs, sts


def error_code(exc: BaseException | None) -> str:
    """The AWS error code of a ClientError (``""`` for anything else)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_transient(exc: BaseException) -> bool:
    """True for failures worth retrying later: throttling, 5xx, timeouts, connection drops."""
    if isinstance(exc, _UNREACHABLE):
        return True
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in _THROTTLING or status >= 500 or code in {"InternalError", "InternalFailure"}
    return False


def translate(
    exc: BaseException,
    *,
    settings: AwsSettings | None = None,
    iam_action: str | None = None,
    doing: str | None = None,
) -> SourceError:
    """A SourceError for a botocore/boto3 exception, saying what to do next (never a secret)."""
    where = f" ({doing})" if doing else ""
    endpoint = (settings.endpoint_url if settings else None) or "AWS"
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
        return SourceError("no AWS credentials found", hint=_CREDENTIAL_HINT)
    if isinstance(exc, SSOError | TokenRetrievalError):
        return SourceError("the AWS SSO session has expired", hint="run `aws sso login`")
    if isinstance(exc, ProfileNotFound):
        profile = settings.profile if settings and settings.profile else "(AWS_PROFILE)"
        return SourceError(
            f"AWS profile {profile} not found",
            hint="run `aws configure list-profiles`, or set AWS_PROFILE to one of them",
        )
    if isinstance(exc, NoRegionError):
        return SourceError(
            "no AWS region set", hint="set AWS_REGION (or a region in your AWS profile)"
        )
    if isinstance(exc, _UNREACHABLE):
        return SourceError(
            f"cannot reach {endpoint}{where}: {type(exc).__name__}",
            hint="the embedded emulator stopped; restart the relay"
            if settings is not None and settings.endpoint_url
            else "check the network (and any proxy), and that the region exists",
        )
    if isinstance(exc, ClientError):
        code = error_code(exc)
        # One bounded line: an emulator or a proxy may answer with a whole HTML page.
        message = short_text(str(exc.response.get("Error", {}).get("Message", "")) or code, 200)
        operation = exc.operation_name
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _DENIED or (status == 403 and code not in _BAD_CREDENTIALS | _EXPIRED):
            action = iam_action or operation
            return SourceError(
                f"AWS denied {operation}{where}",
                hint=f"allow the IAM action {action} for this identity",
            )
        if code in _BAD_CREDENTIALS:
            return SourceError(
                f"AWS rejected the credentials ({code})",
                hint="check AWS_PROFILE / `aws configure`; keys may have been deleted or rotated",
            )
        if code in _EXPIRED:
            return SourceError(
                "the AWS credentials have expired",
                hint="refresh them (`aws sso login`, or new session credentials)",
            )
        if code in _THROTTLING:
            return SourceError(
                f"AWS throttled {operation}{where}",
                hint="retry in a moment; if it persists, another tool is using the same quota",
            )
        if code == "AWS.SimpleQueueService.QueueDeletedRecently" or code == "QueueDeletedRecently":
            return SourceError(
                f"the SQS queue was deleted less than 60 seconds ago{where}",
                hint="SQS refuses to re-create a queue name for 60 s after deleting it; retry then",
            )
        return SourceError(f"{operation} failed{where}: {short_text(code, 60)}: {message}")
    if isinstance(exc, BotoCoreError):
        return SourceError(f"AWS client error{where}: {exc}")
    return SourceError(f"unexpected AWS error{where}: {type(exc).__name__}: {exc}")


@contextmanager
def _aws(iam_action: str, doing: str, settings: AwsSettings) -> Iterator[None]:
    """Translate botocore exceptions raised inside the block into SourceError."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise translate(exc, settings=settings, iam_action=iam_action, doing=doing) from exc


# -- names and ownership ---------------------------------------------------------------------


def resource_name(relay_name: str, bus: str) -> str:
    """The rule and queue name for a relay on a bus: ``<relay>-<bus>``, at most 64 characters.

    Characters SQS or EventBridge refuse become ``-``; when that changed anything, or the name is
    too long, a stable 8-hex-digit hash of (relay, bus) keeps distinct pairs distinct.
    """
    wanted = f"{relay_name}-{bus}"
    safe = _NAME_UNSAFE.sub("-", wanted)
    if safe == wanted and len(safe) <= NAME_MAX:
        return safe
    digest = hashlib.sha256(f"{relay_name}\0{bus}".encode()).hexdigest()[:8]
    return f"{safe[: NAME_MAX - 9]}-{digest}"


def _check_relay_name(relay_name: str) -> None:
    # The name is a tag value on every resource: AWS tag values allow these characters.
    if not _RELAY_NAME.match(relay_name):
        raise ConfigError(
            f"relay name {relay_name!r} is not usable",
            hint="use 1-128 letters, digits and _ . : / = + @ -",
        )


def _tags(settings: AwsSettings, bus_name: str) -> dict[str, str]:
    return {TAG_RELAY: settings.relay_name, TAG_BUS: bus_name}


def _owned(tags: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(tags.get(key) == value for key, value in wanted.items())


def _bus_name(bus: str) -> str:
    # EventBusName accepts a name or an ARN (arn:aws:events:region:account:event-bus/NAME).
    return bus.rsplit("/", 1)[-1] if bus.startswith("arn:") else bus


def _describe_bus(events: EventBridgeClient, settings: AwsSettings) -> tuple[str, str] | None:
    """(name, arn) of the bus, or None when it does not exist."""
    try:
        with _aws("events:DescribeEventBus", f"looking up bus {settings.bus}", settings):
            bus = events.describe_event_bus(Name=settings.bus)
    except SourceError as exc:
        if error_code(exc.__cause__) == "ResourceNotFoundException":
            return None
        raise
    return bus["Name"], bus["Arn"]


@dataclass(frozen=True, slots=True)
class _Rule:
    name: str
    arn: str
    pattern: str | None
    state: str | None


def _find_rules(
    events: EventBridgeClient, settings: AwsSettings, bus_name: str, name: str
) -> tuple[list[_Rule], bool]:
    """The relay's rules on the bus (by tag), and whether a foreign rule holds ``name``.

    Candidates come from ListRules with the name as prefix; ownership is the tags alone.
    """
    wanted = _tags(settings, bus_name)
    owned: list[_Rule] = []
    foreign_holds_name = False
    with _aws("events:ListRules", f"listing rules on bus {bus_name}", settings):
        pages = events.get_paginator("list_rules").paginate(EventBusName=bus_name, NamePrefix=name)
        candidates = [rule for page in pages for rule in page.get("Rules", [])]
    for rule in candidates:
        arn = rule.get("Arn", "")
        doing = f"reading tags of rule {rule.get('Name')}"
        with _aws("events:ListTagsForResource", doing, settings):
            tag_list = events.list_tags_for_resource(ResourceARN=arn).get("Tags", [])
        tags = {tag["Key"]: tag["Value"] for tag in tag_list}
        if _owned(tags, wanted):
            owned.append(
                _Rule(rule.get("Name", ""), arn, rule.get("EventPattern"), rule.get("State"))
            )
        elif rule.get("Name") == name:
            foreign_holds_name = True
    return owned, foreign_holds_name


def _queue_tags(sqs: SQSClient, settings: AwsSettings, url: str) -> dict[str, str] | None:
    """The queue's tags, or None when it vanished meanwhile."""
    try:
        with _aws("sqs:ListQueueTags", "reading queue tags", settings):
            return dict(sqs.list_queue_tags(QueueUrl=url).get("Tags", {}))
    except SourceError as exc:
        if _queue_gone(exc):
            return None
        raise


def _queue_gone(exc: BaseException) -> bool:
    code = error_code(exc.__cause__ if isinstance(exc, SourceError) else exc)
    return code in {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


def _find_queues(
    sqs: SQSClient, settings: AwsSettings, bus_name: str, name: str
) -> tuple[list[str], bool]:
    """URLs of the relay's queues for the bus (by tag), and whether a foreign queue holds ``name``.

    Candidates: ListQueues with the name as prefix, plus GetQueueUrl for the exact name (a
    queue created a moment ago may not be listed yet). Ownership is the tags alone.
    """
    wanted = _tags(settings, bus_name)
    with _aws("sqs:ListQueues", "listing queues", settings):
        pages = sqs.get_paginator("list_queues").paginate(
            QueueNamePrefix=name, PaginationConfig={"PageSize": 1000}
        )
        urls = [url for page in pages for url in page.get("QueueUrls", [])]
    exact = next((url for url in urls if url.rsplit("/", 1)[-1] == name), None)
    if exact is None:
        try:
            with _aws("sqs:GetQueueUrl", f"looking up queue {name}", settings):
                exact = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            urls.append(exact)
        except SourceError as exc:
            if not _queue_gone(exc):
                raise
    owned: list[str] = []
    foreign_holds_name = False
    for url in urls:
        tags = _queue_tags(sqs, settings, url)
        if tags is None:
            continue
        if _owned(tags, wanted):
            owned.append(url)
        elif url == exact:
            foreign_holds_name = True
    owned.sort(key=lambda url: url != exact)  # the exact name first
    return owned, foreign_holds_name


def _queue_policy(queue_arn: str, rule_arn: str) -> str:
    """Only the relay's rule may send to the queue (EventBridge user guide, "Amazon SQS
    permissions": Principal events.amazonaws.com, Condition ArnEquals aws:SourceArn)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "HookRelayRuleSendMessage",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                }
            ],
        },
        separators=(",", ":"),
    )


# -- provision / teardown -------------------------------------------------------------------


def _account(sts: STSClient, settings: AwsSettings) -> str:
    with _aws("sts:GetCallerIdentity", "checking the AWS identity", settings):
        return sts.get_caller_identity()["Account"]


def _missing_bus(settings: AwsSettings, region: str) -> SourceError:
    return SourceError(
        f"event bus {settings.bus!r} not found in {region}",
        hint=f"list the buses with `aws events list-event-buses --region {region}`, "
        "or create one with `aws events create-event-bus --name NAME`",
    )


def provision(settings: AwsSettings) -> Provisioned:
    """Find or create the relay's queue and rule on the bus; idempotent, rolled back on failure.

    ``created`` lists what this call created (empty when everything already existed). An
    existing relay rule or queue is repaired in place (pattern, state, policy, target).
    """
    _check_relay_name(settings.relay_name)
    events, sqs, sts = clients(settings)
    account = _account(sts, settings)
    region = events.meta.region_name
    bus = _describe_bus(events, settings)
    if bus is None:
        raise _missing_bus(settings, region)
    bus_name, bus_arn = bus
    name = resource_name(settings.relay_name, bus_name)
    tags = _tags(settings, bus_name)
    pattern = json.dumps(EVENT_PATTERN, separators=(",", ":"))
    taken = "hook never changes resources it did not create; choose another relay name"

    rules, foreign_rule = _find_rules(events, settings, bus_name, name)
    queues, foreign_queue = _find_queues(sqs, settings, bus_name, name)
    if not rules and foreign_rule:
        raise SourceError(
            f"EventBridge rule {name!r} on bus {bus_name!r} exists and is not relay "
            f"{settings.relay_name!r}'s (no {TAG_RELAY} tag)",
            hint=taken,
        )
    if not queues and foreign_queue:
        raise SourceError(
            f"SQS queue {name!r} exists and is not relay {settings.relay_name!r}'s "
            f"(no {TAG_RELAY} tag)",
            hint=taken,
        )

    created: list[str] = []
    undo: list[tuple[str, str, Callable[[], object]]] = []
    try:
        if queues:
            queue_url = queues[0]
        else:
            with _aws("sqs:CreateQueue", f"creating queue {name}", settings):
                queue_url = sqs.create_queue(
                    QueueName=name, Attributes=dict(QUEUE_ATTRIBUTES), tags=tags
                )["QueueUrl"]
            created.append(f"SQS queue {name}")
            undo.append(
                (
                    f"SQS queue {name}",
                    "sqs:DeleteQueue",
                    lambda: sqs.delete_queue(QueueUrl=queue_url),
                )
            )
        with _aws("sqs:GetQueueAttributes", f"reading queue {name}", settings):
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]

        rule = rules[0] if rules else None
        if rule is None or rule.pattern != pattern or rule.state != "ENABLED":
            rule_name = rule.name if rule else name
            with _aws("events:PutRule", f"creating rule {rule_name} on bus {bus_name}", settings):
                rule_arn = events.put_rule(
                    Name=rule_name,
                    EventBusName=bus_name,
                    EventPattern=pattern,
                    State="ENABLED",
                    Description=f"hook relay {settings.relay_name}: every event on {bus_name} "
                    f"to SQS queue {name}",
                    Tags=[{"Key": key, "Value": value} for key, value in tags.items()],
                )["RuleArn"]
            if rule is None:
                created.append(f"EventBridge rule {rule_name} on bus {bus_name}")
                undo.append(
                    (
                        f"EventBridge rule {rule_name}",
                        "events:DeleteRule",
                        lambda: events.delete_rule(Name=rule_name, EventBusName=bus_name),
                    )
                )
        else:
            rule_name, rule_arn = rule.name, rule.arn

        with _aws("sqs:SetQueueAttributes", f"setting the policy of queue {name}", settings):
            sqs.set_queue_attributes(
                QueueUrl=queue_url, Attributes={"Policy": _queue_policy(queue_arn, rule_arn)}
            )
        with _aws("events:PutTargets", f"pointing rule {rule_name} at queue {name}", settings):
            response = events.put_targets(
                Rule=rule_name,
                EventBusName=bus_name,
                Targets=[{"Id": TARGET_ID, "Arn": queue_arn}],
            )
        if response.get("FailedEntryCount", 0):
            failed = response.get("FailedEntries", [{}])[0]
            raise SourceError(
                f"EventBridge refused queue {name} as target of rule {rule_name}: "
                f"{failed.get('ErrorCode')}: {failed.get('ErrorMessage')}"
            )
    except SourceError as exc:
        if not undo:
            raise
        problems = _rollback(undo, settings)
        message = (
            f"setting up relay {settings.relay_name!r} on bus {bus_name!r} failed: {exc.message}; "
            f"rolled back {', '.join(created)}"
        )
        if problems:
            message += f"; could not remove {', '.join(problems)}"
        hint = exc.hint
        if problems:
            hint = (hint + "; then " if hint else "") + "run `hook relay teardown` to clean up"
        raise SourceError(message, hint=hint) from exc

    return Provisioned(
        account=account,
        region=region,
        bus=bus_name,
        bus_arn=bus_arn,
        queue_url=queue_url,
        queue_arn=queue_arn,
        rule_name=rule_name,
        rule_arn=rule_arn,
        created=tuple(created),
    )


def _rollback(
    undo: list[tuple[str, str, Callable[[], object]]], settings: AwsSettings
) -> list[str]:
    """Undo in reverse order; returns what could not be removed (with the reason)."""
    problems: list[str] = []
    for what, iam_action, action in reversed(undo):
        try:
            with _aws(iam_action, f"rolling back {what}", settings):
                action()
        except SourceError as exc:
            problems.append(f"{what} ({exc.message})")
    return problems


def teardown(settings: AwsSettings) -> list[str]:
    """Remove the relay's rule (targets first) and queue on the bus, found by tag.

    Rules and queues without the relay's tags are never touched. Safe to run twice: a second
    run finds nothing and returns an empty list.
    """
    _check_relay_name(settings.relay_name)
    events, sqs, _ = clients(settings)
    bus = _describe_bus(events, settings)
    # A deleted bus takes no rules with it (DeleteEventBus needs them gone), but a queue may
    # remain: still look for it under the bus name.
    bus_name = bus[0] if bus else _bus_name(settings.bus)
    name = resource_name(settings.relay_name, bus_name)
    removed: list[str] = []

    rules = _find_rules(events, settings, bus_name, name)[0] if bus else []
    for rule in rules:
        with _aws("events:ListTargetsByRule", f"listing targets of rule {rule.name}", settings):
            pages = events.get_paginator("list_targets_by_rule").paginate(
                Rule=rule.name, EventBusName=bus_name
            )
            ids = [target["Id"] for page in pages for target in page.get("Targets", [])]
        for start in range(0, len(ids), 100):  # RemoveTargets takes at most 100 ids
            with _aws("events:RemoveTargets", f"removing targets of rule {rule.name}", settings):
                response = events.remove_targets(
                    Rule=rule.name, EventBusName=bus_name, Ids=ids[start : start + 100]
                )
            if response.get("FailedEntryCount", 0):
                failed = response.get("FailedEntries", [{}])[0]
                raise SourceError(
                    f"could not remove the targets of rule {rule.name}: "
                    f"{failed.get('ErrorCode')}: {failed.get('ErrorMessage')}",
                    hint="run `hook relay teardown` again",
                )
        if ids:
            removed.append(f"{len(ids)} target(s) of EventBridge rule {rule.name}")
        try:
            with _aws("events:DeleteRule", f"deleting rule {rule.name}", settings):
                events.delete_rule(Name=rule.name, EventBusName=bus_name)
        except SourceError as exc:
            if error_code(exc.__cause__) != "ResourceNotFoundException":
                raise
        else:
            removed.append(f"EventBridge rule {rule.name} on bus {bus_name}")

    for url in _find_queues(sqs, settings, bus_name, name)[0]:
        try:
            with _aws("sqs:DeleteQueue", "deleting queue", settings):
                sqs.delete_queue(QueueUrl=url)
        except SourceError as exc:
            if not _queue_gone(exc):
                raise
        else:
            removed.append(f"SQS queue {url.rsplit('/', 1)[-1]}")
    return removed


# -- put_events -------------------------------------------------------------------------------


def entry_size(entry: Mapping[str, Any]) -> int:
    """PutEvents entry size as AWS counts it (EventBridge user guide, "Calculating PutEvents
    event entry size"): 14 bytes for Time if set, plus the UTF-8 bytes of Source, DetailType,
    Detail and each Resource."""
    size = 14 if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        value = entry.get(key)
        if isinstance(value, str):
            size += len(value.encode("utf-8"))
    for resource in entry.get("Resources") or ():
        if isinstance(resource, str):
            size += len(resource.encode("utf-8"))
    return size


def _batches(
    entries: Sequence[Mapping[str, Any]], rejected: dict[int, PutResult]
) -> Iterator[list[int]]:
    """Indexes of the entries, in PutEvents-sized batches (≤10 entries, ≤1 MiB)."""
    batch: list[int] = []
    batch_bytes = 0
    for index, entry in enumerate(entries):
        if index in rejected:
            continue
        size = entry_size(entry)
        if batch and (
            len(batch) == PUT_EVENTS_MAX_ENTRIES or batch_bytes + size > PUT_EVENTS_MAX_BYTES
        ):
            yield batch
            batch, batch_bytes = [], 0
        batch.append(index)
        batch_bytes += size
    if batch:
        yield batch


def put_events(settings: AwsSettings, entries: Sequence[Mapping[str, Any]]) -> list[PutResult]:
    """Put entries (PutEvents request shape) on the bus; one PutResult per entry, in order.

    Entries without ``EventBusName`` go to ``settings.bus``. An entry EventBridge rejects (or one
    over 1 MiB, rejected here without sending) is reported in its PutResult; a failure of a
    whole request (credentials, no bus, throttled past retries) raises SourceError.
    """
    events = events_client(settings)
    results: dict[int, PutResult] = {}
    for index, entry in enumerate(entries):
        size = entry_size(entry)
        if size > PUT_EVENTS_MAX_BYTES:
            results[index] = PutResult(
                index,
                None,
                "EntryTooLarge",
                f"entry is {size} bytes; EventBridge takes at most {PUT_EVENTS_MAX_BYTES}",
            )
    for batch in _batches(entries, dict(results)):
        request: list[Any] = []
        for index in batch:
            entry = dict(entries[index])
            entry.setdefault("EventBusName", settings.bus)
            request.append(entry)
        try:
            with _aws("events:PutEvents", f"putting events on bus {settings.bus}", settings):
                response = events.put_events(Entries=request)
        except SourceError as exc:
            cause, message, hint = exc.__cause__, exc.message, exc.hint
            if error_code(cause) == "ResourceNotFoundException":
                missing = _missing_bus(settings, events.meta.region_name)
                message, hint = missing.message, missing.hint
            sent = sum(1 for result in results.values() if result.ok)
            if sent:
                message += f" (after {sent} of {len(entries)} events were put)"
            raise SourceError(message, hint=hint) from cause
        answers = response.get("Entries", [])
        for position, index in enumerate(batch):
            answer: Mapping[str, Any] = answers[position] if position < len(answers) else {}
            code = answer.get("ErrorCode")
            if answer.get("EventId") and not code:
                results[index] = PutResult(index, str(answer["EventId"]))
            else:
                results[index] = PutResult(
                    index,
                    None,
                    str(code or "NoResult"),
                    str(answer.get("ErrorMessage") or "EventBridge returned no result for it"),
                )
    return [results[index] for index in range(len(entries))]


# -- reading a user's rule (hook listen --from-rule) -------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleTargetInfo:
    """An existing rule's pattern and one target's input settings, as EventBridge keeps them."""

    name: str
    arn: str
    bus: str
    #: The rule's EventPattern text (None: a schedule rule).
    pattern: str | None
    #: The chosen target as ListTargetsByRule returns it (Id, Arn, Input/InputPath/
    #: InputTransformer); None when the rule has no target.
    target: Mapping[str, Any] | None


def read_rule(settings: AwsSettings, rule: str, target_id: str | None = None) -> RuleTargetInfo:
    """DescribeRule and ListTargetsByRule for ``rule`` on ``settings.bus``; reads, never writes.

    With several targets, ``target_id`` picks one; without it that is a UsageError listing the
    ids. A rule hook cannot find is a SourceError saying which bus was searched.
    """
    events = events_client(settings)
    bus = _bus_name(settings.bus)
    try:
        with _aws("events:DescribeRule", f"reading rule {rule} on bus {bus}", settings):
            described = events.describe_rule(Name=rule, EventBusName=settings.bus)
    except SourceError as exc:
        if error_code(exc.__cause__) == "ResourceNotFoundException":
            raise SourceError(
                f"no rule {rule!r} on bus {bus!r}",
                hint="check the name with `aws events list-rules --event-bus-name "
                f"{bus}`; a rule on another bus needs --bus",
            ) from exc.__cause__
        raise
    targets: list[Mapping[str, Any]] = []
    with _aws("events:ListTargetsByRule", f"listing targets of rule {rule}", settings):
        paginator = events.get_paginator("list_targets_by_rule")
        for page in paginator.paginate(Rule=rule, EventBusName=settings.bus):
            targets.extend(page.get("Targets", []))
    chosen: Mapping[str, Any] | None = None
    ids = [str(t.get("Id")) for t in targets]
    if target_id is not None:
        matching = [t for t in targets if t.get("Id") == target_id]
        if not matching:
            raise UsageError(
                f"rule {rule!r} has no target {target_id!r}",
                hint="its targets: " + (", ".join(ids) or "none"),
            )
        chosen = matching[0]
    elif len(targets) == 1:
        chosen = targets[0]
    elif len(targets) > 1:
        raise UsageError(
            f"rule {rule!r} has {len(targets)} targets; say whose input to imitate",
            hint="pass --target-id with one of: " + ", ".join(ids),
        )
    return RuleTargetInfo(
        name=str(described.get("Name", rule)),
        arn=str(described.get("Arn", "")),
        bus=str(described.get("EventBusName") or bus),
        pattern=described.get("EventPattern"),
        target=chosen,
    )


# -- archives and replays -------------------------------------------------------------------
#
# `hook replay --archive` replays an archive of the relay's bus onto the relay only: StartReplay
# with Destination.FilterArns = [the relay's rule], so production rules on the bus never see the
# replayed events (EventBridge user guide, "Replaying archived events": "Specify rules").

#: Replay names: 1-64 of ``[.-_A-Za-z0-9]`` (EventBridge API reference, StartReplay).
REPLAY_NAME_MAX = 64
_REPLAY_UNSAFE = re.compile(r"[^.\-_A-Za-z0-9]")
#: Replay states after which DescribeReplay will not change any more.
REPLAY_DONE = frozenset({"COMPLETED", "CANCELLED", "FAILED"})


@dataclass(frozen=True, slots=True)
class ArchiveInfo:
    """One archive of a bus, as ListArchives reports it (counts lag up to 24 h in AWS)."""

    name: str
    state: str
    retention_days: int
    event_count: int
    size_bytes: int
    created: datetime | None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ReplayStatus:
    """A replay as StartReplay / DescribeReplay report it."""

    name: str
    arn: str
    state: str
    reason: str = ""
    archive_arn: str = ""
    destination: str = ""
    filter_arns: tuple[str, ...] = ()
    event_start: datetime | None = None
    event_end: datetime | None = None
    #: How far the replay got: the event time of the last event replayed.
    event_last_replayed: datetime | None = None
    replay_start: datetime | None = None
    replay_end: datetime | None = None

    @property
    def done(self) -> bool:
        """True once the state is final (completed, cancelled or failed)."""
        return self.state in REPLAY_DONE


def replay_name(relay_name: str, now: datetime) -> str:
    """A replay name unique per second: ``hook-<relay>-<UTC time>`` (names stay taken 90 days)."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    relay = _REPLAY_UNSAFE.sub("-", relay_name)[: REPLAY_NAME_MAX - len(stamp) - 6]
    return f"hook-{relay}-{stamp}"


def list_archives(settings: AwsSettings) -> list[ArchiveInfo]:
    """The archives whose source is the bus (ListArchives filtered by the bus ARN)."""
    events = events_client(settings)
    bus = _describe_bus(events, settings)
    if bus is None:
        raise _missing_bus(settings, events.meta.region_name)
    found: list[ArchiveInfo] = []
    token: str | None = None
    while True:
        with _aws("events:ListArchives", f"listing the archives of bus {bus[0]}", settings):
            page = (
                events.list_archives(EventSourceArn=bus[1], NextToken=token)
                if token
                else events.list_archives(EventSourceArn=bus[1])
            )
        for item in page.get("Archives", []):
            found.append(
                ArchiveInfo(
                    name=str(item.get("ArchiveName", "")),
                    state=str(item.get("State", "")),
                    retention_days=int(item.get("RetentionDays", 0) or 0),
                    event_count=int(item.get("EventCount", 0) or 0),
                    size_bytes=int(item.get("SizeBytes", 0) or 0),
                    created=item.get("CreationTime"),
                    reason=str(item.get("StateReason", "") or ""),
                )
            )
        token = page.get("NextToken")
        if not token:
            return sorted(found, key=lambda archive: archive.name)


def start_replay(
    settings: AwsSettings, archive: str, since: datetime, until: datetime, name: str
) -> ReplayStatus:
    """Replay ``archive`` (events with a time in [since, until)) to the relay's rule only.

    The archive must be one of the relay's bus (EventBridge replays only to the bus that emitted
    the events), and the relay's rule is found by its tags, as ``provision`` made it.
    """
    events = events_client(settings)
    bus = _describe_bus(events, settings)
    if bus is None:
        raise _missing_bus(settings, events.meta.region_name)
    bus_name, bus_arn = bus
    try:
        with _aws("events:DescribeArchive", f"looking up archive {archive}", settings):
            described = events.describe_archive(ArchiveName=archive)
    except SourceError as exc:
        if error_code(exc.__cause__) == "ResourceNotFoundException":
            raise SourceError(
                f"no archive named {archive!r} in {events.meta.region_name}",
                hint="`hook relay archives` lists the archives of the relay's bus",
            ) from exc
        raise
    if described.get("EventSourceArn") != bus_arn:
        raise SourceError(
            f"archive {archive!r} archives {described.get('EventSourceArn')}, not the relay's "
            f"bus {bus_arn}",
            hint="EventBridge replays an archive only onto its own bus; "
            "`hook relay archives` lists the relay's",
        )
    name_prefix = resource_name(settings.relay_name, bus_name)
    rules, _ = _find_rules(events, settings, bus_name, name_prefix)
    if not rules:
        raise SourceError(
            f"relay {settings.relay_name!r} has no rule on bus {bus_name!r} to replay to",
            hint="start the relay (`hook relay serve --bus ...`), which creates its rule",
        )
    with _aws("events:StartReplay", f"starting a replay of archive {archive}", settings):
        started = events.start_replay(
            ReplayName=name,
            Description=f"hook: archive {archive} onto relay {settings.relay_name} only",
            EventSourceArn=str(described["ArchiveArn"]),
            EventStartTime=since,
            EventEndTime=until,
            Destination={"Arn": bus_arn, "FilterArns": [rule.arn for rule in rules]},
        )
    return ReplayStatus(
        name=name,
        arn=str(started.get("ReplayArn", "")),
        state=str(started.get("State", "STARTING")),
        reason=str(started.get("StateReason", "") or ""),
        archive_arn=str(described["ArchiveArn"]),
        destination=bus_arn,
        filter_arns=tuple(rule.arn for rule in rules),
        event_start=since,
        event_end=until,
        replay_start=started.get("ReplayStartTime"),
    )


def describe_replay(settings: AwsSettings, name: str) -> ReplayStatus:
    """The replay's state and progress (``event_last_replayed``) from DescribeReplay."""
    events = events_client(settings)
    with _aws("events:DescribeReplay", f"reading replay {name}", settings):
        data = events.describe_replay(ReplayName=name)
    destination = data.get("Destination", {})
    return ReplayStatus(
        name=str(data.get("ReplayName", name)),
        arn=str(data.get("ReplayArn", "")),
        state=str(data.get("State", "")),
        reason=str(data.get("StateReason", "") or ""),
        archive_arn=str(data.get("EventSourceArn", "")),
        destination=str(destination.get("Arn", "")),
        filter_arns=tuple(destination.get("FilterArns", []) or ()),
        event_start=data.get("EventStartTime"),
        event_end=data.get("EventEndTime"),
        event_last_replayed=data.get("EventLastReplayedTime"),
        replay_start=data.get("ReplayStartTime"),
        replay_end=data.get("ReplayEndTime"),
    )


def cancel_replay(settings: AwsSettings, name: str) -> str:
    """Ask EventBridge to stop the replay; returns the state it answers (``CANCELLING``)."""
    events = events_client(settings)
    with _aws("events:CancelReplay", f"cancelling replay {name}", settings):
        return str(events.cancel_replay(ReplayName=name).get("State", "CANCELLING"))
