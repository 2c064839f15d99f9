"""Pattern validation: EventBridge's verbatim reasons (shared/EVENTBRIDGE-PATTERNS.md §2.1)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from hookcli.errors import UsageError
from hookcli.patterns import MAX_OR_COMBINATIONS, InvalidPatternError, compile_pattern

PREFIX = "Event pattern is not valid. Reason: "


def reason_of(pattern: Any) -> str:
    with pytest.raises(InvalidPatternError) as caught:
        compile_pattern(pattern)
    message = caught.value.message
    assert message.startswith(PREFIX)
    return message[len(PREFIX) :]


def x(*items: Any) -> str:
    """Pattern text with a value list on field "x"."""
    return json.dumps({"x": list(items)})


STRUCTURE = [
    ("[]", "Filter is not an object"),
    ('"text"', "Filter is not an object"),
    ("{}", "Empty objects are not allowed"),
    ('{"detail": {}}', "Empty objects are not allowed"),
    ('{"source": "aws.ec2"}', '"source" must be an object or an array'),
    ('{"detail": {"n": 5}}', '"n" must be an object or an array'),
    ('{"detail": {"n": null}}', '"n" must be an object or an array'),
    ('{"source": []}', "Empty arrays are not allowed"),
    ('{"source": [["a"]]}', "Match value must be String, number, true, false, or null"),
    ('{"source": [{}]}', "Match expression name not found"),
    ('{"source": [{"NUMERIC": [">", 1]}]}', "Unrecognized match type NUMERIC"),
    ('{"source": [{"EXISTS": true}]}', "Unrecognized match type EXISTS"),
    ('{"source": [{"contains": "x"}]}', "Unrecognized match type contains"),
    ('{"source": [{"k": "v"}]}', "Unrecognized match type k"),
    ('{"a": 5, "a": ["x"]}', '"a" must be an object or an array'),
]

OPERATORS = [
    (x({"prefix": 5}), "prefix match pattern must be a string"),
    (x({"prefix": None}), "prefix match pattern must be a string"),
    (x({"suffix": ["a"]}), "suffix match pattern must be a string"),
    (x({"prefix": {"foo": "a"}}), "Unsupported prefix pattern: foo"),
    (x({"suffix": {"foo": "a"}}), "Unsupported suffix pattern: foo"),
    (x({"prefix": {"equals-ignore-case": 5}}), "equals-ignore-case match pattern must be a string"),
    (x({"equals-ignore-case": 5}), "equals-ignore-case match pattern must be a string"),
    (x({"equals-ignore-case": ["a"]}), "equals-ignore-case match pattern must be a string"),
    (x({"prefix": "a", "suffix": "b"}), "Only one key allowed in match expression"),
    (x({"exists": True, "prefix": "a"}), "Only one key allowed in match expression"),
    (x({"cidr": "10.0.0.0/8", "x": 1}), "Only one key allowed in match expression"),
    (x({"wildcard": "a", "x": 1}), "Only one key allowed in match expression"),
    (
        x({"prefix": {"equals-ignore-case": "a", "x": 1}}),
        "Only one key allowed in match expression",
    ),
    ('{"x": [{"prefix": "a", "prefix": "b"}]}', "Only one key allowed in match expression"),
    ('{"x": [{"prefix": 1, "prefix": "b"}]}', "prefix match pattern must be a string"),
    (x({"exists": "true"}), "exists match pattern must be either true or false."),
    (x({"exists": 1}), "exists match pattern must be either true or false."),
    (x({"exactly": 5}), "exact match pattern must be a string"),
    (x({"wildcard": 5}), "wildcard match pattern must be a string"),
]

NUMERIC = [
    (x({"numeric": 5}), "Value of numeric must be an array."),
    (x({"numeric": ">"}), "Value of numeric must be an array."),
    (x({"numeric": []}), "Invalid member in numeric match: ]"),
    (x({"numeric": [5, ">"]}), "Invalid member in numeric match: 5"),
    (x({"numeric": [True]}), "Invalid member in numeric match: true"),
    (x({"numeric": ["!=", 5]}), "Unrecognized numeric range operator: !="),
    (x({"numeric": ["=", "5"]}), "Value of equals must be numeric"),
    (x({"numeric": ["<", "5"]}), "Value of < must be numeric"),
    (x({"numeric": [">=", True]}), "Value of >= must be numeric"),
    (x({"numeric": [">"]}), "Value of > must be numeric"),
    (x({"numeric": ["=", 5, "<", 6]}), "Too many elements in numeric expression"),
    (x({"numeric": ["<", 5, ">", 1]}), "Too many elements in numeric expression"),
    (x({"numeric": ["<=", 5, 6]}), "Too many elements in numeric expression"),
    (x({"numeric": [">", 1, ">", 5]}), "Bad numeric range operator: >"),
    (x({"numeric": [">", 1, 5]}), "Bad value in numeric range: 5"),
    (x({"numeric": [">", 1, "<", "5"]}), "Value of < must be numeric"),
    (x({"numeric": [">", 1, "<"]}), "Value of < must be numeric"),
    (x({"numeric": [">", 1, "<", 5, 6]}), "Too many terms in numeric range expression"),
    (x({"numeric": [">", 5, "<", 1]}), "Bottom must be less than top"),
    (x({"numeric": [">", 1, "<", 1]}), "Bottom must be less than top"),
    (x({"numeric": [">=", 5, "<=", 5]}), "Bottom must be less than top"),
    (x({"numeric": ["=", 9007199254740993]}), "Cannot compare number : 9007199254740993"),
    ('{"x": [{"numeric": [">", 1e400]}]}', "Cannot compare number : 1e400"),
    (x({"numeric": [">", 1], "x": 1}), "Too many elements in numeric expression"),
]

MIXED = (
    "Inside anything but list, either all values are number or string, mixed type is not supported"
)

ANYTHING_BUT = [
    (
        x({"anything-but": None}),
        "Value of anything-but must be an array or single string/number value.",
    ),
    (
        x({"anything-but": True}),
        "Value of anything-but must be an array or single string/number value.",
    ),
    (x({"anything-but": [None]}), "Inside anything but list, start|null|boolean is not supported."),
    (
        x({"anything-but": ["a", True]}),
        "Inside anything but list, start|null|boolean is not supported.",
    ),
    (
        x({"anything-but": [["a"]]}),
        "Inside anything but list, start|null|boolean is not supported.",
    ),
    (
        x({"anything-but": ["a", 1]}),
        MIXED,
    ),
    (
        x({"anything-but": []}),
        MIXED,
    ),
    (x({"anything-but": {}}), "Anything-But expression name not found"),
    (x({"anything-but": {"exists": True}}), "Unsupported anything-but pattern: exists"),
    (x({"anything-but": {"numeric": [">", 1]}}), "Unsupported anything-but pattern: numeric"),
    (x({"anything-but": {"cidr": "10.0.0.0/8"}}), "Unsupported anything-but pattern: cidr"),
    (x({"anything-but": {"foo": "a"}}), "Unsupported anything-but pattern: foo"),
    (
        x({"anything-but": {"prefix": "a", "suffix": "b"}}),
        "Too many elements in numeric expression",
    ),
    (x({"anything-but": "a", "prefix": "b"}), "Too many elements in numeric expression"),
    (x({"anything-but": {"prefix": ""}}), "Null prefix/suffix not allowed"),
    (x({"anything-but": {"suffix": ["a", ""]}}), "Null prefix/suffix not allowed"),
    (x({"anything-but": {"prefix": 5}}), "prefix/suffix match pattern must be a string"),
    (x({"anything-but": {"suffix": [5]}}), "prefix/suffix match pattern must be a string"),
    (
        x({"anything-but": {"prefix": {"equals-ignore-case": "a"}}}),
        "Value of anything-but must be an array or single string/number value.",
    ),
    (
        x({"anything-but": {"equals-ignore-case": 5}}),
        "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported.",
    ),
    (
        x({"anything-but": {"equals-ignore-case": ["a", None]}}),
        "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported.",
    ),
    (x({"anything-but": {"wildcard": 5}}), "wildcard match pattern must be a string"),
    (x({"anything-but": {"wildcard": ["a**"]}}), "Consecutive wildcard characters at pos 2"),
]

WILDCARD = [
    (x({"wildcard": "abc**def"}), "Consecutive wildcard characters at pos 4"),
    (x({"wildcard": "**"}), "Consecutive wildcard characters at pos 1"),
    (x({"wildcard": "é**"}), "Consecutive wildcard characters at pos 3"),
    (x({"wildcard": "a\\bc"}), "Invalid escape character at pos 2"),
    (x({"wildcard": "abc\\"}), "Invalid escape character at pos 4"),
    (x({"wildcard": "\\\\\\x"}), "Invalid escape character at pos 3"),
]

CIDR = [
    (x({"cidr": 5}), "prefix match pattern must be a string"),
    (x({"cidr": "10.0.0.0"}), "Malformed CIDR, one '/' required"),
    (x({"cidr": "10.0.0.0/8/8"}), "Malformed CIDR, one '/' required"),
    (x({"cidr": "10.0.0.0/x"}), "Malformed CIDR, mask bits must be an integer"),
    (x({"cidr": "10.0.0.0/ 8"}), "Malformed CIDR, mask bits must be an integer"),
    (x({"cidr": "10.0.0.0/-1"}), "Malformed CIDR, mask bits must not be negative"),
    (x({"cidr": "example.com/8"}), "Nonstandard IP address: example.com"),
    (x({"cidr": "10.0.0/8"}), "Nonstandard IP address: 10.0.0"),
    (x({"cidr": "10.0.0.256/8"}), "Invalid IP address: 10.0.0.256"),
    (x({"cidr": "10.0.0.0/32"}), "IPv4 mask bits must be < 32"),
    (x({"cidr": "10.0.0.0/33"}), "IPv4 mask bits must be < 32"),
    (x({"cidr": "2001:db8::/128"}), "IPv6 mask bits must be < 128"),
]

OR = [
    ('{"$or": {"a": ["b"]}}', "It must be an Array followed with $or."),
    ('{"$or": []}', "There must have at least 2 Objects in $or relationship."),
    ('{"$or": [{"a": ["b"]}]}', "There must have at least 2 Objects in $or relationship."),
    ('{"$or": [{"a": ["b"]}, "c"]}', "Only JSON object is allowed in array of $or relationship."),
    ('{"$or": [{"a": ["b"]}, {}]}', "Empty objects are not allowed"),
    (
        '{"$or": [{"a": ["b"]}, {"prefix": ["c"]}]}',
        "prefix is Ruler reserved fieldName which cannot be used inside $or.",
    ),
    (
        '{"$or": [{"a": ["b"]}, {"c": {"numeric": ["d"]}}]}',
        "numeric is Ruler reserved fieldName which cannot be used inside $or.",
    ),
    (
        '{"detail": {"$or": [{"a": ["b"]}, {"<=": ["c"]}]}}',
        "<= is Ruler reserved fieldName which cannot be used inside $or.",
    ),
]


@pytest.mark.parametrize(("pattern", "reason"), STRUCTURE)
def test_structure_errors(pattern: str, reason: str) -> None:
    """§2.1: the shape of the pattern itself (objects, value lists, matcher objects)."""
    assert reason_of(pattern) == reason


@pytest.mark.parametrize(("pattern", "reason"), OPERATORS)
def test_operator_errors(pattern: str, reason: str) -> None:
    """§2.1: prefix, suffix, equals-ignore-case, exists, exactly, wildcard operand types."""
    assert reason_of(pattern) == reason


@pytest.mark.parametrize(("pattern", "reason"), NUMERIC)
def test_numeric_errors(pattern: str, reason: str) -> None:
    """§2.1/§8: numeric expressions, operators, bounds and representable operands."""
    assert reason_of(pattern) == reason


@pytest.mark.parametrize(("pattern", "reason"), ANYTHING_BUT)
def test_anything_but_errors(pattern: str, reason: str) -> None:
    """§2.1/§7: every anything-but form rejects what EventBridge rejects, with its text."""
    assert reason_of(pattern) == reason


@pytest.mark.parametrize(("pattern", "reason"), WILDCARD)
def test_wildcard_errors(pattern: str, reason: str) -> None:
    """§6: ** and bad escapes, at 1-based UTF-8 byte positions."""
    assert reason_of(pattern) == reason


@pytest.mark.parametrize(("pattern", "reason"), CIDR)
def test_cidr_errors(pattern: str, reason: str) -> None:
    """§11: malformed CIDRs, bad addresses, and masks too wide (/32 and /128 included)."""
    assert reason_of(pattern) == reason


@pytest.mark.parametrize(("pattern", "reason"), OR)
def test_or_errors(pattern: str, reason: str) -> None:
    """§10: $or takes an array of two or more objects without reserved field names."""
    assert reason_of(pattern) == reason


@pytest.mark.parametrize(
    "pattern",
    [
        '{"source": [{"prefix": ""}]}',
        '{"x": [{"prefix": {"equals-ignore-case": ""}}]}',
        '{"x": [{"anything-but": {"wildcard": ""}}]}',
        '{"x": [{"anything-but": {"prefix": []}}]}',
        '{"x": [{"wildcard": "a\\\\**"}]}',
        '{"x": [{"cidr": "10.0.0.0/8/"}]}',
        '{"x": [{"cidr": "10.0.0.0/+8"}]}',
        '{"x": [{"cidr": "::/0"}]}',
        '{"x": [{"numeric": [">", -5e9, "<=", 5e9]}]}',
        '{"x": [{"exactly": "a"}]}',
        '{"x": [1e400]}',
        '{"$or": [{"a": ["1"]}, {"b": {"$or": [{"c": ["2"]}, {"d": ["3"]}]}}]}',
    ],
)
def test_edge_cases_that_are_valid(pattern: str) -> None:
    """§2.1 boundaries that EventBridge accepts."""
    compile_pattern(pattern)


def test_or_combinations_up_to_the_limit_are_allowed() -> None:
    """§10: 10 x 10 x 10 = 1000 $or combinations is still allowed."""
    alternatives = [{"k": [str(i)]} for i in range(10)]
    pattern = {"a": {"$or": alternatives}, "b": {"$or": alternatives}, "c": {"$or": alternatives}}
    compile_pattern(pattern)


def test_or_combinations_over_the_limit_are_rejected() -> None:
    """§10: over 1000 combinations (here 1100) is rejected, with a clear reason."""
    alternatives = [{"k": [str(i)]} for i in range(10)]
    pattern = {
        "a": {"$or": alternatives},
        "b": {"$or": alternatives},
        "c": {"$or": [*alternatives, {"z": ["1"]}]},
    }
    assert reason_of(pattern) == (
        f"The use of $or results in over {MAX_OR_COMBINATIONS} rule combinations"
    )


def test_huge_or_expansions_are_counted_not_built() -> None:
    """§10: a pattern expanding to 2**60 sub-rules is refused without expanding it."""
    pairs = {f"f{i}": {"$or": [{"a": ["1"]}, {"b": ["2"]}]} for i in range(60)}
    assert "rule combinations" in reason_of(pairs)


@pytest.mark.parametrize(
    ("text", "reason_start"),
    [
        ("{'a': ['b']}", "Unexpected character (''' (code 39))"),
        ('{"a": [closed]}', "Unrecognized token 'closed'"),
        ('{"a": [NaN]}', "Non-standard token 'NaN'"),
        ('{"a": [Infinity]}', "Non-standard token 'Infinity'"),
        ("", "Filter is not an object"),
    ],
)
def test_invalid_json(text: str, reason_start: str) -> None:
    """§2.1: JSON that does not parse is an invalid pattern too, with the parser's message."""
    assert reason_of(text).startswith(reason_start)


def test_error_is_a_usage_error_with_exit_code_2() -> None:
    """InvalidPatternError is re-exported, a UsageError, and exits 2."""
    with pytest.raises(UsageError) as caught:
        compile_pattern('{"source": "x"}')
    assert isinstance(caught.value, InvalidPatternError)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ({1: ["a"]}, "Field name 1 is not a string"),
        ({"a": [{1, 2}]}, "set is not a JSON value"),
        ({"a": [object()]}, "object is not a JSON value"),
    ],
)
def test_mappings_must_hold_json(pattern: Any, reason: str) -> None:
    """A mapping pattern must be JSON data: string keys and JSON values."""
    assert reason_of(pattern) == reason


def test_mappings_may_hold_decimals_and_tuples() -> None:
    """Decimals (json parse_float=Decimal) and tuples are taken as numbers and arrays."""
    pattern = compile_pattern({"a": (Decimal("1.5"), Decimal("2"))})
    assert pattern.source == {"a": [1.5, 2]}
    assert pattern.matches({"a": 2.0})


def test_deep_nesting_is_an_invalid_pattern() -> None:
    """Absurdly deep JSON is refused as a pattern, never a RecursionError."""
    text = '{"a": ' * 100_000 + '["x"]' + "}" * 100_000
    assert reason_of(text) == "Pattern is nested too deeply"
