"""EventBridge matching semantics, case by case from shared/EVENTBRIDGE-PATTERNS.md (§ refs)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hookcli.patterns import InvalidPatternError, Pattern, PatternSet, compile_pattern

MISSING = object()


def leaf(pattern_values: list[Any], value: Any = MISSING) -> tuple[dict[str, Any], dict[str, Any]]:
    """A pattern on ``detail.x`` and an event whose ``detail.x`` is ``value`` (or absent)."""
    detail = {} if value is MISSING else {"x": value}
    return {"detail": {"x": pattern_values}}, {"detail": detail}


def check(pattern: dict[str, Any] | str, event: dict[str, Any], expected: bool) -> None:
    """Assert the single-pattern matcher and the indexed PatternSet both give ``expected``."""
    compiled = compile_pattern(pattern)
    assert compiled.matches(event) is expected
    patterns = PatternSet()
    patterns.add("p", compiled)
    assert patterns.matches(event) == ({"p"} if expected else set())


def table(*rows: tuple[list[Any], Any, bool]) -> list[Any]:
    return [
        pytest.param(values, value, expected, id=f"{values}-{value!r}")
        for values, value, expected in rows
    ]


def run_leaf(values: list[Any], value: Any, expected: bool) -> None:
    pattern, event = leaf(values, value)
    check(pattern, event, expected)


# §3 exact values and JSON types ------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "value", "expected"),
    table(
        (["abc"], "abc", True),
        (["abc"], "ABC", False),
        (["abc"], "abc ", False),
        (["é"], "e\u0301", False),
        ([""], "", True),
        ([""], None, False),
        ([""], MISSING, False),
        (["skyli", {"prefix": "hey"}, {"prefix": "ad"}], "adam", True),
        (["skyli", {"prefix": "hey"}, {"prefix": "ad"}], "sky", False),
    ),
)
def test_exact_strings_match_character_by_character(
    values: list[Any], value: Any, expected: bool
) -> None:
    """§3: strings match exactly, no case folding or normalization; list items are OR'ed."""
    run_leaf(values, value, expected)


@pytest.mark.parametrize(
    ("values", "value", "expected"),
    table(
        (["300"], 300, False),
        ([300], "300", False),
        (["true"], True, False),
        ([True], "true", False),
        ([True], 1, False),
        ([1], True, False),
        ([0], False, False),
        ([False], 0, False),
        ([1.0], True, False),
        ([True], True, True),
        ([False], False, True),
        (["null"], None, False),
        ([None], "null", False),
        ([111122223333], "111122223333", False),
    ),
)
def test_json_types_never_cross(values: list[Any], value: Any, expected: bool) -> None:
    """§3: "300" is not 300, true is not 1, "null" is not null (bool is never an int)."""
    run_leaf(values, value, expected)


@pytest.mark.parametrize(
    ("values", "value", "expected"),
    table(
        ([300], 300, True),
        ([300], 300.0, True),
        ([300.0], 300, True),
        ([3e2], 300, True),
        ([5], 5.000001, False),
        ([0.1], 0.1, True),
        ([-0.0], 0, True),
        ([12345678901234567890], 12345678901234567890, True),
        ([12345678901234567890], 12345678901234567891, False),
        ([9007199254740993], 9007199254740992.0, False),
        # Issue 11: event-ruler cannot compare 9007199254740993 as float64, so only its text
        # could match it.
        ([9007199254740992], 9007199254740993, False),
    ),
)
def test_numbers_compare_by_value(values: list[Any], value: Any, expected: bool) -> None:
    """§3: numbers match numerically (float64) and by exact value; 300 equals 300.0."""
    run_leaf(values, value, expected)


@pytest.mark.parametrize(
    ("values", "value", "expected"),
    table(
        ([None], None, True),
        ([None], "", False),
        ([None], MISSING, False),
        ([None], [], False),
        ([None], [None], True),
    ),
)
def test_null_matches_only_null(values: list[Any], value: Any, expected: bool) -> None:
    """§3: null matches JSON null only: not "", not a missing field, not []."""
    run_leaf(values, value, expected)


@pytest.mark.parametrize(
    ("values", "value", "expected"),
    table(
        (["10.0.0.1"], "10.0.0.1", True),
        (["2001:db8::1"], "2001:DB8:0:0:0:0:0:1", True),
        (["2001:db8::1"], "2001:db8::2", False),
        ([{"exactly": "2001:db8::1"}], "2001:DB8::1", False),
        ([{"exactly": "abc"}], "abc", True),
        (["10.0.0.1"], "010.0.0.1", False),
    ),
)
def test_address_literals_match_other_spellings(
    values: list[Any], value: Any, expected: bool
) -> None:
    """§3 quirk: an IP literal value matches any spelling of the same address."""
    run_leaf(values, value, expected)


def test_keys_are_case_sensitive() -> None:
    """§3: field names are case sensitive."""
    check({"Source": ["a"]}, {"source": "a"}, False)


def test_duplicate_keys_last_one_wins() -> None:
    """§1.7: a key given twice in pattern text keeps its last value."""
    text = '{"source": ["a"], "source": ["b"]}'
    check(text, {"source": "b"}, True)
    check(text, {"source": "a"}, False)
    assert compile_pattern(text).source == {"source": ["b"]}


def test_unmentioned_fields_are_ignored() -> None:
    """§1.6: fields the pattern does not name play no part."""
    check({"source": ["a"]}, {"source": "a", "detail": {"anything": [1, {"x": None}]}}, True)


# §4 arrays ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "value", "expected"),
    table(
        (["a"], ["b", "a"], True),
        (["a"], ["b", "c"], False),
        (["a"], [], False),
        ([{"exists": True}], [], False),
        ([{"exists": False}], [], True),
        (["c"], [["a", "b"], ["c"]], True),
        ([{"prefix": "ab"}], ["x", "abc"], True),
        ([{"numeric": [">", 10]}], [1, 20], True),
        ([{"wildcard": "*.png"}], ["a.jpg", "b.png"], True),
        ([{"anything-but": ["a", "b"]}], ["a", "c"], True),
        ([{"anything-but": ["a", "b"]}], ["a", "b"], False),
        ([{"anything-but": "a"}], [], False),
        ([{"exists": True}], [[]], False),
        ([{"exists": False}], [[]], True),
        ([{"exists": False}], {}, True),
    ),
)
def test_arrays_match_if_any_element_matches(values: list[Any], value: Any, expected: bool) -> None:
    """§4: an event array matches when any element does; [] has no values at all."""
    run_leaf(values, value, expected)


EMPLOYEES = {
    "detail": {
        "company": "Acme",
        "employees": [
            {"firstName": "Anna", "lastName": "Jones"},
            {"firstName": "John", "lastName": "Smith"},
        ],
    }
}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        pytest.param({"detail": {"employees": {"firstName": ["Anna"]}}}, True, id="one-field"),
        pytest.param(
            {"detail": {"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}}},
            True,
            id="same-element",
        ),
        pytest.param(
            {"detail": {"employees": {"firstName": ["Anna"], "lastName": ["Smith"]}}},
            False,
            id="different-elements",
        ),
        pytest.param(
            {"detail": {"company": ["Acme"], "employees": {"lastName": ["Smith"]}}},
            True,
            id="outside-field-combines",
        ),
        pytest.param(
            {"detail": {"employees": {"firstName": ["John"], "lastName": [{"prefix": "S"}]}}},
            True,
            id="second-element",
        ),
        pytest.param(
            {"detail": {"employees": {"firstName": ["Anna"], "middle": [{"exists": False}]}}},
            True,
            id="exists-false-per-element",
        ),
        pytest.param(
            {"detail": {"employees": {"firstName": ["Anna"], "lastName": [{"exists": False}]}}},
            False,
            id="exists-false-every-element-has-it",
        ),
    ],
)
def test_array_consistency(pattern: dict[str, Any], expected: bool) -> None:
    """§1.5: fields from different elements of one array never combine in a match."""
    check(pattern, EMPLOYEES, expected)


def test_exists_false_judged_in_the_chosen_element() -> None:
    """§4: exists:false next to another field is evaluated per array element."""
    event = {"detail": {"arr": [{"name": "a", "x": 1}, {"name": "b"}]}}
    check({"detail": {"arr": {"name": ["b"], "x": [{"exists": False}]}}}, event, True)
    check({"detail": {"arr": {"name": ["a"], "x": [{"exists": False}]}}}, event, False)


def test_multi_level_arrays_are_crushed() -> None:
    """§1.2: arrays of arrays of objects flatten to their parent path."""
    event = {"a": [{"b": [{"c": 1}, {"c": 2}]}, [{"b": {"c": 3}}]]}
    check({"a": {"b": {"c": [2]}}}, event, True)
    check({"a": {"b": {"c": [3]}}}, event, True)
    check({"a": {"b": {"c": [4]}}}, event, False)


def test_nested_array_consistency() -> None:
    """§1.5: consistency holds across nested arrays of objects."""
    event = {"orders": [{"lines": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 5}]}]}
    check({"orders": {"lines": {"sku": ["B"], "qty": [5]}}}, event, True)
    check({"orders": {"lines": {"sku": ["A"], "qty": [5]}}}, event, False)


def test_objects_are_never_values() -> None:
    """§1.2: an object in an array at the pattern's path contributes no value."""
    check({"a": [{"exists": True}]}, {"a": [{"b": 1}]}, False)


# §5 string operators -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "value", "expected"),
    table(
        ([{"prefix": "ca-"}], "ca-central-1", True),
        ([{"prefix": "ca-"}], "CA-central-1", False),
        ([{"prefix": ""}], "", True),
        ([{"prefix": ""}], "anything", True),
        ([{"prefix": ""}], 5, False),
        ([{"prefix": ""}], None, False),
        ([{"prefix": "1"}], 123, False),
        ([{"prefix": "中"}], "中文", True),
    ),
)
def test_prefix(values: list[Any], value: Any, expected: bool) -> None:
    """§5: prefix is case sensitive, works on strings only; "" matches every string."""
    run_leaf(values, value, expected)


@pytest.mark.parametrize(
    ("values", "value", "expected"),
    table(
        ([{"suffix": ".png"}], "image.png", True),
        ([{"suffix": ".png"}], "image.PNG", False),
        ([{"suffix": ""}], "x", True),
        ([{"suffix": "文"}], "中文", True),
        ([{"suffix": "3"}], 123, False),
    ),
)
def test_suffix(values: list[Any], value: Any, expected: bool) -> None:
    """§5: suffix is case sensitive, works on strings only, on whole characters."""
    run_leaf(values, value, expected)


@pytest.mark.parametrize(
    ("values", "value", "expected"),
    table(
        ([{"equals-ignore-case": "Def"}], "dEF", True),
        ([{"equals-ignore-case": "Def"}], "defx", False),
        ([{"equals-ignore-case": ""}], "", True),
        ([{"equals-ignore-case": ""}], "a", False),
        ([{"equals-ignore-case": "123"}], 123, False),
        ([{"equals-ignore-case": "ÄPFEL"}], "äpfel", True),
        ([{"equals-ignore-case": "éco"}], "ÉCO", True),
        ([{"equals-ignore-case": "ß"}], "SS", True),
        ([{"equals-ignore-case": "ß"}], "ss", False),
        ([{"equals-ignore-case": "k"}], "\u212a", False),
    ),
)
def test_equals_ignore_case(values: list[Any], value: Any, expected: bool) -> None:
    """§5: whole-value equality accepting each pattern character's lower or upper form."""
    run_leaf(values, value, expected)


@pytest.mark.parametrize(
    ("values", "value", "expected"),
    table(
        ([{"prefix": {"equals-ignore-case": "alpha"}}], "ALPHA-1", True),
        ([{"prefix": {"equals-ignore-case": "alpha"}}], "alp", False),
        ([{"prefix": {"equals-ignore-case": ""}}], "x", True),
        ([{"prefix": {"equals-ignore-case": "äp"}}], "ÄPFEL", True),
        ([{"suffix": {"equals-ignore-case": ".PNG"}}], "photo.png", True),
        ([{"suffix": {"equals-ignore-case": ".png"}}], "png", False),
        ([{"suffix": {"equals-ignore-case": "FEL"}}], "äpfel", True),
        ([{"suffix": {"equals-ignore-case": "ÄPFEL"}}], "grüne äpfel", True),
        ([{"prefix": {"equals-ignore-case": "a"}}], 1, False),
    ),
)
def test_prefix_and_suffix_ignore_case(values: list[Any], value: Any, expected: bool) -> None:
    """§5: prefix/suffix with equals-ignore-case fold case; strings only."""
    run_leaf(values, value, expected)


# §6 wildcard --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "value", "expected"),
    table(
        ([{"wildcard": "dir/*.png"}], "dir/sub/a.png", True),
        ([{"wildcard": "dir/*.png"}], "dir/a.png.txt", False),
        ([{"wildcard": "abc"}], "abc", True),
        ([{"wildcard": "abc"}], "abcd", False),
        ([{"wildcard": ""}], "", True),
        ([{"wildcard": ""}], "a", False),
        ([{"wildcard": "*"}], "", True),
        ([{"wildcard": "*"}], "anything", True),
        ([{"wildcard": "*"}], 5, False),
        ([{"wildcard": "a*b"}], "xab", False),
        ([{"wildcard": "a*b*c"}], "abc", True),
        ([{"wildcard": "a*b*c"}], "a-b-c", True),
        ([{"wildcard": "a*b*c"}], "acb", False),
        ([{"wildcard": "ab*ba"}], "aba", False),
        ([{"wildcard": "a*ab"}], "aab", True),
        ([{"wildcard": "*a*a*"}], "a", False),
        ([{"wildcard": "*a*a*"}], "xaya", True),
        ([{"wildcard": "a?c"}], "abc", False),
        ([{"wildcard": "a?c"}], "a?c", True),
        ([{"wildcard": "a.c"}], "abc", False),
        ([{"wildcard": "A*"}], "abc", False),
        ([{"wildcard": "line*end"}], "line\nend", True),
    ),
)
def test_wildcard(values: list[Any], value: Any, expected: bool) -> None:
    """§6: * is any run of characters (/ too); anchored; ? . [ are literal; strings only."""
    run_leaf(values, value, expected)


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        (r'"a\\*b"', "a*b", True),
        (r'"a\\*b"', "axb", False),
        (r'"a\\\\b"', "a\\b", True),
        (r'"\\**"', "*tail", True),
        (r'"\\**"', "tail", False),
        (r'"*\\\\"', "x\\", True),
    ],
)
def test_wildcard_escapes(text: str, value: str, expected: bool) -> None:
    """§6: \\* is a literal star and \\\\ a literal backslash (after JSON unescaping)."""
    check('{"x": [{"wildcard": ' + text + "}]}", {"x": value}, expected)


# §7 anything-but ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "value", "expected"),
    table(
        ([{"anything-but": "x"}], "y", True),
        ([{"anything-but": "x"}], "x", False),
        ([{"anything-but": ["a", "b"]}], "c", True),
        ([{"anything-but": ["a", "b"]}], "b", False),
        ([{"anything-but": 123}], 123.0, False),
        ([{"anything-but": 123}], 124, True),
        ([{"anything-but": [100, 200]}], 200, False),
        ([{"anything-but": [111]}], "111", True),
        ([{"anything-but": ["123"]}], 123, True),
        ([{"anything-but": ""}], "", False),
        ([{"anything-but": ""}], "a", True),
    ),
)
def test_anything_but_values(values: list[Any], value: Any, expected: bool) -> None:
    """§7: string exclusions exclude equal strings; numeric ones numerically equal numbers."""
    run_leaf(values, value, expected)


@pytest.mark.parametrize(
    "exclusion",
    [
        "x",
        ["x", "y"],
        5,
        [1, 2],
        {"prefix": "x"},
        {"suffix": ["x"]},
        {"equals-ignore-case": "x"},
        {"wildcard": "x*"},
    ],
    ids=json.dumps,
)
def test_anything_but_null_matches_and_missing_does_not(exclusion: Any) -> None:
    """§7: a null value passes every anything-but; a missing or object field never does."""
    run_leaf([{"anything-but": exclusion}], None, True)
    run_leaf([{"anything-but": exclusion}], MISSING, False)
    run_leaf([{"anything-but": exclusion}], {"nested": "x"}, False)
    run_leaf([{"anything-but": exclusion}], True, True)


@pytest.mark.parametrize(
    ("values", "value", "expected"),
    table(
        ([{"anything-but": {"prefix": "init"}}], "initializing", False),
        ([{"anything-but": {"prefix": "init"}}], "running", True),
        ([{"anything-but": {"prefix": ["a", "b"]}}], "bob", False),
        ([{"anything-but": {"prefix": ["a", "b"]}}], "carl", True),
        ([{"anything-but": {"prefix": "a"}}], 5, True),
        ([{"anything-but": {"suffix": ".tmp"}}], "x.tmp", False),
        ([{"anything-but": {"suffix": [".tmp", ".bak"]}}], "x.txt", True),
        ([{"anything-but": {"equals-ignore-case": ["Stopped"]}}], "STOPPED", False),
        ([{"anything-but": {"equals-ignore-case": "Stopped"}}], "running", True),
        ([{"anything-but": {"equals-ignore-case": "a"}}], 1, True),
        ([{"anything-but": {"wildcard": "*/lib/*"}}], "/usr/lib/x", False),
        ([{"anything-but": {"wildcard": ["*/lib/*", "*.so"]}}], "/usr/bin/x", True),
        ([{"anything-but": {"wildcard": ""}}], "", False),
        ([{"anything-but": {"wildcard": ""}}], "a", True),
        ([{"anything-but": {"wildcard": "*"}}], 7, True),
    ),
)
def test_anything_but_string_forms(values: list[Any], value: Any, expected: bool) -> None:
    """§7: anything-but prefix/suffix/equals-ignore-case/wildcard; non-strings pass."""
    run_leaf(values, value, expected)


@pytest.mark.parametrize(
    ("values", "value", "expected"),
    table(
        ([{"anything-but": "x"}, "x"], "x", True),
        ([{"anything-but": "a"}, {"anything-but": "b"}], "a", True),
        ([{"numeric": [">", 100]}, {"anything-but": "101"}], "42", True),
        ([{"numeric": [">", 100]}, {"anything-but": "101"}], "101", False),
        ([{"numeric": [">", 100]}, {"anything-but": "101"}], 101, True),
        ([{"anything-but": [1, 2]}, {"exists": False}], MISSING, True),
        ([{"anything-but": ["a", "b"]}, {"anything-but": "b"}], "a", True),
        ([{"anything-but": ["a", "b"]}, {"anything-but": "b"}], "b", False),
        ([{"anything-but": [1, 2]}, {"anything-but": 2}], 1, True),
        ([{"anything-but": [1, 2]}, {"anything-but": 2}], 2.0, False),
        ([{"anything-but": {"prefix": "a"}}, {"anything-but": {"prefix": "ab"}}], "ac", True),
        ([{"anything-but": {"prefix": "a"}}, {"anything-but": {"prefix": "ab"}}], "abc", False),
    ),
)
def test_anything_but_is_ored_with_other_items(
    values: list[Any], value: Any, expected: bool
) -> None:
    """§7: anything-but is one OR'ed item of the value list like any other."""
    run_leaf(values, value, expected)


# §8 numeric ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "value", "expected"),
    table(
        ([{"numeric": ["=", 5]}], 5.0, True),
        ([{"numeric": ["=", 5]}], 5.1, False),
        ([{"numeric": ["<", 5]}], 4.999, True),
        ([{"numeric": ["<", 5]}], 5, False),
        ([{"numeric": ["<=", 5]}], 5, True),
        ([{"numeric": [">", 100]}], 101.0, True),
        ([{"numeric": [">", 100]}], 100, False),
        ([{"numeric": [">=", 100]}], 100, True),
        ([{"numeric": [">", 0, "<=", 5]}], 5, True),
        ([{"numeric": [">", 0, "<=", 5]}], 0, False),
        ([{"numeric": [">=", 0, "<", 5]}], 0, True),
        ([{"numeric": [">=", 0, "<", 5]}], 5, False),
        ([{"numeric": [">", -5e9, "<", 5e9]}], -4999999999.5, True),
        ([{"numeric": [">", 0, "<", 1]}, {"numeric": [">", 5, "<", 6]}], 3, False),
        ([{"numeric": [">", 0, "<", 1]}, {"numeric": [">", 5, "<", 6]}], 5.5, True),
        ([{"numeric": ["<", 0]}, {"numeric": [">", 5]}], 3, False),
        ([{"numeric": ["<", 0]}, {"numeric": [">", 5]}], 6, True),
        ([{"numeric": ["=", 3.018e2]}], 301.8, True),
        ([{"numeric": [">", 0]}], "300", False),
        ([{"numeric": [">", 0]}], None, False),
        ([{"numeric": [">=", 0]}], True, False),
        ([{"numeric": ["=", 0]}], False, False),
        # Issue 11: beyond float64 an event number is in no range (event-ruler cannot compare it).
        ([{"numeric": [">", 1]}], 10**400, False),
        ([{"numeric": ["<", 0]}], -(10**400), False),
        ([{"numeric": ["<", 1e300]}], 1e308, False),
    ),
)
def test_numeric(values: list[Any], value: Any, expected: bool) -> None:
    """§8: numeric ranges apply to JSON numbers only, compared by value as float64."""
    run_leaf(values, value, expected)


# §9 exists ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "value", "expected"),
    table(
        ([{"exists": True}], None, True),
        ([{"exists": True}], "", True),
        ([{"exists": True}], False, True),
        ([{"exists": True}], 0, True),
        ([{"exists": True}], {"a": 1}, False),
        ([{"exists": True}], MISSING, False),
        ([{"exists": False}], MISSING, True),
        ([{"exists": False}], None, False),
        ([{"exists": False}], {"a": 1}, True),
        ([{"exists": False}], "x", False),
        ([{"exists": True}, {"exists": False}], MISSING, True),
        ([{"exists": True}, {"exists": False}], "x", True),
    ),
)
def test_exists(values: list[Any], value: Any, expected: bool) -> None:
    """§9: exists looks at leaves only: null counts, objects do not."""
    run_leaf(values, value, expected)


def test_exists_false_when_an_ancestor_is_missing() -> None:
    """§9: exists:false matches when a parent of the field is missing."""
    check({"detail": {"a": {"b": [{"exists": False}]}}}, {"detail": {}}, True)
    check({"detail": {"a": {"b": [{"exists": False}]}}}, {}, True)
    check({"detail": {"a": {"b": [{"exists": False}]}}}, {"detail": {"a": "scalar"}}, True)


def test_exists_false_combines_with_other_fields() -> None:
    """§9: exists:false is a normal AND term next to other fields."""
    pattern = {"source": ["a"], "detail": {"error": [{"exists": False}]}}
    check(pattern, {"source": "a", "detail": {}}, True)
    check(pattern, {"source": "a", "detail": {"error": None}}, False)
    check(pattern, {"source": "b", "detail": {}}, False)


# §10 $or ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"source": "aws.cloudwatch", "metricName": "CPUUtilization"}, True),
        ({"source": "aws.cloudwatch", "metricType": "MetricType", "namespace": "AWS/EC2"}, True),
        ({"source": "aws.cloudwatch", "metricType": "MetricType"}, False),
        ({"source": "aws.cloudwatch", "scope": "Service"}, True),
        ({"source": "aws.s3", "scope": "Service"}, False),
        ({"source": "aws.cloudwatch", "metricName": "CPUUtilization", "scope": "Service"}, True),
    ],
)
def test_or_at_top_level(event: dict[str, Any], expected: bool) -> None:
    """§10: (fields) AND (alt1 OR alt2 OR alt3); OR, not XOR."""
    pattern = {
        "source": ["aws.cloudwatch"],
        "$or": [
            {"metricName": ["CPUUtilization", "ReadLatency"]},
            {"metricType": ["MetricType"], "namespace": ["AWS/EC2", "AWS/ES"]},
            {"scope": ["Service"]},
        ],
    }
    check(pattern, event, expected)


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        ({"c-count": 3}, True),
        ({"c-count": 9, "d-count": 5}, True),
        ({"x-limit": 301.8}, True),
        ({"c-count": 9, "d-count": 50}, False),
    ],
)
def test_or_inside_detail(detail: dict[str, Any], expected: bool) -> None:
    """§10: $or inside a nested object applies at that object's path."""
    pattern = {
        "detail": {
            "$or": [
                {"c-count": [{"numeric": [">", 0, "<=", 5]}]},
                {"d-count": [{"numeric": ["<", 10]}]},
                {"x-limit": [{"numeric": ["=", 3.018e2]}]},
            ]
        }
    }
    check(pattern, {"detail": detail}, expected)


def test_parallel_and_nested_or() -> None:
    """§10: parallel $or arrays are AND'ed; an $or may nest inside an alternative."""
    pattern = {
        "$or": [{"a": ["1"]}, {"b": ["2"], "$or": [{"c": ["3"]}, {"d": ["4"]}]}],
        "detail": {"$or": [{"e": ["5"]}, {"f": ["6"]}]},
    }
    check(pattern, {"a": "1", "detail": {"f": "6"}}, True)
    check(pattern, {"b": "2", "d": "4", "detail": {"e": "5"}}, True)
    check(pattern, {"b": "2", "detail": {"e": "5"}}, False)
    check(pattern, {"a": "1", "detail": {}}, False)


def test_or_with_exists_false() -> None:
    """§9/§10: exists:false inside an $or alternative is an ordinary term."""
    pattern = {"$or": [{"a": [{"exists": False}]}, {"b": ["x"]}]}
    check(pattern, {"b": "y"}, True)
    check(pattern, {"a": 1, "b": "y"}, False)
    check(pattern, {"a": 1, "b": "x"}, True)


def test_event_key_named_or_is_not_consulted() -> None:
    """§10: an event field literally named "$or" plays no part in an $or pattern."""
    pattern = {"$or": [{"a": ["1"]}, {"b": ["2"]}]}
    check(pattern, {"$or": [{"a": "1"}]}, False)


def test_or_alternative_overrides_an_earlier_field() -> None:
    """§1.7/§10: a path written again inside an $or alternative replaces the earlier value list."""
    pattern = '{"a": ["1"], "$or": [{"a": ["2"]}, {"b": ["3"]}]}'
    check(pattern, {"a": "2"}, True)
    check(pattern, {"a": "1", "b": "3"}, True)
    check(pattern, {"a": "1"}, False)


# §11 cidr -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "value", "expected"),
    table(
        ([{"cidr": "10.0.0.0/24"}], "10.0.0.0", True),
        ([{"cidr": "10.0.0.0/24"}], "10.0.0.255", True),
        ([{"cidr": "10.0.0.0/24"}], "10.0.1.0", False),
        ([{"cidr": "54.240.196.171/24"}], "54.240.196.1", True),
        ([{"cidr": "0.0.0.0/0"}], "255.255.255.255", True),
        ([{"cidr": "10.0.0.0/8"}], "10.0.0.256", False),
        ([{"cidr": "10.0.0.0/8"}], "10.0.0", False),
        ([{"cidr": "10.0.0.0/8"}], " 10.0.0.1", False),
        ([{"cidr": "10.0.0.0/8"}], "host.example.com", False),
        ([{"cidr": "10.0.0.0/8"}], 10, False),
        ([{"cidr": "10.0.0.0/8"}], None, False),
        ([{"cidr": "10.0.0.0/8"}], "::ffff:a00:1", True),
        ([{"cidr": "2001:db8::/32"}], "2001:DB8:0:0::1", True),
        ([{"cidr": "2001:db8::/32"}], "2001:db9::1", False),
        ([{"cidr": "2001:db8::/32"}], "2001:db8::1%eth0", False),
        ([{"cidr": "2001:db8::/32"}], "10.0.0.1", False),
        ([{"cidr": "10.0.0.0/8"}], "2001:db8::1", False),
    ),
)
def test_cidr(values: list[Any], value: Any, expected: bool) -> None:
    """§11: IPv4/IPv6 ranges, inclusive, host bits masked; non-addresses never match."""
    run_leaf(values, value, expected)


# §12 envelope fields and the dot-joining quirk ---------------------------------------------

S3_EVENT = {
    "version": "0",
    "id": "17793124-05d4-b198-2fde-7ededc63b103",
    "detail-type": "Object Created",
    "source": "aws.s3",
    "account": "123456789012",
    "time": "2021-11-12T00:00:00Z",
    "region": "ca-central-1",
    "resources": ["arn:aws:s3:::example-bucket"],
    "detail": {"bucket": {"name": "example-bucket"}, "object": {"key": "a/b.png", "size": 5}},
}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"resources": ["arn:aws:s3:::example-bucket"]}, True),
        ({"account": ["123456789012"]}, True),
        ({"account": [123456789012]}, False),
        ({"time": [{"prefix": "2021-11-12T"}]}, True),
        ({"region": [{"prefix": "ca-"}], "version": ["0"]}, True),
        ({"detail-type": ["Object Created"], "detail": {"object": {"size": [5]}}}, True),
    ],
)
def test_envelope_fields(pattern: dict[str, Any], expected: bool) -> None:
    """§12: envelope fields are matched like detail fields; account is a string."""
    check(pattern, S3_EVENT, expected)


def test_detail_as_json_string_does_not_match_nested_patterns() -> None:
    """§12: a detail sent as a JSON string is a string, not an object."""
    check({"detail": {"a": ["b"]}}, {"detail": json.dumps({"a": "b"})}, False)


@pytest.mark.parametrize(
    ("pattern", "event", "expected"),
    [
        (
            {"detail": {"state.status": ["running"]}},
            {"detail": {"state": {"status": "running"}}},
            True,
        ),
        (
            {"detail": {"state": {"status": ["running"]}}},
            {"detail": {"state.status": "running"}},
            True,
        ),
        ({"detail.state": {"status": ["running"]}}, {"detail": {"state.status": "running"}}, True),
        ({"a": {"b": {"c": ["x"]}}}, {"a.b.c": "x"}, True),
        ({"a": {"b": {"c": ["x"]}}}, {"a.b": {"c": "x"}}, True),
        ({"a": {"b": {"c": ["x"]}}}, {"a": {"b.c": "x"}}, True),
        ({"a": {"b": {"c": ["x"]}}}, {"a": {"b.c": "y"}, "a.b": {"c": "x"}}, True),
        ({"a": {"b": {"c": ["x"]}}}, {"a": {"b.c": "y"}}, False),
        ({"a": {"b": ["x"]}}, {"a": {"b": "y"}, "a.b": "x"}, True),
        ({"a": {"": ["x"]}}, {"a.": "x"}, True),
    ],
)
def test_dot_joining_quirk(pattern: dict[str, Any], event: dict[str, Any], expected: bool) -> None:
    """§12: paths are keys joined with ".", so dotted and nested keys are interchangeable."""
    check(pattern, event, expected)


def test_dotted_key_and_array_together() -> None:
    """§12 with §4: a dotted spelling inside an array of objects still matches."""
    check({"a": {"b": {"c": ["x"]}}}, {"a": [{"b.c": "y"}, {"b": {"c": "x"}}]}, True)


@pytest.mark.parametrize(
    ("pattern", "event", "expected"),
    [
        # No arrays: a dotted key and a nesting both feed the path a.b (and a.b.c).
        ({"a": {"b": ["x"], "b.c": ["y"]}}, {"a": {"b": "x"}, "a.b": {"c": "y"}}, True),
        ({"a": {"b": ["x"], "b.c": ["y"]}}, {"a": {"b": "x"}, "a.b": {"c": "z"}}, False),
        # a.a and a.b from a[0], a.b.a from the other array "a.b" (found by hypothesis).
        (
            {"a": {"a": ["xy"], "b": [""]}, "a.b": {"a": [None]}},
            {"a": [{"a": "xy", "b": ""}, {"a": "xy"}], "a.b": [{"a": None}, ""]},
            True,
        ),
        # a.a and a.b only in different elements of a: the array "a.b" does not help.
        (
            {"a": {"a": ["xy"], "b": [""]}, "a.b": {"a": [None]}},
            {"a": [{"a": "xy"}, {"b": ""}], "a.b": [{"a": None}]},
            False,
        ),
        # a.b and a.b.a only in different elements of the one array "a.b".
        (
            {"a": {"a": ["xy"], "b": [""]}, "a.b": {"a": [None]}},
            {"a": [{"a": "xy"}], "a.b": ["", {"a": None}]},
            False,
        ),
        # a.c picks a[0]; a.b="x" sits outside a, in "a.b", so it combines with it.
        (
            {"a": {"c": [1], "b": ["x"]}},
            {"a": [{"c": 1, "b": "z"}, {"c": 2, "b": "x"}], "a.b": ["x"]},
            True,
        ),
        (
            {"a": {"c": [1], "b": ["x"]}},
            {"a": [{"c": 1, "b": "z"}, {"c": 2, "b": "x"}], "a.b": "x"},
            True,
        ),
        (
            {"a": {"c": [1], "b": ["x"]}},
            {"a": [{"c": 1, "b": "z"}, {"c": 2, "b": "x"}], "a.b": ["z"]},
            False,
        ),
        # Dotted and nested spellings inside one array's elements are still one array.
        (
            {"a": {"b": {"c": ["x"]}, "d": [2]}},
            {"a": [{"b.c": "x", "d": 1}, {"b": {"c": "y"}, "d": 2}]},
            False,
        ),
        (
            {"a": {"b": {"c": ["x"]}, "d": [1]}},
            {"a": [{"b.c": "x", "d": 1}, {"b": {"c": "y"}, "d": 2}]},
            True,
        ),
    ],
)
def test_array_consistency_across_dotted_spellings(
    pattern: dict[str, Any], event: dict[str, Any], expected: bool
) -> None:
    """§12 with §1.5: one path's leaves may sit in different arrays; only shared ones bind."""
    check(pattern, event, expected)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"p": {"a": [1]}, "q": {"b": [2]}}, True),  # two paths: two arrays, as in JSON
        ({"o": {"x": {"a": [1], "b": [2]}}}, False),  # one path: still one array per element
    ],
)
def test_a_list_object_used_twice_is_judged_like_its_json(
    pattern: dict[str, Any], expected: bool
) -> None:
    """§1.5: a Python event reusing one list object matches as its JSON text would."""
    shared = [{"a": 1}, {"b": 2}]
    event = {"p": shared, "q": shared, "o": [{"x": shared}, {"x": shared}]}
    assert compile_pattern(pattern).matches(json.loads(json.dumps(event))) is expected
    check(pattern, event, expected)


# The public surface --------------------------------------------------------------------------


def test_compile_accepts_text_and_mappings_alike() -> None:
    """compile_pattern takes JSON text or a mapping and exposes the normalized source."""
    text = compile_pattern('{"detail": {"n": [1, {"numeric": [">", 2]}]}}')
    mapping = compile_pattern({"detail": {"n": (1, {"numeric": [">", 2]})}})
    assert text.source == mapping.source == {"detail": {"n": [1, {"numeric": [">", 2]}]}}
    assert isinstance(text, Pattern)
    assert "numeric" in repr(text)


def test_source_round_trips_through_json() -> None:
    """Pattern.source is plain JSON: it can be sent over the wire and compiled again."""
    pattern = compile_pattern('{"a": ["x"], "$or": [{"b": [{"prefix": "y"}]}, {"c": [null]}]}')
    again = compile_pattern(json.dumps(pattern.source))
    assert again.source == pattern.source
    for event in ({"a": "x", "b": "yes"}, {"a": "x", "c": None}, {"a": "x"}):
        assert again.matches(event) is pattern.matches(event)


def test_empty_pattern_needs_allow_empty() -> None:
    """EventBridge rejects {}; hook accepts it as "match everything" only when asked."""
    with pytest.raises(InvalidPatternError, match="Empty objects are not allowed"):
        compile_pattern({})
    everything = compile_pattern({}, allow_empty=True)
    assert everything.matches({}) and everything.matches({"source": "x"})
    assert everything.source == {}


def test_paths_lists_every_constrained_field() -> None:
    """Pattern.paths names each dotted path across $or branches."""
    pattern = compile_pattern({"source": ["a"], "$or": [{"detail": {"x": ["1"]}}, {"y": ["2"]}]})
    assert pattern.paths == {"source", "detail.x", "y"}


def test_long_hostile_values_match_in_linear_time() -> None:
    """§6/§11: a 1 MB value of colons or stars cannot make cidr or wildcard backtrack."""
    hostile = ":" * 1_000_000 + "g"
    pattern = compile_pattern(
        {"a": [{"cidr": "10.0.0.0/8"}], "b": [{"wildcard": "*:*:*:*:*:x*"}], "c": [hostile[:9]]}
    )
    assert not pattern.matches({"a": hostile, "b": hostile, "c": ":" * 9})
    assert not pattern.matches({"a": "10.0.0.1", "b": hostile, "c": ":" * 9})


def test_array_consistency_search_stays_linear() -> None:
    """§1.5: many half-matching elements, in one array or two, do not make the search blow up."""
    n = 20_000
    one_array = {"a": [{"x": 1, "y": 1}] * n + [{"z": 1}] * n}
    two_arrays = {"a": [{"x": 1}] * n + [{"z": 1}] * n, "b": [{"y": 1}] * (n // 2)}
    check({"a": {"x": [1], "y": [1], "z": [1]}}, one_array, False)
    check({"a": {"x": [1], "z": [1]}, "b": {"y": [1]}}, two_arrays, False)
    check({"a": {"x": [1], "w": [{"exists": False}]}, "b": {"y": [1]}}, two_arrays, True)


# PatternSet: the compiled index against each pattern alone ----------------------------------


def test_pattern_set_forgets_remembered_strings_when_conditions_change() -> None:
    """A string's remembered verdict is dropped when a pattern on its path is added or removed."""
    patterns = PatternSet()
    patterns.add("exact", {"a": ["xy"]})
    assert patterns.matches({"a": "xy"}) == {"exact"}
    patterns.add("prefix", {"a": [{"prefix": "x"}]})
    assert patterns.matches({"a": "xy"}) == {"exact", "prefix"}
    patterns.remove("exact")
    assert patterns.matches({"a": "xy"}) == {"prefix"}
    patterns.add("prefix", {"a": [{"anything-but": {"prefix": "x"}}]})  # replaced in place
    assert patterns.matches({"a": "xy"}) == set()
    assert patterns.matches({"a": "zz"}) == {"prefix"}


@pytest.mark.parametrize("length", [1, 200])
def test_pattern_set_agrees_on_more_distinct_strings_than_it_remembers(length: int) -> None:
    """Past the remembered strings' bound (and for strings too long to remember) it agrees."""
    compiled = {
        f"p{i}": compile_pattern({"a": [{"wildcard": f"*{i}*"}, {"suffix": f"-{i}"}]})
        for i in range(30)
    }
    patterns = PatternSet()
    for name, pattern in compiled.items():
        patterns.add(name, pattern)
    for n in range(2500):
        event = {"a": "v" * length + f"-{n}"}
        assert patterns.matches(event) == {
            name for name, pattern in compiled.items() if pattern.matches(event)
        }


def test_pattern_set_wildcards_on_a_long_value_stay_linear() -> None:
    """§6: a 1 MB value against wildcards filed by a middle segment is tested, not sliced up."""
    hostile = "a:" * 500_000
    patterns = PatternSet()
    patterns.add("middle", {"a": [{"wildcard": "*:x*"}]})
    patterns.add("ends", {"a": [{"wildcard": "*a:*:"}]})
    assert patterns.matches({"a": hostile}) == {"ends"}
    assert patterns.matches({"a": hostile + "x"}) == {"middle"}


def test_pattern_set_bits_of_removed_patterns_are_reused() -> None:
    """Removing and adding patterns many times reuses sub-rule bits: the masks stay small."""
    patterns = PatternSet()
    patterns.add("keep", {"a": ["x"]})
    for n in range(500):
        patterns.add(f"p{n}", {"$or": [{"a": ["x"]}, {"b": [n]}]})
        assert patterns.matches({"a": "x"}) == {"keep", f"p{n}"}
        patterns.remove(f"p{n}")
    assert patterns.matches({"a": "x", "b": 3}) == {"keep"}
    assert patterns._live.bit_length() <= 3  # "keep" plus one pattern's two $or branches
