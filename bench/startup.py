"""Startup: ``hook --version`` and ``hook --help`` against a bare ``python -c pass``, same run.

Each command runs RUNS times, interleaved round by round (so a noisy moment hits every command
alike), via ``python -m hookcli`` and via the installed console script when there is one.
Reports median and p90 wall time in ms and the median overhead over bare Python.
Goal: ``hook --version`` within 150 ms of bare Python.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, child_env, emit, ms, quantile

RUNS = 20
#: Stop early if the whole bench has taken this long (each round is bounded too).
BUDGET_SECONDS = 60.0
GOAL_MS = 150.0


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


def run_once(argv: list[str]) -> float:
    """Wall seconds for one run; a failing command is an error, not a figure."""
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, env=child_env(), cwd=ROOT, timeout=30)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return elapsed


def main() -> None:
    cmds = commands()
    for argv in cmds.values():  # warm the page cache and .pyc files; not timed
        run_once(argv)
    times: dict[str, list[float]] = {label: [] for label in cmds}
    began = time.perf_counter()
    for _ in range(RUNS):
        if time.perf_counter() - began > BUDGET_SECONDS:
            break
        for label, argv in cmds.items():
            times[label].append(run_once(argv))
    base = quantile(times["python_pass"], 0.5)
    figures: dict[str, object] = {"bench": "startup", "runs": len(times["python_pass"])}
    for label, values in times.items():
        median = quantile(values, 0.5)
        figures[label] = {"p50_ms": ms(median), "p90_ms": ms(quantile(values, 0.9))}
        if label != "python_pass":
            figures[label]["overhead_ms"] = ms(median - base)  # type: ignore[index]
    overheads = [
        figures[label]["overhead_ms"]  # type: ignore[index]
        for label in ("m_version", "script_version")
        if label in figures
    ]
    figures["goal_version_overhead_ms"] = GOAL_MS
    figures["goal_met"] = max(overheads) <= GOAL_MS
    emit(figures)


if __name__ == "__main__":
    main()
