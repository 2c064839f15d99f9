"""``hook listen --from-rule``: an existing EventBridge rule's pattern and its target's input.

The rule is read (never changed) with DescribeRule and ListTargetsByRule, on the bus named by
``--bus`` (AWS, boto3's usual credentials) or else on the bus the relay serves (``/v1/info``:
on the embedded default, the emulated bus). The pattern becomes the listener's pattern and the
target's Input / InputPath / InputTransformer what the local target receives.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from hookcli.client import RelayApi
from hookcli.config import Connection
from hookcli.errors import UsageError
from hookcli.patterns import compile_pattern
from hookcli.transform import RuleTarget, TargetInput


@dataclass(frozen=True, slots=True)
class RuleSource:
    """Which rule to imitate: its name, its bus (None: the relay's), and which target."""

    rule: str
    bus: str | None = None
    target_id: str | None = None


@dataclass(frozen=True, slots=True)
class LoadedRule:
    """What ``load_rule`` found: the pattern to listen with and the input to deliver."""

    pattern: dict[str, Any]
    rule_target: RuleTarget
    #: One line for the user: which rule, bus and target.
    summary: str


async def load_rule(source: RuleSource, connection: Connection) -> LoadedRule:
    """Read the rule and its target; UsageError / SourceError say what to fix."""
    from hookcli.sources.eventbridge import AwsSettings, read_rule

    if source.bus is not None:
        settings = AwsSettings(bus=source.bus)
    else:
        async with RelayApi.open(connection, timeout=10.0) as api:
            info = await api.info()
        if info.get("mode") == "ingest" or not info.get("bus"):
            raise UsageError(
                f"the relay at {connection.http_url} serves no EventBridge bus to read "
                f"rule {source.rule!r} from",
                hint="name the rule's bus with --bus (read from AWS)",
            )
        endpoint = info.get("endpoint_url") or None
        credentials = None
        if endpoint:
            from hookcli.sources.emulator import CREDENTIALS

            credentials = CREDENTIALS
        settings = AwsSettings(
            bus=str(info["bus"]),
            region=str(info.get("region") or "") or None,
            endpoint_url=endpoint,
            credentials=credentials,
        )
    found = await asyncio.to_thread(read_rule, settings, source.rule, source.target_id)
    if not found.pattern:
        raise UsageError(
            f"rule {found.name!r} has no event pattern (a schedule rule): nothing to listen for",
            hint="hook listens with event patterns; use --pattern instead",
        )
    try:
        pattern = json.loads(found.pattern)
    except ValueError as exc:
        raise UsageError(f"rule {found.name!r} has a pattern that is not JSON: {exc}") from exc
    compile_pattern(pattern)
    target_input = TargetInput.from_target(found.target) if found.target else TargetInput()
    which = f"target {found.target.get('Id')}" if found.target else "no target"
    summary = (
        f"Listening with rule {found.name}'s pattern (bus {found.bus}); {which} gets "
        f"{target_input.describe()}, and so does this listener's target."
    )
    return LoadedRule(pattern, RuleTarget(target_input, found.name, found.arn, found.bus), summary)
