"""The default listener identity: what the listener delivers to, stable across runs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from hookcli.listen import TargetSpec, default_identity

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _exec(command: str) -> str:
    return "exec:" + hashlib.sha256(command.encode()).hexdigest()[:6]


@pytest.mark.parametrize(
    ("spec", "label"),
    [
        (TargetSpec(url="localhost:3000"), "3000"),
        (TargetSpec(url="3000"), "3000"),
        (TargetSpec(url=":3000/"), "3000"),
        (TargetSpec(url="127.0.0.1:3000/hooks"), "3000/hooks"),
        (TargetSpec(url="http://[::1]:8080/a/b/"), "8080/a/b"),
        (TargetSpec(url="https://localhost"), "443"),
        (TargetSpec(url="http://example.com:9000/x", allow_remote=True), "example.com:9000/x"),
        (TargetSpec(command="jq .detail"), _exec("jq .detail")),
        (TargetSpec(command="  jq .detail "), _exec("jq .detail")),
        (TargetSpec(handler=f"{EXAMPLES}/handler.py:handler"), "handler:handler.py"),
        (TargetSpec(handler=f"{EXAMPLES}/handler.py"), "handler:handler.py"),
        (TargetSpec(handler=f"{EXAMPLES}/handler.py:other"), "handler:handler.py:other"),
        (TargetSpec(), "tail"),
    ],
)
def test_label_names_the_target(spec: TargetSpec, label: str) -> None:
    """Each target kind has a short, stable label; spellings of the same target agree."""
    assert spec.label() == label


def test_different_targets_get_different_identities() -> None:
    """The README's three listeners side by side have three identities, none replacing another."""
    specs = [
        TargetSpec(url="localhost:3000"),
        TargetSpec(command="jq .detail"),
        TargetSpec(command="jq .detail.total"),
        TargetSpec(handler=f"{EXAMPLES}/handler.py:handler"),
    ]
    names = [default_identity("me@box", spec) for spec in specs]
    assert len(set(names)) == len(names)
    assert names[0] == "me@box:3000"


def test_the_same_command_gets_the_same_identity() -> None:
    """Run again, the same command line resumes the same cursor: the identity is a pure function."""
    first = default_identity("me@box", TargetSpec(command="jq .detail"))
    assert first == default_identity("me@box", TargetSpec(command="jq .detail"))
