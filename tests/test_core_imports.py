"""The core stays light: importing it loads nothing heavy (tests/test_startup.py: the CLI).

Each check runs in a fresh interpreter, because this test process has already imported aiohttp
(conftest) and more.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import UNIT

#: The functional core (STYLE.md): stdlib only, no I/O.
CORE = [
    "hookcli.errors",
    "hookcli.events",
    "hookcli.patterns",
    "hookcli.protocol",
    "hookcli.providers",
    "hookcli.transform",
    "hookcli.updates",
]
#: Third-party packages the core must never pull in.
HEAVY = [
    "websockets",
    "aiohttp",
    "boto3",
    "botocore",
    "moto",
    "rich",
    "typer",
    "click",
    "watchfiles",
]
#: Hook's own adapters, and the stdlib event loop they run on.
ADAPTERS = [
    "asyncio",
    "hookcli.client",
    "hookcli.listen",
    "hookcli.relay",
    "hookcli.sources",
    "hookcli.targets.http",
    "hookcli.targets.exec",
    "hookcli.targets.handler",
]

PROBE = """
import json, sys
{imports}
print(json.dumps(sorted(sys.modules)))
"""


def loaded_after(*statements: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``statements``."""
    code = PROBE.format(imports="\n".join(statements))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=UNIT * 2, check=False
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def offenders(loaded: set[str], names: list[str]) -> list[str]:
    """Which of ``names`` (packages: any submodule counts) were loaded."""
    return sorted(n for n in names if any(m == n or m.startswith(n + ".") for m in loaded))


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_nothing_heavy(module: str) -> None:
    """Each core module imports none of the heavy third-party packages or adapters."""
    loaded = loaded_after(f"import {module}")
    assert offenders(loaded, HEAVY) == []
    assert offenders(loaded, ADAPTERS) == []


def test_targets_package_stays_light() -> None:
    """``hookcli.targets`` (imported by updates and the handler worker) loads no adapter."""
    loaded = loaded_after("import hookcli.targets")
    assert offenders(loaded, HEAVY + ADAPTERS) == []
