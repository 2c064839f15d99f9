"""Start-up: ``hook --version`` imports no typer, ``hook --help`` no command module, and what
they print is what the full app prints.

The module checks run the real command (as ``python -m hookcli`` and as the ``hook`` console
script) in a fresh interpreter and read the names of the modules it imported: a check of what
is loaded, never of how long it took. The command table checks build the
real commands with Typer and compare.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer.core
import typer.main
from typer.testing import CliRunner

import hookcli.cli
from hookcli.cli import app
from hookcli.cli.root import COMMANDS, load

from conftest import UNIT

#: Third-party packages (and the stdlib event loop) that neither --version nor --help needs.
HEAVY = [
    "aiohttp",
    "asyncio",
    "boto3",
    "botocore",
    "moto",
    "pydantic",
    "rich",
    "watchfiles",
    "websockets",
]
#: Everything of hook's own that ``hook --help`` may load: the boundary, the root and its options.
HELP_MODULES = {
    "hookcli",
    "hookcli.errors",
    "hookcli.cli",
    "hookcli.cli.options",
    "hookcli.cli.root",
}
SCRIPT = Path(sys.executable).parent / "hook"


#: Runs ``hook`` as ``python -m hookcli`` (run_module) or the console script (run_path) does,
#: and at exit, however it exits, writes the names of the modules it imported to stderr.
PROBE = """
import atexit, json, runpy, sys
atexit.register(lambda: sys.stderr.write("\\nMODULES " + json.dumps(sorted(sys.modules)) + "\\n"))
how, *sys.argv = sys.argv[1:]
if how == "module":
    runpy.run_module("hookcli", run_name="__main__", alter_sys=True)
else:
    runpy.run_path(how, run_name="__main__")
"""


def imported(how: str, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``hook ARGS`` in a fresh interpreter (``how``: module or script); its result and
    the modules it imported (sys.modules: -X importtime misses importlib.import_module)."""
    if how == "script":
        if not SCRIPT.exists():
            pytest.skip(f"no console script at {SCRIPT} (the package is not installed)")
        how = str(SCRIPT)
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOOK_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, how, "hook", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=UNIT * 2,
        check=False,
    )
    stderr, _, modules = done.stderr.rpartition("\nMODULES ")
    done.stderr = stderr
    return done, set(json.loads(modules))


def offenders(loaded: set[str], names: list[str]) -> list[str]:
    """Which of ``names`` (packages: any submodule counts) were loaded."""
    return sorted(n for n in names if any(m == n or m.startswith(n + ".") for m in loaded))


@pytest.mark.parametrize("how", ["module", "script"])
def test_version_imports_neither_typer_nor_the_app(how: str) -> None:
    """``hook --version`` prints the version having imported no typer, click or command."""
    done, loaded = imported(how, "--version")
    assert (done.returncode, done.stdout) == (0, f"hook {hookcli.__version__}\n")
    assert "hookcli.cli" in loaded  # the probe saw the real command run
    assert offenders(loaded, ["typer", "click", *HEAVY]) == []
    assert sorted(m for m in loaded if m.startswith("hookcli")) == [
        "hookcli",
        "hookcli.cli",
        "hookcli.errors",
    ]


@pytest.mark.parametrize("how", ["module", "script"])
def test_help_imports_no_command_module(how: str) -> None:
    """``hook --help`` lists every command having imported none of their modules, nor
    pydantic, rich, aiohttp, websockets, boto3 or asyncio."""
    done, loaded = imported(how, "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    assert all(f"  {name} " in done.stdout for name in COMMANDS)
    assert "typer" in loaded  # the probe saw the real help rendered
    assert offenders(loaded, HEAVY) == []
    assert {m for m in loaded if m.startswith("hookcli")} <= HELP_MODULES


def test_command_help_imports_only_that_command() -> None:
    """``hook relay --help`` imports the relay's command module and no other command's."""
    done, loaded = imported("module", "relay", "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "hookcli.cli.relay" in loaded
    others = {f"hookcli.cli.{entry.module}" for entry in COMMANDS.values()} - {"hookcli.cli.relay"}
    assert loaded & others == set()
    assert offenders(loaded, ["aiohttp", "asyncio", "boto3", "websockets", "rich"]) == []


@pytest.mark.parametrize(
    "args",
    [["--version"], ["-v", "--version"], ["--version", "--debug"], ["-q", "--quiet", "--version"]],
)
def test_version_answer_is_the_apps(args: list[str]) -> None:
    """The --version short cut prints and exits exactly as the app's own eager option does."""
    done = subprocess.run(
        [sys.executable, "-m", "hookcli", *args],
        capture_output=True,
        text=True,
        timeout=UNIT * 2,
        check=False,
    )
    result = CliRunner().invoke(app, args)
    assert (done.returncode, done.stdout) == (result.exit_code, result.stdout)


def test_version_short_cut_takes_only_root_options() -> None:
    """Every argument the short cut accepts beside --version is one of the root's options."""
    group = typer.main.get_command(app)
    root_options = {opt for param in group.params for opt in param.opts}
    assert root_options >= hookcli.cli._VERSION_ARGS


def _command_modules() -> list[str]:
    """The modules of hookcli/cli/ that register commands (they have a ``register``)."""
    found = []
    for info in pkgutil.iter_modules(hookcli.cli.__path__):
        module = importlib.import_module(f"hookcli.cli.{info.name}")
        if callable(getattr(module, "register", None)):
            found.append(info.name)
    return sorted(found)


def test_every_command_module_is_in_the_table() -> None:
    """A module with a ``register`` has its commands listed in COMMANDS (else they would be
    missing from ``hook`` altogether): add a row to hookcli/cli/root.py's COMMANDS."""
    assert sorted({entry.module for entry in COMMANDS.values()}) == _command_modules()


@pytest.mark.parametrize("module", sorted({entry.module for entry in COMMANDS.values()}))
def test_table_rows_are_what_the_module_registers(module: str) -> None:
    """The table's names for a module are exactly the commands its ``register`` attaches."""
    rows = sorted(name for name, entry in COMMANDS.items() if entry.module == module)
    assert rows == sorted(load(module))


@pytest.mark.parametrize("name", list(COMMANDS))
def test_table_summary_is_the_commands_first_paragraph(name: str) -> None:
    """A row's summary is its command's help up to the first blank line, word for word."""
    command = load(COMMANDS[name].module)[name]
    assert command.short_help is None  # a short_help would be listed instead of the summary
    first = command.help.split("\n\n")[0]
    assert COMMANDS[name].summary == " ".join(first.split())


@pytest.mark.parametrize("width", [50, 80, 120, 200])
def test_root_help_lists_commands_as_typer_would(width: int) -> None:
    """The "Commands" section drawn from the table equals Typer's own, drawn from the built
    commands, at any terminal width."""
    group = typer.main.get_command(app)
    ctx = group.make_context(
        "hook", [], terminal_width=width, max_content_width=width, resilient_parsing=True
    )
    from_table = ctx.make_formatter()
    group.format_commands(ctx, from_table)
    for name in group.list_commands(ctx):
        assert group.get_command(ctx, name) is not None
    from_commands = ctx.make_formatter()
    typer.core.TyperGroup.format_commands(group, ctx, from_commands)
    assert from_table.getvalue() == from_commands.getvalue()
    assert all(name in from_table.getvalue() for name in COMMANDS)


def test_unknown_command_still_gets_suggestions() -> None:
    """A mistyped command is refused (exit 2) with the nearest names, as Typer suggests them."""
    result = CliRunner().invoke(app, ["lisen"])
    assert result.exit_code == 2
    assert "No such command 'lisen'. Did you mean 'listen'" in result.stderr
