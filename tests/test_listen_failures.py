"""A target that cannot run at all stops `hook listen` with its error (exit 8): a listener never
sits connected and silent (the stale-listener complaint about other tools)."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from hookcli.relay.service import RunningRelay

from conftest import UNIT, wait_until

ROOT = Path(__file__).resolve().parent.parent

HANDLER = """
import os

def handler(event, context):
    if event["detail"].get("die"):
        os._exit(3)  # the worker process dies mid-event
    return "ok"
"""


@pytest.mark.slow
def test_listener_exits_when_its_handler_worker_cannot_restart(
    relay: RunningRelay, tmp_path: Path
) -> None:
    """The handler's worker dies and its Python is gone: exit 8 with the reason, not a hang."""
    python = tmp_path / "python"
    python.symlink_to(sys.executable)  # the listener spawns workers with this path
    (tmp_path / "app.py").write_text(HANDLER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOK_")}
    # The symlink is outside the virtualenv: hand its packages over explicitly.
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *site.getsitepackages()])
    env["HOOK_CONFIG"] = str(tmp_path / "none.toml")
    listener = subprocess.Popen(
        [str(python), "-m", "hookcli", "listen", "--relay", relay.url, "--name", "doomed",
         "--handler", f"{tmp_path / 'app.py'}:handler", "--retries", "1", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip
    lines: list[str] = []
    assert listener.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(listener.stdout), daemon=True)
    reader.start()
    try:
        wait_until(lambda: any('"type":"ready"' in line for line in lines), UNIT * 2, "ready")
        python.unlink()
        request = urllib.request.Request(
            f"{relay.url}/v1/ingest/c", data=json.dumps({"die": True}).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=UNIT):
            pass
        listener.wait(UNIT * 3)
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait(UNIT)
        reader.join(UNIT)
        assert listener.stdout is not None and listener.stderr is not None
        stderr = listener.stderr.read()
        listener.stdout.close()
        listener.stderr.close()
    assert listener.returncode == 8, stderr
    assert "Error: cannot start a Python worker" in stderr
    kinds = [json.loads(line)["type"] for line in lines]
    assert kinds[-2:] == ["state", "error"]  # closed, then the reason as the last line
    assert json.loads(lines[-2])["state"] == "closed"
