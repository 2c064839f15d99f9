"""The README's "Failures, grouped" block, run as typed: after a real listener recorded a
failure against a real app that then recovered, each line in its own pseudo-terminal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hookcli.relay.service import RunningRelay

from conftest import UNIT, RecordingTarget, auth_headers, wait_until
from fixtures.terminal import PtyProcess

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTION = README.split("## Everyday use", 1)[1].split("\n## ", 1)[0]
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def block() -> list[str]:
    """The command lines of the README's ``<!-- failures -->`` block."""
    found = re.search(r"<!-- failures -->\n```sh\n(.*?)```", SECTION, flags=re.S)
    assert found is not None, "the Everyday use section has no <!-- failures --> block"
    return [line for line in found.group(1).splitlines() if line.strip()]


def shown() -> str:
    """The output the README shows for that block."""
    after = SECTION.split("<!-- failures -->", 1)[1]
    found = re.search(r"```text\n(.*?)```", after, flags=re.S)
    assert found is not None
    return found.group(1)


def api(relay: RunningRelay, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        relay.url + path, data=data, method="GET" if body is None else "POST",
        headers={**auth_headers(), "Content-Type": "application/json"},
    )  # fmt: skip
    with _HTTP.open(request, timeout=UNIT) as response:
        return json.loads(response.read())


@pytest.fixture
def screens(
    relay: RunningRelay, http_target: RecordingTarget, tmp_path: Path
) -> Iterator[list[tuple[int, str]]]:
    """`hook listen --target APP` records one failure (the app answers 500); the app is fixed
    (200); then the block's lines run one after the other. Each line's exit code and screen."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOK_")}
    venv_bin = str(Path(sys.executable).parent)
    env.update(
        PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
        HOOK_CONFIG=str(tmp_path / "none.toml"),
        HOOK_RELAY=relay.url,
        COLUMNS="80",
        TERM="xterm-256color",
    )
    env.pop("NO_COLOR", None)
    http_target.default_status = 500
    listener = subprocess.Popen(
        [sys.executable, "-m", "hookcli", "listen", "--target", http_target.url, "--from", "1",
         "--retries", "0", "--json"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        api(relay, "/v1/ingest/shop", {"orderId": "o-1044", "currency": "JPY"})
        failed = urllib.parse.urlencode({"status": "failed"})
        wait_until(lambda: len(api(relay, f"/v1/events?{failed}")["events"]) == 1, UNIT * 3)
    finally:
        listener.terminate()
        listener.communicate(timeout=UNIT)
    http_target.default_status = 200
    ran = []
    for line in block():
        terminal = PtyProcess(["bash", "-c", line], env, columns=80, rows=24, cwd=ROOT)
        code = terminal.proc.wait(UNIT * 3)
        terminal._reader.join(UNIT)
        os.close(terminal.master)
        ran.append((code, terminal.text))
    yield ran


def test_the_block_lists_replays_and_empties_the_group(
    screens: list[tuple[int, str]], http_target: RecordingTarget
) -> None:
    """One group of 1 on the listener's own target; the replay delivers it; nothing is left."""
    port = http_target.url.rsplit(":", 1)[1]
    (listed, first), (replayed, second), (again, third) = screens
    assert (listed, replayed, again) == (0, 0, 0), (first, second, third)
    [row] = [line for line in first.splitlines() if line.startswith("1 ")]
    assert row.split()[:5] == ["1", "1", f":{port}", "HTTP", "500:"]
    assert "Replaying 1 failed delivery of issue #1 (HTTP 500" in second
    assert "-> 200" in second
    assert third.strip() == "No failures: every delivery's latest attempt succeeded."


def test_the_readme_shows_what_the_block_shows() -> None:
    """The output pasted in the README carries the key lines the run checks."""
    text = shown()
    assert re.search(r"^1\s+1\s+:3000\s+HTTP 500:", text, flags=re.M), text
    assert "Replaying 1 failed delivery of issue #1 (HTTP 500" in text
    assert "-> 200" in text
    assert text.rstrip().endswith("No failures: every delivery's latest attempt succeeded.")
