"""The target's input, exactly: InputPath, InputTransformer and Input as EventBridge applies them.

Table-driven. Each case names its source:
- UG: the user guide's "Amazon EventBridge input transformation" page (eb-transform-target-input),
  its examples table over the EC2 example event and the Input Path
  ``{"timestamp": "$.time", "instance": "$.detail.instance-id", "state": "$.detail.state"}``;
- API: the API reference's ``InputTransformer`` page (its three examples use
  ``$.detail.instance`` and ``$.detail.status``);
- LS: LocalStack's tests recorded against real AWS (tests/aws/services/events/
  test_events_inputs.snapshot.json), for what the guide leaves open.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from hookcli.delivery import with_input
from hookcli.errors import InvalidTransformError
from hookcli.events import Event, EventId, RawRequest, parse_event
from hookcli.transform import (
    MAX_PATHS,
    MISSING,
    InputTransformer,
    JsonPath,
    RuleContext,
    RuleTarget,
    TargetInput,
    TransformError,
    load_transformer,
    minify,
    rule_context,
)

# UG: "The following is an example Amazon EC2 event."
EC2 = {
    "version": "0",
    "id": "7bf73129-1428-4cd3-a780-95db273d1602",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "123456789012",
    "time": "2015-11-11T21:29:54Z",
    "region": "us-east-1",
    "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
    "detail": {"instance-id": "i-0123456789", "state": "RUNNING"},
}
# UG: the Input Path entered in the console's first text box.
UG_PATHS = {"timestamp": "$.time", "instance": "$.detail.instance-id", "state": "$.detail.state"}
# UG: the reserved-variables examples show this rule.
UG_RULE = RuleContext(
    "example", "arn:aws:events:us-east-2:123456789012:rule/example", "2015-11-11T21:29:54Z"
)
# API: the API reference's examples read $.detail.instance and $.detail.status.
API_EVENT = {**EC2, "detail": {"instance": "i-0123456789", "status": "RUNNING"}}
API_PATHS = {"instance": "$.detail.instance", "status": "$.detail.status"}
# A detail with every JSON type, for the edge cases.
RICH = {
    **EC2,
    "detail": {
        "n": 42,
        "f": 1.5,
        "yes": True,
        "nothing": None,
        "list": ["a", "b"],
        "obj": {"k": "v", "m": 1},
        "quote": 'say "hi"',
        "newline": "one\ntwo",
        "unicode": "caf\u00e9 \u2603",
        "items": [{"id": 1}, {"id": 2}, {"other": 3}],
        "empty": "",
    },
}


def fill(paths: dict[str, str], template: str, event: dict[str, Any] = EC2) -> str:
    return InputTransformer.parse({"InputPathsMap": paths, "InputTemplate": template}).fill(
        event, UG_RULE
    )


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # UG "Simple string": a string template keeps its quotes; values go in as text.
        ('"instance <instance> is in <state>"', '"instance i-0123456789 is in RUNNING"'),
        # UG "String with escaped quotes": the console's output (the template's backslashes
        # stay; the guide notes the AWS CLI shows them unescaped, which is display only).
        (
            '"instance \\"<instance>\\" is in <state>"',
            '"instance \\"i-0123456789\\" is in RUNNING"',
        ),
        # UG "Simple JSON": a bare placeholder holding a string gets quotes; the JSON is
        # minified ("The JSON that is passed to the target is minified", Common issues).
        (
            '{\n  "instance" : <instance>,\n  "state": <state>\n}',
            '{"instance":"i-0123456789","state":"RUNNING"}',
        ),
        # UG "JSON with strings and variables": inside a JSON string the value goes in as text.
        (
            '{\n "instance" : <instance>,\n "state": "<state>",\n'
            ' "instanceStatus": "instance \\"<instance>\\" is in <state>"\n}',
            '{"instance":"i-0123456789","state":"RUNNING",'
            '"instanceStatus":"instance \\"i-0123456789\\" is in RUNNING"}',
        ),
        # UG "JSON with a mix of variables and static information": literals stay as written.
        (
            '{\n  "instance" : <instance>,\n  "state": [ 9, <state>, true ],\n'
            '  "Transformed" : "Yes"\n}\n',
            '{"instance":"i-0123456789","state":[9,"RUNNING",true],"Transformed":"Yes"}',
        ),
        # UG "Including reserved variables in a string".
        ('"<aws.events.rule-name> triggered"', '"example triggered"'),
        # UG "Amazon CloudWatch log group": the guide prints what CloudWatch Logs shows
        # (an unquoted timestamp, unescaped quotes), which is that target's own rendering of
        # the log event; the input EventBridge builds follows the general rules above.
        (
            '{\n  "timestamp" : <timestamp>,\n  "message": "instance \\"<instance>\\" is in '
            '<state>"\n}',
            '{"timestamp":"2015-11-11T21:29:54Z",'
            '"message":"instance \\"i-0123456789\\" is in RUNNING"}',
        ),
    ],
    ids=[
        "ug-simple-string",
        "ug-escaped-quotes",
        "ug-simple-json",
        "ug-json-strings-and-variables",
        "ug-json-mix-static",
        "ug-reserved-in-string",
        "ug-cloudwatch-log-group",
    ],
)
def test_user_guide_examples(template: str, expected: str) -> None:
    """Each example of the user guide's table gives the guide's output for the EC2 event."""
    assert fill(UG_PATHS, template) == expected


def test_user_guide_reserved_variables_in_json() -> None:
    """UG "Including reserved variables in JSON": rule ARN and name quoted, the event an object.

    The guide elides originalEvent ("commented for brevity"); LS records its shape: the
    envelope without ``detail``, "detail-type" spelled "detailType", keys in AWS's order.
    """
    template = (
        '{"instance" : <instance>, "state": <state>, "ruleArn" : <aws.events.rule-arn>,'
        ' "ruleName" : <aws.events.rule-name>, "originalEvent" : <aws.events.event>}'
    )
    output = json.loads(fill(UG_PATHS, template))
    assert output["instance"] == "i-0123456789" and output["state"] == "RUNNING"
    assert output["ruleArn"] == "arn:aws:events:us-east-2:123456789012:rule/example"
    assert output["ruleName"] == "example"
    assert list(output["originalEvent"]) == [
        "id",
        "account",
        "detailType",
        "time",
        "source",
        "region",
        "resources",
        "version",
    ]
    assert output["originalEvent"]["detailType"] == EC2["detail-type"]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # API: "<instance> is in state <status>" (no surrounding quotes: text as is).
        ("<instance> is in state <status>", "i-0123456789 is in state RUNNING"),
        # API: quote marks escaped with a slash stay in the text.
        ('<instance> is in state \\"<status>\\"', 'i-0123456789 is in state \\"RUNNING\\"'),
        # API: "valid JSON with variables in quotes or out".
        (
            '{"myInstance": <instance>,"myStatus": "<instance> is in state \\"<status>\\""}',
            '{"myInstance":"i-0123456789","myStatus":"i-0123456789 is in state \\"RUNNING\\""}',
        ),
    ],
    ids=["api-plain", "api-escaped-quotes", "api-json"],
)
def test_api_reference_examples(template: str, expected: str) -> None:
    """The API reference's InputTransformer examples."""
    assert fill(API_PATHS, template, API_EVENT) == expected


@pytest.mark.parametrize(
    ("path", "template", "expected"),
    [
        # LS: a missing path in a JSON template is an empty string ("command": "").
        ("$.detail.notinmessage", '{"command": <v>}', '{"command":""}'),
        # LS: ... and nothing at all in a string template.
        ("$.detail.notinmessage", '"info <v>"', '"info "'),
        ("$.detail.notinmessage", '{"text": "a<v>b"}', '{"text":"ab"}'),
        # Numbers and booleans: JSON text, bare or in a string.
        ("$.detail.n", '{"v": <v>}', '{"v":42}'),
        ("$.detail.n", '{"v": "<v>"}', '{"v":"42"}'),
        ("$.detail.f", '"<v> units"', '"1.5 units"'),
        ("$.detail.yes", '{"v": <v>}', '{"v":true}'),
        ("$.detail.yes", '"Command is <v>!"', '"Command is true!"'),
        # A JSON null is a value (not a missing path): null.
        ("$.detail.nothing", '{"v": <v>}', '{"v":null}'),
        ("$.detail.empty", '{"v": <v>}', '{"v":""}'),
        # Arrays and objects: JSON bare in a JSON template; in a string template their text
        # without quotes (LS's AWS-matched rendering).
        ("$.detail.list", '{"v": <v>}', '{"v":["a","b"]}'),
        ("$.detail.list", '"<v> multiple list items"', '"[a,b] multiple list items"'),
        ("$.detail.obj", '{"v": <v>}', '{"v":{"k":"v","m":1}}'),
        ("$.detail.obj", '"Payload of <v>"', '"Payload of {k:v,m:1}"'),
        # A string with quotes or a newline, bare in JSON: escaped, so still JSON.
        ("$.detail.quote", '{"v": <v>}', '{"v":"say \\"hi\\""}'),
        ("$.detail.newline", '{"v": <v>}', '{"v":"one\\ntwo"}'),
        # ... in a string template: inserted as is ("EventBridge doesn't escape values").
        ("$.detail.quote", '"<v>"', '"say "hi""'),
        ("$.detail.newline", '"<v>"', '"one\ntwo"'),
        ("$.detail.unicode", '{"v": <v>}', '{"v":"caf\u00e9 \u2603"}'),
        # Array indices, negative too (Jayway), and wildcards (a list of every match).
        (
            "$.resources[0]",
            '{"v": <v>}',
            '{"v":"arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"}',
        ),
        ("$.detail.list[-1]", '{"v": <v>}', '{"v":"b"}'),
        ("$.detail.list[5]", '{"v": <v>}', '{"v":""}'),
        ("$.detail.items[*].id", '{"v": <v>}', '{"v":[1,2]}'),
        ("$.detail.items[1]", '{"v": <v>}', '{"v":{"id":2}}'),
        ("$.detail.obj.*", '{"v": <v>}', '{"v":["v",1]}'),
        # "$" is the whole event; bracket notation is not supported (dot notation only).
        ("$['detail']", '{"v": <v>}', '{"v":""}'),
        ("detail.n", '{"v": <v>}', '{"v":""}'),
        ("$.detail..n", '{"v": <v>}', '{"v":""}'),
    ],
)
def test_values_by_type_and_position(path: str, template: str, expected: str) -> None:
    """How each kind of value goes into a JSON or string template, bare or inside quotes."""
    assert fill({"v": path}, template, RICH) == expected


def test_whitespace_in_json_template_strings_is_kept_while_the_rest_is_minified() -> None:
    """Minifying drops the space between tokens, never inside a string."""
    assert fill({"v": "$.detail.n"}, '{ "a b" : [ <v> , "x  y" ] }', RICH) == '{"a b":[42,"x  y"]}'
    assert minify('{ "k\\" " : 1.50e3 }') == '{"k\\" ":1.50e3}'


@pytest.mark.parametrize(
    ("path", "template"),
    [
        # LS "nested keys replacement not valid": an object or list inside quotes, or a
        # value whose quotes end the string early, leaves invalid JSON: not delivered.
        ("$.detail.obj", '{"payload": "<v>"}'),
        ("$.detail.list", '{"singlelistitem": "<v>"}'),
        ("$.detail.quote", '{"v": "<v>"}'),
        # A raw newline is a control character JSON strings may not hold.
        ("$.detail.newline", '{"v": "<v>"}'),
    ],
)
def test_filled_json_template_that_is_not_json_delivers_nothing(path: str, template: str) -> None:
    """EventBridge drops such an event; hook says why instead of delivering broken JSON."""
    with pytest.raises(TransformError, match="not valid JSON"):
        fill({"v": path}, template, RICH)


def test_predefined_variables_in_a_string_on_a_custom_bus() -> None:
    """LS: rule ARN ``rule/BUS/NAME`` on a custom bus, rule name, ingestion time as text."""
    spec = RuleTarget(
        TargetInput(
            "transformer",
            transformer=InputTransformer.parse(
                {
                    "InputTemplate": '"all <aws.events.rule-arn> <aws.events.rule-name> '
                    '<aws.events.event.ingestion-time>"'
                }
            ),
        ),
        "orders-rule",
        bus="orders",
    )
    assert spec.render(EC2) == (
        '"all arn:aws:events:us-east-1:123456789012:rule/orders/orders-rule orders-rule '
        '2015-11-11T21:29:54Z"'
    )


def test_event_json_variable_is_the_whole_event() -> None:
    """LS: ``<aws.events.event.json>`` is the full event, detail included, in its own order."""
    output = json.loads(fill({}, '{"e": <aws.events.event.json>}'))
    assert output["e"] == EC2 and list(output["e"]) == list(EC2)


def test_rule_context_on_the_default_bus() -> None:
    """On the default bus the rule ARN is ``rule/NAME`` in the event's region and account."""
    context = rule_context(EC2, "r1")
    assert context.rule_arn == "arn:aws:events:us-east-1:123456789012:rule/r1"
    assert context.ingestion_time == EC2["time"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # LS: InputPath "$.detail" gives the detail object; "$.detail.payload.sf_id" the
        # string "baz" as JSON (with its quotes).
        ("$.detail", {"instance-id": "i-0123456789", "state": "RUNNING"}),
        ("$.detail.state", "RUNNING"),
        ("$", EC2),
        ("$.resources", EC2["resources"]),
    ],
)
def test_input_path_gives_the_selected_json(path: str, expected: Any) -> None:
    """InputPath: the target gets the JSON text of what the path selects, minified."""
    text = TargetInput.input_path(path).render(EC2, UG_RULE)
    assert json.loads(text) == expected
    assert text == json.dumps(expected, separators=(",", ":"))


def test_input_path_that_selects_nothing_gives_no_input() -> None:
    """A path that finds nothing leaves the target without input: a TransformError."""
    with pytest.raises(TransformError, match="selects nothing"):
        TargetInput.input_path("$.detail.absent").render(EC2, UG_RULE)


def test_constant_input_is_delivered_verbatim() -> None:
    """``Input``: the constant JSON text, exactly as configured."""
    assert TargetInput.constant_input('{ "fixed": 1 }').render(EC2, UG_RULE) == '{ "fixed": 1 }'


def test_json_path_wildcard_without_matches_is_an_empty_list() -> None:
    """An indefinite path that matches nothing is ``[]``; a definite one is MISSING."""
    assert JsonPath.parse("$.detail.none[*]").find(EC2) == []
    assert JsonPath.parse("$.detail.none").find(EC2) is MISSING


# ----------------------------------------------------------------------------- validation


def paths(count: int) -> dict[str, str]:
    return {f"v{n}": f"$.detail.k{n}" for n in range(count)}


def test_one_hundred_paths_are_allowed() -> None:
    """API: "You can have as many as 100 key-value pairs"."""
    template = "{" + ",".join(f'"v{n}": <v{n}>' for n in range(MAX_PATHS)) + "}"
    out = json.loads(fill(paths(MAX_PATHS), template))
    assert len(out) == MAX_PATHS and out["v0"] == ""


@pytest.mark.parametrize(
    ("transformer", "message"),
    [
        (
            {"InputPathsMap": paths(101), "InputTemplate": '"x"'},
            "Member must have length less than or equal to 100",
        ),
        # API: keys match [A-Za-z0-9_-]+.
        ({"InputPathsMap": {"my.var": "$.a"}, "InputTemplate": '"x"'}, "regular expression"),
        ({"InputPathsMap": {"with space": "$.a"}, "InputTemplate": '"x"'}, "regular expression"),
        ({"InputPathsMap": {"": "$.a"}, "InputTemplate": '"x"'}, "non-empty"),
        # UG: the predefined names are reserved; API: keys cannot start with "AWS".
        ({"InputPathsMap": {"aws.events.event": "$.a"}, "InputTemplate": '"x"'}, "reserved"),
        ({"InputPathsMap": {"AWSRegion": "$.region"}, "InputTemplate": '"x"'}, '"AWS"'),
        # LS: PutTargets' own text for a placeholder nothing defines.
        (
            {"InputPathsMap": {"a": "$.a"}, "InputTemplate": '"<a> <notdefinedkey>"'},
            "InputTemplate for target hook contains invalid placeholder notdefinedkey.",
        ),
        # API: "The placeholder cannot be used as an object key."
        ({"InputPathsMap": {"k": "$.a"}, "InputTemplate": "{<k>: 1}"}, "object key"),
        ({"InputPathsMap": {}, "InputTemplate": '{"a": }'}, "not valid JSON"),
        # API: InputTemplate is 1 to 8192 characters; a path at most 256.
        ({"InputTemplate": ""}, "greater than or equal to 1"),
        ({"InputTemplate": '"' + "x" * 8192 + '"'}, "less than or equal to 8192"),
        (
            {"InputPathsMap": {"a": "$." + "x" * 255}, "InputTemplate": '"<a>"'},
            "less than or equal to 256",
        ),
        ({"InputPathsMap": {"a": "$.a"}}, "InputTemplate is required"),
        ({"InputPathsMap": {"a": 1}, "InputTemplate": '"<a>"'}, "JSON path string"),
        ({"InputTemplate": '"x"', "Extra": 1}, "unknown field 'Extra'"),
        (["not", "an", "object"], "JSON object"),
    ],
    ids=[
        "101-paths",
        "dotted-name",
        "space-in-name",
        "empty-name",
        "predefined-name",
        "aws-prefix",
        "undefined-placeholder",
        "placeholder-as-key",
        "json-template-not-json",
        "empty-template",
        "template-too-long",
        "path-too-long",
        "no-template",
        "path-not-string",
        "unknown-field",
        "not-an-object",
    ],
)
def test_invalid_transformers_are_refused_with_eventbridges_reason(
    transformer: Any, message: str
) -> None:
    """What PutTargets would refuse is an InvalidTransformError (exit 2) saying why."""
    with pytest.raises(InvalidTransformError) as caught:
        InputTransformer.parse(transformer)
    assert message in caught.value.message


def test_only_one_input_setting_per_target() -> None:
    """LS: PutTargets' text when a target has InputPath and InputTransformer both."""
    with pytest.raises(InvalidTransformError) as caught:
        TargetInput.from_target(
            {
                "Id": "t1",
                "InputPath": "$.detail",
                "InputTransformer": {"InputTemplate": '"x"'},
            }
        )
    assert caught.value.message == (
        "Only one of Input, InputPath, or InputTransformer must be provided for target t1."
    )


@pytest.mark.parametrize(
    ("target", "kind"),
    [
        ({"Id": "t"}, "event"),
        ({"Id": "t", "Input": '{"a":1}'}, "constant"),
        ({"Id": "t", "InputPath": "$.detail"}, "path"),
        ({"Id": "t", "InputTransformer": {"InputTemplate": '"x"'}}, "transformer"),
    ],
)
def test_from_target_reads_list_targets_by_rule_shape(target: dict[str, Any], kind: str) -> None:
    """A ListTargetsByRule target becomes the matching TargetInput."""
    assert TargetInput.from_target(target).kind == kind


def test_load_transformer_takes_a_whole_target_too() -> None:
    """--input-transformer accepts the InputTransformer, or a target object holding one."""
    bare = {"InputPathsMap": {"s": "$.detail.state"}, "InputTemplate": '"<s>"'}
    assert load_transformer(json.dumps(bare)).fill(EC2, UG_RULE) == '"RUNNING"'
    wrapped = {"Id": "t9", "Arn": "arn:x", "InputTransformer": bare}
    assert load_transformer(json.dumps(wrapped)).fill(EC2, UG_RULE) == '"RUNNING"'
    with pytest.raises(InvalidTransformError, match="not valid JSON"):
        load_transformer("{nope")


# ----------------------------------------------------------------------------- delivery path


def test_with_input_sets_the_targets_input_and_keeps_the_event() -> None:
    """The delivered event carries the transformed text; its envelope stays for history."""
    event = parse_event(EC2)
    spec = RuleTarget(TargetInput.input_path("$.detail.state"), "r")
    shaped = with_input(event, spec)
    assert shaped.payload() == '"RUNNING"'
    assert shaped.to_dict() == event.to_dict() and event.payload() == event.to_json()


def test_webhooks_are_never_transformed() -> None:
    """A webhook keeps its exact bytes: InputPath/InputTransformer belong to EventBridge rules."""
    request = RawRequest("POST", "", "", (("Content-Type", "application/json"),), b'{"a": 1}')
    webhook = Event(EventId("w1"), "webhook.shop", "Webhook", {"a": 1}, request=request)
    spec = RuleTarget(TargetInput.input_path("$.detail.a"), "r")
    assert with_input(webhook, spec) is webhook
