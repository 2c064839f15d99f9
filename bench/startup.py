"""Startup: ``hook --version`` and ``hook --help`` against a bare ``python -c pass``, same run.

Each command runs RUNS times, interleaved round by round (so a noisy moment hits every command
alike), via ``python -m hookcli`` and via the installed console script when there is one.
Reports per command the median and p90 wall time in ms, the median CPU time (user + system,
which moves less with the machine's load than wall time), and both medians' overhead over bare
Python; and the median import time of ``hookcli.cli`` (what the console script imports) and of
``hookcli.cli.root`` (the Typer app) from ``-X importtime``.
Goal: ``--version`` and ``--help`` each within 100 ms of bare Python, both ways of running
(``goal_met``, from wall time; ``cpu_goal_met`` the same from CPU time, for a loaded machine).
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from _common import ROOT, child_env, emit, ms, quantile

RUNS = 20
IMPORT_RUNS = 7
#: Stop early if the whole bench has taken this long (each round is bounded too).
BUDGET_SECONDS = 60.0
GOAL_MS = 100.0
#: The dependencies whose versions decide the figures (typer 0.29 vendors click).
PACKAGES = ("typer", "click", "rich", "pydantic")


def commands() -> dict[str, list[str]]:
    """Label -> argv; the baseline first."""
    py = sys.executable
    found = {
        "python_pass": [py, "-c", "pass"],
        "m_version": [py, "-m", "hookcli", "--version"],
        "m_help": [py, "-m", "hookcli", "--help"],
    }
    script = Path(py).parent / "hook"
    if not script.exists():
        located = shutil.which("hook")
        script = Path(located) if located else script
    if script.exists():
        found["script_version"] = [str(script), "--version"]
        found["script_help"] = [str(script), "--help"]
    return found


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds for one run; a failing command is an error, not a figure."""
    cpu = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, env=child_env(), cwd=ROOT, timeout=30)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return elapsed, _children_cpu() - cpu


def import_seconds(module: str) -> float:
    """Cumulative import time of ``module`` in a fresh interpreter, from ``-X importtime``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=ROOT,
        timeout=30,
        check=True,
    )
    for line in done.stderr.splitlines():  # "import time: SELF | CUMULATIVE | NAME" (µs)
        columns = line.split("|")
        if len(columns) == 3 and columns[2].strip() == module:
            return int(columns[1]) / 1e6
    raise RuntimeError(f"-X importtime did not report {module}")


def versions() -> dict[str, str | None]:
    """The installed versions of the packages that decide the figures."""
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def main() -> None:
    cmds = commands()
    for argv in cmds.values():  # warm the page cache and .pyc files; not timed
        run_once(argv)
    walls: dict[str, list[float]] = {label: [] for label in cmds}
    cpus: dict[str, list[float]] = {label: [] for label in cmds}
    began = time.perf_counter()
    for _ in range(RUNS):
        if time.perf_counter() - began > BUDGET_SECONDS:
            break
        for label, argv in cmds.items():
            wall, cpu = run_once(argv)
            walls[label].append(wall)
            cpus[label].append(cpu)
    base_wall = quantile(walls["python_pass"], 0.5)
    base_cpu = quantile(cpus["python_pass"], 0.5)
    figures: dict[str, object] = {
        "bench": "startup",
        "runs": len(walls["python_pass"]),
        "versions": versions(),
    }
    overheads: list[float] = []
    cpu_overheads: list[float] = []
    for label in cmds:
        median, cpu = quantile(walls[label], 0.5), quantile(cpus[label], 0.5)
        entry: dict[str, float] = {
            "p50_ms": ms(median),
            "p90_ms": ms(quantile(walls[label], 0.9)),
            "cpu_p50_ms": ms(cpu),
        }
        if label != "python_pass":
            entry["overhead_ms"] = ms(median - base_wall)
            entry["cpu_overhead_ms"] = ms(cpu - base_cpu)
            overheads.append(entry["overhead_ms"])
            cpu_overheads.append(entry["cpu_overhead_ms"])
        figures[label] = entry
    for module in ("hookcli.cli", "hookcli.cli.root"):
        times = [import_seconds(module) for _ in range(IMPORT_RUNS)]
        figures[f"import_{module.replace('.', '_')}_ms"] = ms(quantile(times, 0.5))
    figures["goal_overhead_ms"] = GOAL_MS
    figures["goal_met"] = max(overheads) <= GOAL_MS
    # On a loaded machine wall time includes waiting for a core; CPU time says what a quiet
    # machine's wall time would be (start-up does no I/O worth the name).
    figures["cpu_goal_met"] = max(cpu_overheads) <= GOAL_MS
    emit(figures)


if __name__ == "__main__":
    main()
