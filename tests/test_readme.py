"""The README's commands stay true: the quickstart runs, CI runs its test command, and every
``hook`` command line it shows parses (with ``--help``) and names files that exist."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import UNIT

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(text: str) -> list[str]:
    """The fenced ``sh`` blocks of a Markdown text."""
    return re.findall(r"```sh\n(.*?)```", text, flags=re.S)


def quickstart() -> list[str]:
    section = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    (block,) = blocks(section)
    return [line for line in block.splitlines() if line.strip()]


def hook_lines() -> list[list[str]]:
    """Every ``hook ...`` invocation in the README's shell blocks, split as a shell would."""
    found = []
    for block in blocks(README):
        for line in block.splitlines():
            for part in re.split(r"&&|\|", line.split("  #")[0]):
                words = shlex.split(part.replace("$USER@$(hostname -s)", "me@host"))
                if words and words[0] == "hook":
                    found.append(words)
    return found


def hook(*args: str, timeout: float = UNIT * 6) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOK_")}
    env["HOOK_CONFIG"] = str(ROOT / "tests" / "no-such-config.toml")
    return subprocess.run(
        [sys.executable, "-m", "hookcli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_quickstart_has_two_commands() -> None:
    """Exactly two commands: install + demo, install + tests."""
    first, second = quickstart()
    assert first.endswith("&& hook demo")
    assert "pytest" in second


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run runs the README's test command verbatim."""
    assert quickstart()[1] in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


@pytest.mark.slow
def test_quickstart_demo_runs() -> None:
    """The main quickstart command's hook part works and exits 0."""
    words = shlex.split(quickstart()[0].split("&&")[1])
    assert words == ["hook", "demo"]
    ran = hook(*words[1:])
    assert ran.returncode == 0, ran.stderr
    assert "1 recovered by replay" in ran.stdout


@pytest.mark.parametrize("words", hook_lines(), ids=lambda w: " ".join(w)[:60])
def test_readme_command_lines_parse(words: list[str]) -> None:
    """Each hook command line in the README has real options, and its @files exist."""
    for word in words:
        if word.startswith("@"):
            assert (ROOT / word[1:]).is_file(), f"{word} named in the README does not exist"
    ran = hook(*words[1:], "--help")
    assert ran.returncode == 0, f"{' '.join(words)}: {ran.stderr}"
    assert "Usage:" in ran.stdout


def test_readme_pattern_example_matches() -> None:
    """The README's `hook pattern test` example prints match."""
    (words,) = [w for w in hook_lines() if w[1:3] == ["pattern", "test"]]
    ran = hook(*words[1:])
    assert (ran.returncode, ran.stdout) == (0, "match\n")
