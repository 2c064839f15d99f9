"""The pytest plugin as a user meets it: installed as a ``pytest11`` entry point, loaded by a
plain ``pytest`` run of a project with no conftest, testing examples/producer end to end (boto3
PutEvents -> emulated bus -> relay -> ``hook_events.expect``), and failing a test with what
did arrive. Each run is a real ``python -m pytest`` subprocess."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import UNIT

ROOT = Path(__file__).resolve().parent.parent

#: A user's test that waits for an event its code never put (it put another one).
FAILING_TEST = """
from producer import place_order


def test_waits_for_an_event_that_never_comes(hook_relay, hook_events, monkeypatch):
    for key, value in hook_relay.env.items():
        monkeypatch.setenv(key, value)
    place_order("o-9", 5, ["pencil"])
    hook_events.expect({"detail-type": ["OrderShipped"]}, timeout=2)
"""


def user_env() -> dict[str, str]:
    """A user's environment: none of hook's or AWS's settings from the caller."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HOOK_", "AWS_", "PYTEST_"))
    }


def pytest_in(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m pytest ARGS`` in ``folder``, as a user runs it in their project."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-W", "error", *args],
        cwd=folder,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=UNIT * 24,
        env=user_env(),
        check=False,
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's project: examples/producer copied as is, plus one test that must fail."""
    folder = tmp_path_factory.mktemp("user-project")
    for name in ("producer.py", "test_producer.py"):
        shutil.copy(ROOT / "examples" / "producer" / name, folder / name)
    (folder / "test_failing.py").write_text(FAILING_TEST)
    (folder / "pytest.ini").write_text("[pytest]\n")  # its own rootdir, not this repo's config
    return folder


@pytest.fixture(scope="module")
def ran(project: Path) -> subprocess.CompletedProcess[str]:
    """One pytest run of the user's project (the relay starts once for all its tests)."""
    return pytest_in(project, "-rA", "-q")


def test_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    """The installed package names hookcli.testing under pytest11 (pip install -e . after
    changing pyproject.toml)."""
    plugins = importlib.metadata.entry_points(group="pytest11")
    assert [(p.name, p.value) for p in plugins if p.value.startswith("hookcli")] == [
        ("hook", "hookcli.testing")
    ]


def test_importing_the_plugin_loads_nothing_heavy() -> None:
    """Every pytest run loads the plugin: its import starts no relay and imports no moto,
    boto3, aiohttp, websockets or asyncio code of hook's."""
    heavy = ["moto", "boto3", "aiohttp", "websockets", "hookcli.relay", "hookcli.expect"]
    code = f"import sys, hookcli.testing; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=UNIT * 3, check=True
    )
    assert done.stdout.strip() == ""


@pytest.mark.slow
def test_the_example_producer_passes_end_to_end(ran: subprocess.CompletedProcess[str]) -> None:
    """examples/producer's tests pass in a plain pytest run: the entry point gave them the
    fixtures, and the producer's boto3 events reached hook_events through the emulated bus."""
    for name in (
        "test_placing_an_order_emits_order_placed",
        "test_a_large_order_also_requests_a_fraud_check",
        "test_each_test_sees_only_its_own_events",
    ):
        assert f"PASSED test_producer.py::{name}" in ran.stdout, ran.stdout + ran.stderr
    assert "3 passed" in ran.stdout


@pytest.mark.slow
def test_expect_fails_the_test_saying_what_did_arrive(
    ran: subprocess.CompletedProcess[str],
) -> None:
    """A wait that times out fails the test (not errors it) with the count and the events that
    arrived without matching."""
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert "FAILED test_failing.py::test_waits_for_an_event_that_never_comes" in ran.stdout
    assert 'waited for 1 event(s) matching {"detail-type": ["OrderShipped"]}' in ran.stdout
    assert "0 of 1 expected event(s) arrived within 2 s" in ran.stdout
    assert "shop.orders  OrderPlaced" in ran.stdout
    assert '"order_id":"o-9"' in ran.stdout


def test_the_plugin_can_be_turned_off(project: Path) -> None:
    """``-p no:hook`` unloads it: the fixtures are then unknown (and no relay starts)."""
    done = pytest_in(project, "-p", "no:hook", "-q", "test_failing.py")
    assert done.returncode == 1
    assert "fixture 'hook_relay' not found" in done.stdout
