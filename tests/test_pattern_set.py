"""PatternSet (indexed fan-out matching) and pattern_from_filters (CLI filters ANDed in)."""

from __future__ import annotations

from typing import Any

import pytest

from hookcli.patterns import (
    InvalidPatternError,
    PatternSet,
    compile_pattern,
    pattern_from_filters,
)


def order(customer: str, **detail: Any) -> dict[str, Any]:
    return {
        "source": "com.example.orders",
        "detail-type": "OrderCreated",
        "detail": {"customer": {"id": customer}, **detail},
    }


def test_add_remove_len_contains_iter_get() -> None:
    """The set behaves like a small mapping of names to patterns."""
    patterns = PatternSet()
    assert len(patterns) == 0 and "a" not in patterns
    patterns.add("a", {"source": ["x"]})
    patterns.add("b", '{"source": ["y"]}')
    patterns.add("c", compile_pattern({"source": ["z"]}))
    assert len(patterns) == 3 and "b" in patterns and sorted(patterns) == ["a", "b", "c"]
    assert patterns.get("c") is not None and patterns.get("nope") is None
    patterns.remove("b")
    assert "b" not in patterns and len(patterns) == 2
    with pytest.raises(KeyError):
        patterns.remove("b")


def test_matches_names_every_matching_pattern() -> None:
    """matches returns the names of all matching patterns, each once."""
    patterns = PatternSet()
    patterns.add("orders", {"source": ["com.example.orders"]})
    patterns.add("alice", {"detail": {"customer": {"id": ["alice"]}}})
    patterns.add("bob", {"detail": {"customer": {"id": ["bob"]}}})
    patterns.add("either", {"$or": [{"source": ["com.example.orders"]}, {"x": ["1"]}]})
    assert patterns.matches(order("alice")) == {"orders", "alice", "either"}
    assert patterns.matches({"source": "other"}) == set()


def test_changes_take_effect_on_the_next_event() -> None:
    """Adding, replacing and removing between events re-plans the index."""
    patterns = PatternSet()
    patterns.add("p", {"detail": {"customer": {"id": ["alice"]}}})
    assert patterns.matches(order("alice")) == {"p"}
    patterns.add("p", {"detail": {"customer": {"id": ["bob"]}}})
    assert patterns.matches(order("alice")) == set()
    assert patterns.matches(order("bob")) == {"p"}
    patterns.remove("p")
    assert patterns.matches(order("bob")) == set()


def test_empty_mapping_matches_every_event() -> None:
    """{} added to a set is "match everything", as pattern_from_filters produces it."""
    patterns = PatternSet()
    patterns.add("all", {})
    assert patterns.matches({}) == {"all"}
    assert patterns.matches(order("x")) == {"all"}


def test_invalid_patterns_are_refused() -> None:
    """add compiles mappings and text with full validation."""
    with pytest.raises(InvalidPatternError, match="Empty arrays are not allowed"):
        PatternSet().add("bad", {"source": []})


@pytest.mark.parametrize(
    ("values", "value", "expected"),
    [
        ([True], 1, False),
        ([1], True, False),
        ([0], False, False),
        ([False], False, True),
        ([None], None, True),
        ([300], 300.0, True),
        ([9007199254740992], 9007199254740993, False),  # §8: not comparable as float64
        ([9007199254740993], 9007199254740993, True),  # ... but equal by its text
        (["a", 1, None], None, True),
    ],
)
def test_index_keeps_json_types_apart(values: list[Any], value: Any, expected: bool) -> None:
    """§3 in the index: True is not 1 even though Python hashes them alike."""
    patterns = PatternSet()
    patterns.add("p", {"x": values})
    assert patterns.matches({"x": value}) == ({"p"} if expected else set())


@pytest.mark.parametrize(
    ("event_value", "expected"),
    [("com.example.orders", {"short", "long"}), ("com.example", {"short"}), ("com", set())],
)
def test_prefix_anchors_of_several_lengths(event_value: str, expected: set[str]) -> None:
    """Sub-rules anchored on prefixes are found through every prefix length in use."""
    patterns = PatternSet()
    patterns.add("short", {"source": [{"prefix": "com.ex"}]})
    patterns.add("long", {"source": [{"wildcard": "com.example.*"}]})
    assert patterns.matches({"source": event_value}) == expected


@pytest.mark.parametrize(
    "pattern",
    [
        {"detail": {"total": [{"numeric": [">", 100]}]}},
        {"detail": {"status": [{"anything-but": "cancelled"}]}},
        {"detail": {"coupon": [{"exists": False}]}},
        {"detail": {"status": [{"equals-ignore-case": "CREATED"}]}},
        {"detail": {"ip": ["10.0.0.1"]}},
    ],
)
def test_sub_rules_without_anchor_are_always_checked(pattern: dict[str, Any]) -> None:
    """Sub-rules with no exact value or prefix are verified for every event."""
    patterns = PatternSet()
    patterns.add("p", pattern)
    patterns.add("q", {"detail": {"customer": {"id": ["nobody"]}}})
    event = order("alice", total=150, status="created", ip="10.0.0.1")
    assert patterns.matches(event) == {"p"}


def test_array_consistency_in_the_set() -> None:
    """§1.5 holds for the indexed matcher too."""
    patterns = PatternSet()
    patterns.add("same", {"items": {"sku": ["A"], "qty": [1]}})
    patterns.add("mixed", {"items": {"sku": ["A"], "qty": [5]}})
    assert patterns.matches({"items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 5}]}) == {"same"}


def test_dotted_event_keys_in_the_set() -> None:
    """§12: the flattener joins keys with "." so dotted event keys are found."""
    patterns = PatternSet()
    patterns.add("p", {"detail": {"state": {"status": ["running"]}}})
    assert patterns.matches({"detail.state": {"status": "running"}}) == {"p"}
    assert patterns.matches({"detail": {"state.status": "running"}}) == {"p"}


def test_a_thousand_listeners_each_get_their_own_events() -> None:
    """With 1,000 per-customer patterns each event reaches exactly the right listeners."""
    patterns = PatternSet()
    for i in range(1000):
        if i % 3 == 0:
            pattern = {"detail": {"customer": {"id": [f"c{i}"]}, "total": [{"numeric": [">", 10]}]}}
        elif i % 3 == 1:
            pattern = {"detail-type": ["OrderCreated"], "detail": {"customer": {"id": [f"c{i}"]}}}
        else:
            pattern = {"detail": {"customer": {"id": [{"prefix": f"c{i}-"}]}}}
        patterns.add(f"l{i}", {"source": ["com.example.orders"], **pattern})
    assert patterns.matches(order("c3", total=11)) == {"l3"}
    assert patterns.matches(order("c3", total=5)) == set()
    assert patterns.matches(order("c4")) == {"l4"}
    assert patterns.matches(order("c5-x")) == {"l5"}
    assert patterns.matches(order("c5")) == set()


# pattern_from_filters --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sources", "detail_types", "pattern", "expected"),
    [
        ([], [], None, {}),
        (["aws.s3"], [], None, {"source": ["aws.s3"]}),
        (
            ["aws.s3", "aws.ec2"],
            ["Object Created"],
            None,
            {"source": ["aws.s3", "aws.ec2"], "detail-type": ["Object Created"]},
        ),
        (
            ["aws.s3"],
            [],
            {"detail": {"bucket": {"name": ["b"]}}},
            {"source": ["aws.s3"], "detail": {"bucket": {"name": ["b"]}}},
        ),
        ("aws.s3", [], None, {"source": ["aws.s3"]}),
        ([], [], {"source": ["a"]}, {"source": ["a"]}),
        (
            ["s"],
            [],
            '{"detail": {"n": [1]}, "detail": {"n": [2]}}',
            {"source": ["s"], "detail": {"n": [2]}},
        ),
    ],
)
def test_filters_are_anded_into_the_pattern(
    sources: Any, detail_types: list[str], pattern: Any, expected: dict[str, Any]
) -> None:
    """--source / --detail-type become top-level value lists next to the pattern's fields."""
    assert pattern_from_filters(sources, detail_types, pattern) == expected


def test_combined_pattern_requires_every_part() -> None:
    """The combination is an AND: the filter and the pattern must both hold."""
    combined = pattern_from_filters(["aws.s3"], [], {"detail": {"size": [{"numeric": [">", 5]}]}})
    pattern = compile_pattern(combined)
    assert pattern.matches({"source": "aws.s3", "detail": {"size": 10}})
    assert not pattern.matches({"source": "aws.ec2", "detail": {"size": 10}})
    assert not pattern.matches({"source": "aws.s3", "detail": {"size": 1}})


def test_no_filters_mean_match_everything() -> None:
    """An empty combination compiles, with allow_empty, to a pattern matching every event."""
    assert compile_pattern(pattern_from_filters([], [], None), allow_empty=True).matches({})


@pytest.mark.parametrize(
    ("sources", "detail_types", "pattern", "option"),
    [
        (["aws.s3"], [], {"source": [{"prefix": "aws."}]}, "--source"),
        ([], ["X"], {"detail-type": ["Y"]}, "--detail-type"),
        (["aws.s3"], [], {"$or": [{"source": ["a"]}, {"detail": {"x": ["1"]}}]}, "--source"),
    ],
)
def test_filters_on_a_field_the_pattern_constrains_are_refused(
    sources: list[str], detail_types: list[str], pattern: dict[str, Any], option: str
) -> None:
    """Two value lists cannot be AND'ed on one field, so the combination is refused."""
    with pytest.raises(InvalidPatternError) as caught:
        pattern_from_filters(sources, detail_types, pattern)
    assert caught.value.message.startswith(option)
    assert caught.value.hint is not None and "--pattern" in caught.value.hint


def test_an_invalid_user_pattern_is_refused() -> None:
    """The user pattern gets EventBridge's validation, {} included."""
    with pytest.raises(InvalidPatternError, match="Empty objects are not allowed"):
        pattern_from_filters(["aws.s3"], [], {})


def test_deeply_nested_arrays_do_not_exhaust_the_stack() -> None:
    """§4: arrays nested as deep as json.loads allows still flatten to their path."""
    value: object = "x"
    for _ in range(5000):
        value = [value]
    patterns = PatternSet()
    patterns.add("p", {"detail": {"tags": ["x"]}})
    assert patterns.matches({"detail": {"tags": value}}) == {"p"}
    assert compile_pattern({"detail": {"tags": ["x"]}}).matches({"detail": {"tags": value}})
