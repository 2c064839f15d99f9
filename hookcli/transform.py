"""A rule target's input, exactly: ``Input``, ``InputPath`` and ``InputTransformer``, as on AWS.

Core module: stdlib only, no I/O (like ``patterns.py``). A target of an EventBridge rule gets the
event itself, or a constant ``Input``, or the part of the event an ``InputPath`` selects, or an
``InputTransformer``'s filled template; ``TargetInput.render`` produces that text, so a local
target sees what the real one would.

Sources for the behaviour (comments below cite them):
- the user guide's "Amazon EventBridge input transformation" page (eb-transform-target-input):
  supported JSONPath syntax, the predefined variables, the examples table, "Common issues";
- the API reference (``InputTransformer``, ``Target``): at most 100 paths, key pattern
  ``[A-Za-z0-9_-]+``, keys may not start with "AWS", lengths 256 / 8192;
- LocalStack's AWS-recorded snapshots (tests/aws/services/events/test_events_inputs): a missing
  path is an empty string, ``<aws.events.event>`` is the envelope without ``detail`` and with
  ``detailType``, a filled JSON template that is not valid JSON is not delivered, and the
  PutTargets error texts quoted in ``InvalidTransformError`` messages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from hookcli.errors import InvalidTransformError

#: API reference, ``InputTransformer.InputPathsMap``: "You can have as many as 100 key-value pairs."
MAX_PATHS = 100
#: API reference: ``TargetInputPath`` (InputPath and each InputPathsMap value) is at most 256.
MAX_PATH_LENGTH = 256
#: API reference: ``InputTransformerPathKey`` is 1 to 256 characters.
MAX_KEY_LENGTH = 256
#: API reference: ``TransformerInput`` (InputTemplate) and ``TargetInput`` (Input): 8192.
MAX_TEMPLATE_LENGTH = 8192

RULE_ARN = "aws.events.rule-arn"
RULE_NAME = "aws.events.rule-name"
EVENT = "aws.events.event"
EVENT_JSON = "aws.events.event.json"
INGESTION_TIME = "aws.events.event.ingestion-time"
#: The user guide's "Predefined variables": usable without a path, reserved as names.
PREDEFINED = (RULE_ARN, RULE_NAME, EVENT, EVENT_JSON, INGESTION_TIME)

_KEY = re.compile(r"[A-Za-z0-9_\-]+")
# "<" and ">" cannot be escaped (user guide, older revision): every <...> is a placeholder.
_PLACEHOLDER = re.compile(r"<([^<>]*)>")
_INDEX = re.compile(r"\[(\*|-?\d+)\]")
# The order EventBridge writes <aws.events.event>'s keys in (LocalStack's AWS recording).
_EVENT_KEYS = ("id", "account", "detail-type", "time", "source", "region", "resources", "version")


class _Missing:
    """A path that selects nothing (distinct from a JSON null)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True, slots=True)
class JsonPath:
    """EventBridge's JSONPath subset: ``$``, dot names, ``*``, ``[n]`` and ``[*]``.

    The user guide lists what is supported: dot notation, dashes, underscores, alphanumeric
    characters, array indices, wildcards, forward slashes; "You must use JSON dot notation, not
    bracket notation" (API reference). "There is no validation when creating JSON path for your
    template" (Common issues), so an unsupported spelling is not an error: it selects nothing.
    """

    text: str
    #: Each step: a name, ``*`` (every member), or an int / ``"[*]"`` (array index / every item).
    steps: tuple[str | int, ...] | None
    #: True once a wildcard is in the path: the result is then the list of every match.
    wildcard: bool

    @classmethod
    def parse(cls, text: str) -> JsonPath:
        """Split ``text`` into steps; a spelling outside the subset finds nothing."""
        return cls(text, *_steps(text))

    def find(self, document: Any) -> Any:
        """The value the path selects in ``document``, or ``MISSING``."""
        if self.steps is None:
            return MISSING
        found = _walk(document, self.steps)
        if self.wildcard:
            return found  # a (possibly empty) list, as Jayway's indefinite paths give
        return found[0] if found else MISSING


def _steps(text: str) -> tuple[tuple[str | int, ...] | None, bool]:
    if not text.startswith("$"):
        return None, False
    steps: list[str | int] = []
    wildcard = False
    rest = text[1:]
    while rest:
        if rest.startswith("["):
            index = _INDEX.match(rest)
            if index is None:  # ['name'] bracket notation, or junk: not supported
                return None, False
            if index.group(1) == "*":
                steps.append("[*]")
                wildcard = True
            else:
                steps.append(int(index.group(1)))
            rest = rest[index.end() :]
        elif rest.startswith("."):
            name = re.match(r"\.([^.\[]*)", rest)
            assert name is not None
            if not name.group(1):  # "$..x" (deep scan) and a trailing dot are not in the subset
                return None, False
            steps.append(name.group(1))
            wildcard = wildcard or name.group(1) == "*"
            rest = rest[name.end() :]
        else:
            return None, False
    return tuple(steps), wildcard


def _walk(value: Any, steps: tuple[str | int, ...]) -> list[Any]:
    current = [value]
    for step in steps:
        following: list[Any] = []
        for node in current:
            if step == "*":
                if isinstance(node, dict):
                    following.extend(node.values())
                elif isinstance(node, list):
                    following.extend(node)
            elif step == "[*]":
                if isinstance(node, list):
                    following.extend(node)
            elif isinstance(step, int):
                if isinstance(node, list) and -len(node) <= step < len(node):
                    following.append(node[step])
            elif isinstance(node, dict) and step in node:
                following.append(node[step])
        current = following
    return current


@dataclass(frozen=True, slots=True)
class RuleContext:
    """What the predefined variables name: the rule, and when EventBridge took the event in."""

    rule_name: str
    rule_arn: str
    #: ISO 8601; hook uses the event's ``time`` when nothing better is known.
    ingestion_time: str = ""


def rule_context(
    event: Mapping[str, Any], rule_name: str, rule_arn: str | None = None, bus: str = "default"
) -> RuleContext:
    """The context for ``event``: ``rule_arn`` as given, else the ARN the rule would have.

    A rule on the default bus is ``arn:aws:events:REGION:ACCOUNT:rule/NAME``; on a custom bus
    ``rule/BUS/NAME`` (LocalStack's AWS recording of ``<aws.events.rule-arn>``).
    """
    if rule_arn is None:
        region = str(event.get("region") or "us-east-1")
        account = str(event.get("account") or "000000000000")
        where = rule_name if bus in ("", "default") else f"{bus}/{rule_name}"
        rule_arn = f"arn:aws:events:{region}:{account}:rule/{where}"
    return RuleContext(rule_name, rule_arn, str(event.get("time") or ""))


@dataclass(frozen=True, slots=True)
class _Piece:
    """One placeholder in a template: where it is and whether it sits inside a JSON string."""

    start: int
    end: int
    name: str
    quoted: bool


@dataclass(frozen=True, slots=True)
class InputTransformer:
    """A parsed ``InputTransformer``: named paths and the template they fill."""

    paths: tuple[tuple[str, JsonPath], ...]
    template: str
    #: "If InputTemplate is a JSON object (surrounded by curly braces)" (API reference).
    is_json: bool
    pieces: tuple[_Piece, ...]

    @classmethod
    def parse(cls, data: Any, target_id: str = "hook") -> InputTransformer:
        """Validate an ``InputTransformer`` object; errors carry EventBridge's reason."""
        if not isinstance(data, Mapping):
            raise InvalidTransformError(
                "an input transformer is a JSON object with InputPathsMap and InputTemplate",
                hint=_HINT,
            )
        unknown = sorted(set(data) - {"InputPathsMap", "InputTemplate"})
        if unknown:
            raise InvalidTransformError(
                f"unknown field {unknown[0]!r} in the input transformer", hint=_HINT
            )
        template = data.get("InputTemplate")
        if not isinstance(template, str):
            raise InvalidTransformError(
                "InputTemplate is required and must be a string", hint=_HINT
            )
        _check_length("inputTransformer.inputTemplate", template, 1, MAX_TEMPLATE_LENGTH)
        paths_map = data.get("InputPathsMap", {})
        if paths_map is None:
            paths_map = {}
        if not isinstance(paths_map, Mapping):
            raise InvalidTransformError("InputPathsMap must be an object of NAME: JSON path")
        if len(paths_map) > MAX_PATHS:
            raise InvalidTransformError(
                f"1 validation error detected: Value at 'inputTransformer.inputPathsMap' failed "
                f"to satisfy constraint: Member must have length less than or equal to "
                f"{MAX_PATHS} (it has {len(paths_map)})",
                hint="EventBridge allows at most 100 variables in InputPathsMap",
            )
        paths: list[tuple[str, JsonPath]] = []
        for key, path in paths_map.items():
            _check_key(key)
            if not isinstance(path, str):
                raise InvalidTransformError(f"InputPathsMap[{key!r}] must be a JSON path string")
            _check_length(f"inputTransformer.inputPathsMap[{key!r}]", path, 0, MAX_PATH_LENGTH)
            paths.append((key, JsonPath.parse(path)))
        is_json = template.lstrip().startswith("{")
        pieces = _pieces(template, is_json)
        names = {key for key, _ in paths}
        for piece in pieces:
            if piece.name not in names and piece.name not in PREDEFINED:
                # PutTargets' own text (LocalStack's AWS recording).
                raise InvalidTransformError(
                    f"InputTemplate for target {target_id} contains invalid placeholder "
                    f"{piece.name}.",
                    hint=f"define {piece.name!r} in InputPathsMap, or use one of the predefined "
                    "variables: " + ", ".join(PREDEFINED),
                )
        transformer = cls(tuple(paths), template, is_json, pieces)
        if is_json:
            transformer._check_json_shape()
        return transformer

    def values(self, event: Mapping[str, Any], context: RuleContext) -> dict[str, Any]:
        """Every variable's value for ``event`` (``MISSING`` where a path finds nothing)."""
        found: dict[str, Any] = {key: path.find(event) for key, path in self.paths}
        found[RULE_ARN] = context.rule_arn
        found[RULE_NAME] = context.rule_name
        found[INGESTION_TIME] = context.ingestion_time
        found[EVENT] = _event_without_detail(event, context)
        found[EVENT_JSON] = dict(event)
        return found

    def fill(self, event: Mapping[str, Any], context: RuleContext) -> str:
        """The filled template: what the target receives. Raises TransformError if EventBridge
        would drop the event (a JSON template whose filled text is not JSON)."""
        values = self.values(event, context)
        out: list[str] = []
        position = 0
        for piece in self.pieces:
            out.append(self.template[position : piece.start])
            value = values[piece.name]
            if self.is_json and not piece.quoted:
                out.append(_json_text(value))
            else:
                out.append(_plain_text(value, self.is_json))
            position = piece.end
        out.append(self.template[position:])
        text = "".join(out)
        if not self.is_json:
            return text
        try:
            json.loads(text)
        except (ValueError, RecursionError) as exc:
            # LocalStack's AWS-validated "nested keys replacement not valid" cases: such an
            # event is silently not delivered. hook says so instead of staying silent.
            raise TransformError(
                f"the filled InputTemplate is not valid JSON ({exc}); EventBridge would not "
                "deliver this event to the target"
            ) from exc
        # "The JSON that is passed to the target is minified" (Common issues).
        return minify(text)

    def _check_json_shape(self) -> None:
        """A JSON template must be JSON once filled; a placeholder cannot be an object key."""
        probe: list[str] = []
        position = 0
        for piece in self.pieces:
            if not piece.quoted and self.template[piece.end :].lstrip().startswith(":"):
                # API reference: "The placeholder cannot be used as an object key."
                raise InvalidTransformError(
                    f"InputTemplate: the placeholder <{piece.name}> cannot be used as an "
                    "object key",
                    hint='use placeholders as values: {"key": <value>}',
                )
            probe.append(self.template[position : piece.start])
            probe.append("x" if piece.quoted else "null")
            position = piece.end
        probe.append(self.template[position:])
        try:
            json.loads("".join(probe))
        except (ValueError, RecursionError) as exc:
            raise InvalidTransformError(
                f"InputTemplate starts with '{{' but is not valid JSON with its placeholders "
                f"filled: {exc}",
                hint="a placeholder cannot be an object key; quote literal text, e.g. "
                '{"state": <state>, "text": "is <state>"}',
            ) from exc


class TransformError(Exception):
    """This event cannot be given to the target as configured (EventBridge would drop it)."""


@dataclass(frozen=True, slots=True)
class TargetInput:
    """How a rule's target gets its input: the event, a constant, a path, or a transformer."""

    kind: Literal["event", "constant", "path", "transformer"] = "event"
    constant: str | None = None
    path: JsonPath | None = None
    transformer: InputTransformer | None = None

    @classmethod
    def from_target(cls, target: Mapping[str, Any]) -> TargetInput:
        """From ``ListTargetsByRule`` target: at most one of Input, InputPath, InputTransformer."""
        target_id = str(target.get("Id") or "hook")
        given = [k for k in ("Input", "InputPath", "InputTransformer") if target.get(k)]
        if len(given) > 1:
            # PutTargets' own text (LocalStack's AWS recording).
            raise InvalidTransformError(
                f"Only one of Input, InputPath, or InputTransformer must be provided for "
                f"target {target_id}."
            )
        if "Input" in given:
            return cls.constant_input(str(target["Input"]))
        if "InputPath" in given:
            return cls.input_path(str(target["InputPath"]))
        if "InputTransformer" in given:
            return cls(
                "transformer",
                transformer=InputTransformer.parse(target["InputTransformer"], target_id),
            )
        return cls()

    @classmethod
    def input_path(cls, text: str) -> TargetInput:
        """``InputPath``: the target gets the JSON of what the path selects."""
        _check_length("inputPath", text, 0, MAX_PATH_LENGTH)
        return cls("path", path=JsonPath.parse(text))

    @classmethod
    def constant_input(cls, text: str) -> TargetInput:
        """``Input``: the target gets this JSON text instead of the event."""
        _check_length("input", text, 0, MAX_TEMPLATE_LENGTH)
        try:
            json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise InvalidTransformError(f"Input is not valid JSON: {exc}") from exc
        return cls("constant", constant=text)

    @property
    def is_event(self) -> bool:
        """True when the target gets the event unchanged."""
        return self.kind == "event"

    def describe(self) -> str:
        """One short phrase for the "listening" line."""
        if self.kind == "path":
            assert self.path is not None
            return f"InputPath {self.path.text}"
        if self.kind == "transformer":
            return "InputTransformer"
        return "Input (constant)" if self.kind == "constant" else "the event"

    def render(self, event: Mapping[str, Any], context: RuleContext) -> str:
        """The exact text the target receives for ``event``; raises TransformError if none."""
        if self.kind == "constant":
            assert self.constant is not None
            return self.constant
        if self.kind == "path":
            assert self.path is not None
            value = self.path.find(event)
            if value is MISSING:
                # Nothing selected: the target gets no input at all. hook has no empty
                # delivery to make, so it says so (LocalStack logs "No event to send").
                raise TransformError(
                    f"InputPath {self.path.text} selects nothing in this event; EventBridge "
                    "would give the target no input"
                )
            return _json_text(value)
        if self.kind == "transformer":
            assert self.transformer is not None
            return self.transformer.fill(event, context)
        return json.dumps(dict(event), separators=(",", ":"), ensure_ascii=False)


_HINT = (
    'e.g. {"InputPathsMap": {"state": "$.detail.state"}, "InputTemplate": '
    '"\\"state is <state>\\""} (the InputTransformer of `aws events list-targets-by-rule`)'
)


def _check_length(where: str, text: str, low: int, high: int) -> None:
    if len(text) < low:
        raise InvalidTransformError(
            f"1 validation error detected: Value at '{where}' failed to satisfy constraint: "
            f"Member must have length greater than or equal to {low}"
        )
    if len(text) > high:
        raise InvalidTransformError(
            f"1 validation error detected: Value at '{where}' failed to satisfy constraint: "
            f"Member must have length less than or equal to {high} (it has {len(text)})"
        )


def _check_key(key: Any) -> None:
    """InputPathsMap keys: ``[A-Za-z0-9_-]+``, 1-256 characters, not starting with "AWS"."""
    if not isinstance(key, str) or not key:
        raise InvalidTransformError("an InputPathsMap name must be a non-empty string")
    if key in PREDEFINED:
        raise InvalidTransformError(
            f"InputPathsMap name {key!r} is reserved: it is a predefined variable",
            hint="use it in InputTemplate without defining it",
        )
    if len(key) > MAX_KEY_LENGTH:
        _check_length("inputTransformer.inputPathsMap.key", key, 1, MAX_KEY_LENGTH)
    if not _KEY.fullmatch(key):
        raise InvalidTransformError(
            f"1 validation error detected: Value '{key}' at 'inputTransformer.inputPathsMap' "
            "failed to satisfy constraint: Map keys must satisfy constraint: [Member must "
            "satisfy regular expression pattern: [A-Za-z0-9\\_\\-]+]",
            hint="variable names use letters, digits, _ and - only",
        )
    if key.startswith("AWS"):
        raise InvalidTransformError(
            f'InputPathsMap name {key!r} starts with "AWS", which EventBridge reserves',
            hint="rename the variable",
        )


def _pieces(template: str, is_json: bool) -> tuple[_Piece, ...]:
    """Every placeholder with whether it sits inside a JSON string (JSON templates only)."""
    pieces = []
    quoted = False
    escaped = False
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        if is_json:
            for char in template[position : match.start()]:
                if escaped:
                    escaped = False
                elif char == "\\" and quoted:
                    escaped = True
                elif char == '"':
                    quoted = not quoted
        pieces.append(_Piece(match.start(), match.end(), match.group(1), quoted or not is_json))
        position = match.end()
    return tuple(pieces)


def _event_without_detail(event: Mapping[str, Any], context: RuleContext) -> dict[str, Any]:
    """``<aws.events.event>``: the envelope without ``detail`` ("detail-type" as "detailType").

    The current user guide: "The original event payload as JSON (without the detail field)";
    LocalStack's AWS recording shows the key order and the ``detailType`` spelling.
    """
    out: dict[str, Any] = {}
    for key in _EVENT_KEYS:
        if key in event:
            out["detailType" if key == "detail-type" else key] = event[key]
    for key, value in event.items():
        if key not in _EVENT_KEYS and key != "detail":
            out[key] = value
    if context.ingestion_time and "time" in out:
        out["time"] = context.ingestion_time
    return out


def _json_text(value: Any) -> str:
    """A bare placeholder in a JSON template: the value as JSON (a string gets its quotes).

    User guide, "Simple JSON": ``"instance" : <instance>`` gives ``"instance" : "i-0123456789"``.
    A missing path gives ``""`` (LocalStack's AWS recording: ``"command": ""``).
    """
    if value is MISSING:
        return '""'
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _plain_text(value: Any, in_json: bool) -> str:
    """A placeholder in a string: the text itself, unescaped.

    "EventBridge doesn't escape values extracted by Input Path" (Common issues): a string goes
    in as is (a quote inside it breaks a JSON template, as on AWS). Inside a JSON template's
    string an object or array goes in as JSON (and so breaks it: not delivered, as on AWS); in
    a string template it goes in with its quotes dropped (LocalStack's AWS-matched rendering).
    """
    if value is MISSING:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list) and not in_json:
        return _unquoted(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _unquoted(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_unquoted(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_unquoted(v) for v in value) + "]"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def minify(text: str) -> str:
    """JSON text without the whitespace between tokens; strings and numbers kept as written."""
    out: list[str] = []
    quoted = escaped = False
    for char in text:
        if quoted:
            out.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
            out.append(char)
        elif char not in " \t\r\n":
            out.append(char)
    return "".join(out)


def load_transformer(text: str, what: str = "input transformer") -> InputTransformer:
    """Parse ``--input-transformer`` JSON text: an InputTransformer, or a target holding one."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidTransformError(f"{what} is not valid JSON: {exc}", hint=_HINT) from exc
    if isinstance(data, Mapping) and "InputTransformer" in data:
        return InputTransformer.parse(data["InputTransformer"], str(data.get("Id") or "hook"))
    return InputTransformer.parse(data)


@dataclass(frozen=True, slots=True)
class RuleTarget:
    """A target's input settings with the rule they belong to: what ``hook listen`` imitates."""

    input: TargetInput
    rule_name: str
    #: From DescribeRule with --from-rule; else built from each event's region and account.
    rule_arn: str | None = None
    bus: str = "default"

    def render(self, event: Mapping[str, Any]) -> str:
        """The text the target receives for ``event``; raises TransformError if none."""
        return self.input.render(
            event, rule_context(event, self.rule_name, self.rule_arn, self.bus)
        )
