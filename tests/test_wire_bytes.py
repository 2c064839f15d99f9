"""Ingest keeps bodies as they came off the wire, whatever their ``Content-Encoding``.

A compressed webhook is stored compressed, replayed with the same bytes and headers (so the
sender's signature over the compressed bytes still verifies), its JSON still becomes ``detail``,
``--max-body`` counts wire bytes, and a zip bomb costs the relay no more than the cap.
"""

from __future__ import annotations

import base64
import gzip
import hmac
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from test_listen import Hook, hook, hook_env, listen  # noqa: F401  (hook: the fixture)

from hookcli.relay.server import IngestSettings
from hookcli.relay.service import RunningRelay, start_relay

from conftest import UNIT, LoopThread, RecordingTarget, relay_settings, wait_until
from fixtures.recorder import free_port, sign

TOKEN = "wire-bytes-token-8d1c55e0a7b2"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = b"whsec_wire"
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))

COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "deflate-raw": lambda data: zlib.compress(data)[2:-4],  # DEFLATE without the zlib wrapper
}


def post(
    url: str, body: bytes, headers: dict[str, str], *, chunked: bool = False
) -> tuple[int, dict[str, Any]]:
    """POST raw bytes (chunked: no Content-Length up front); the status and the JSON answer."""
    data: Any = iter([body]) if chunked else body  # urllib sends an iterable chunked
    request = urllib.request.Request(url, data=data, method="POST", headers=headers)
    try:
        with _HTTP.open(request, timeout=UNIT) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.load(exc)


def get(url: str) -> dict[str, Any]:
    with _HTTP.open(urllib.request.Request(url, headers=AUTH), timeout=UNIT) as response:
        answer: dict[str, Any] = json.load(response)
        return answer


async def start_wire_target(target: RecordingTarget) -> web.AppRunner:
    """A recording app that sees request bodies as sent (no server-side decompression)."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", target.handle)
    runner = web.AppRunner(app, access_log=None, auto_decompress=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    target.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    return runner


@pytest.fixture
def token_relay(tmp_path: Path, loop_thread: LoopThread) -> Iterator[RunningRelay]:
    settings = relay_settings(tmp_path / "relay", tokens={TOKEN: ""})
    running = loop_thread.run(start_relay(settings))
    yield running
    loop_thread.run(running.stop())


@pytest.mark.slow
@pytest.mark.parametrize("encoding", sorted(COMPRESS))
def test_compressed_webhook_reaches_the_app_byte_exact(
    encoding: str,
    token_relay: RunningRelay,
    loop_thread: LoopThread,
    hook: Callable[..., Hook],  # noqa: F811  (the fixture imported from test_listen)
) -> None:
    """A signed compressed webhook arrives with the same bytes and headers; the signature holds."""
    target = RecordingTarget()
    runner = loop_thread.run(start_wire_target(target))
    try:
        listener = hook(*listen(token_relay.url, "wire", "--target", target.url, "--json"),
                        "--token", TOKEN)  # fmt: skip
        listener.wait_ready()
        document = {"type": "invoice.paid", "amount": 4200, "note": "caf\u00e9  spaced"}
        wire = COMPRESS[encoding](json.dumps(document, indent=2).encode())
        coding = "deflate" if encoding.startswith("deflate") else encoding
        headers = {
            "Content-Type": "application/json",
            "Content-Encoding": coding,
            "X-Signature": sign(SECRET, wire),
        }
        status, answer = post(f"{token_relay.url}/v1/ingest/shop", wire, headers)
        assert status == 202
        wait_until(lambda: len(target.requests) == 1, UNIT, "the replayed webhook")
    finally:
        loop_thread.run(runner.cleanup())
    [got] = target.requests
    assert got.body == wire
    received = {k.lower(): v for k, v in got.headers}
    assert received["content-encoding"] == coding
    assert hmac.compare_digest(received["x-signature"], sign(SECRET, got.body))
    stored = get(f"{token_relay.url}/v1/events/{answer['id']}")
    assert base64.b64decode(stored["request"]["body_b64"]) == wire
    assert stored["event"]["detail"] == document  # still parsed, for patterns


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_cap_counts_wire_bytes(tmp_path: Path, loop_thread: LoopThread, chunked: bool) -> None:
    """Under the cap on the wire is accepted even when it decodes past it; over it is a 413."""
    cap = 4096
    settings = relay_settings(
        tmp_path / "relay", tokens={TOKEN: ""}, ingest=IngestSettings(max_body=cap)
    )
    running = loop_thread.run(start_relay(settings))
    try:
        url = f"{running.url}/v1/ingest/zip"
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        small = gzip.compress(json.dumps({"pad": "x" * (cap * 4)}).encode())
        assert len(small) < cap
        status, answer = post(url, small, headers, chunked=chunked)
        assert status == 202
        stored = get(f"{running.url}/v1/events/{answer['id']}")
        assert base64.b64decode(stored["request"]["body_b64"]) == small
        assert stored["event"]["detail"] == {}  # decoded past the cap: not parsed, still kept
        large = gzip.compress(os.urandom(cap))  # incompressible: the wire form passes the cap
        assert len(large) > cap
        status, answer = post(url, large, headers, chunked=chunked)
        assert status == 413, answer
        assert f"{cap}-byte cap" in answer["error"]
    finally:
        loop_thread.run(running.stop())


def _peak_rss_kib(pid: int) -> int:
    """The process's peak resident set (VmHWM) in KiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


@pytest.mark.slow
def test_zip_bomb_costs_no_more_than_the_cap(tmp_path: Path) -> None:
    """256 MiB of zeros gzipped small: accepted as bytes, not inflated, relay memory flat."""
    port = free_port()
    log = (tmp_path / "relay.log").open("wb")
    relay = subprocess.Popen(
        [sys.executable, "-m", "hookcli", "relay", "serve", "--ingest-only", "--port", str(port),
         "--data-dir", str(tmp_path / "data"), "--token", TOKEN, "--max-body", "1MiB"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=hook_env(tmp_path),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            assert relay.poll() is None, (tmp_path / "relay.log").read_text()
            try:
                return bool(get(url + "/v1/health")["ok"])
            except OSError:
                return False

        wait_until(healthy, UNIT * 2, "the relay to answer /v1/health")
        baseline = _peak_rss_kib(relay.pid)
        packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        chunk = bytes(1024 * 1024)
        bomb = b"".join(packer.compress(chunk) for _ in range(256)) + packer.flush()
        assert len(bomb) < 1024 * 1024
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        status, answer = post(f"{url}/v1/ingest/bomb", bomb, headers)
        assert status == 202, answer
        stored = get(f"{url}/v1/events/{answer['id']}")
        assert stored["event"]["detail"] == {}
        assert base64.b64decode(stored["request"]["body_b64"]) == bomb
        grown_mib = (_peak_rss_kib(relay.pid) - baseline) / 1024
        assert grown_mib < 64, f"the relay's peak RSS grew by {grown_mib:.0f} MiB"
    finally:
        relay.terminate()
        relay.wait(UNIT)
        log.close()
