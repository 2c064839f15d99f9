"""The relay's guard on loopback: Host (DNS rebinding), the local token, browser signals, OPTIONS,
the emulator's browser refusal, one relay per store, and SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hookcli.config import load_local_token
from hookcli.errors import StoreError
from hookcli.relay.guard import GuardSettings
from hookcli.relay.service import RunningRelay, start_relay

from conftest import UNIT, LoopThread, auth_headers, relay_settings, run, wait_until

TOKEN = "explicit-token-0123456789"


async def call(
    relay: RunningRelay,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    data: bytes = b"",
) -> tuple[int, dict[str, str], Any]:
    """One raw request; returns status, response headers and the JSON body (or None)."""
    async with aiohttp.ClientSession() as session:
        async with session.request(
            method, relay.url + path, headers=headers or {}, data=data or None
        ) as response:
            text = await response.text()
            body = json.loads(text) if text else None
            return response.status, dict(response.headers), body


async def ws_status(relay: RunningRelay, headers: dict[str, str]) -> int:
    """The status of a websocket upgrade to /v1/stream (101 when it was accepted)."""
    async with aiohttp.ClientSession() as session:
        try:
            async with session.ws_connect(relay.ws_url, headers=headers):
                return 101
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


def with_relay(tmp_path: Path, check: Any, **settings: Any) -> None:
    """Start a relay (the default: local token, no explicit token), run ``check(relay)``, stop."""

    async def main() -> None:
        relay = await start_relay(relay_settings(tmp_path / "relay", **settings))
        try:
            await check(relay)
        finally:
            await relay.stop()

    run(main())


# -------------------------------------------------------------------- Host (DNS rebinding)

REQUESTS = [
    ("GET", "/v1/events?full=1"),
    ("GET", "/v1/health"),
    ("GET", "/v1/info"),
    ("POST", "/v1/ingest/x"),
    ("GET", "/v1/ingest/x"),
    ("OPTIONS", "/v1/ingest/x"),
]


@pytest.mark.parametrize(("method", "path"), REQUESTS)
def test_foreign_host_gets_nothing(tmp_path: Path, method: str, path: str) -> None:
    """A DNS-rebinding page (Host: evil.example) is refused on every path, even with the token."""

    async def check(relay: RunningRelay) -> None:
        port = relay.url.rsplit(":", 1)[1]
        headers = {**auth_headers(), "Host": f"evil.example:{port}"}
        status, _, body = await call(relay, method, path, headers, b'{"n": 1}')
        assert status == 421
        assert "evil.example" in body["error"]
        assert "--allow-host" in body["hint"]
        assert relay.relay.store.head() == 0

    with_relay(tmp_path, check)


def test_foreign_host_cannot_open_the_stream(tmp_path: Path) -> None:
    """The websocket upgrade with a foreign Host is refused before it is upgraded."""

    async def check(relay: RunningRelay) -> None:
        assert await ws_status(relay, {**auth_headers(), "Host": "evil.example"}) == 421

    with_relay(tmp_path, check)


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("localhost:8750", ()),
        ("LOCALHOST", ()),
        ("app.localhost:1", ()),
        ("127.0.0.1:8750", ()),
        ("127.9.9.9", ()),
        ("[::1]:8750", ()),
        ("10.1.2.3:8750", ()),
        ("relay.example.com", ("relay.example.com",)),
        ("Relay.Example.com.:443", ("relay.example.com",)),
    ],
)
def test_hosts_that_name_the_relay_are_answered(
    tmp_path: Path, host: str, allowed: tuple[str, ...]
) -> None:
    """Loopback names, IP literals and --allow-host names are answered (the port is ignored)."""

    async def check(relay: RunningRelay) -> None:
        status, _, body = await call(relay, "GET", "/v1/health", {"Host": host})
        assert status == 200, body

    with_relay(tmp_path, check, guard=GuardSettings(allow_hosts=allowed))


@pytest.mark.parametrize(
    "host", ["relay.example.com", "localhost.evil.example", "127.0.0.1.nip.io"]
)
def test_names_not_allowed_are_refused(tmp_path: Path, host: str) -> None:
    """Names not in --allow-host are refused, including ones that only look like loopback."""

    async def check(relay: RunningRelay) -> None:
        status, _, _ = await call(relay, "GET", "/v1/health", {"Host": host})
        assert status == 421

    with_relay(tmp_path, check, guard=GuardSettings(allow_hosts=("other.example.com",)))


# -------------------------------------------------------------------- the local token


@pytest.mark.parametrize("path", ["/v1/events?full=1", "/v1/info", "/v1/events/x"])
def test_loopback_relay_needs_the_local_token(tmp_path: Path, path: str) -> None:
    """With no --token, the API on loopback answers 401 without the local token, 200/404 with it."""

    async def check(relay: RunningRelay) -> None:
        assert relay.local_token is not None
        assert relay.local_token == load_local_token()
        status, _, body = await call(relay, "GET", path)
        assert status == 401
        assert body["hint"]
        status, _, _ = await call(relay, "GET", path, auth_headers())
        assert status in (200, 404)

    with_relay(tmp_path, check)


def test_loopback_stream_needs_the_local_token(tmp_path: Path) -> None:
    """The websocket is refused without the local token and upgraded with it."""

    async def check(relay: RunningRelay) -> None:
        assert await ws_status(relay, {}) == 401
        assert await ws_status(relay, auth_headers()) == 101

    with_relay(tmp_path, check)


def test_forged_result_without_token_is_refused(tmp_path: Path) -> None:
    """A result POST without the token records nothing."""

    async def check(relay: RunningRelay) -> None:
        _, _, made = await call(relay, "POST", "/v1/ingest/c", data=b"{}")
        body = json.dumps({"listener": "dev", "status": "delivered", "attempt": 1}).encode()
        path = f"/v1/events/{made['id']}/results"
        status, _, _ = await call(relay, "POST", path, {"Content-Type": "text/plain"}, body)
        assert status == 401
        assert relay.relay.store.deliveries(made["id"]) == []

    with_relay(tmp_path, check)


def test_health_and_ingest_stay_open(tmp_path: Path) -> None:
    """Health and ingest need no token: webhook senders cannot send ours."""

    async def check(relay: RunningRelay) -> None:
        assert (await call(relay, "GET", "/v1/health"))[0] == 200
        assert (await call(relay, "POST", "/v1/ingest/c", data=b"{}"))[0] == 202
        assert relay.relay.store.head() == 1

    with_relay(tmp_path, check)


def test_explicit_token_relay_refuses_the_local_token(tmp_path: Path) -> None:
    """A relay given --token does not also accept the local token."""

    async def check(relay: RunningRelay) -> None:
        assert relay.local_token is None
        assert (await call(relay, "GET", "/v1/info", auth_headers()))[0] == 401
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert (await call(relay, "GET", "/v1/info", bearer))[0] == 200

    with_relay(tmp_path, check, tokens={TOKEN: ""})


# -------------------------------------------------------------------- browser signals

BROWSER = [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Origin": "http://127.0.0.1:9999"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
]


@pytest.mark.parametrize("signal_", BROWSER)
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/events?full=1"), ("GET", "/v1/info"), ("POST", "/v1/ingest/x")],
)
def test_web_pages_are_refused(
    tmp_path: Path, signal_: dict[str, str], method: str, path: str
) -> None:
    """An Origin not allowed, or a cross-site fetch, gets 403 on the API and on ingest."""

    async def check(relay: RunningRelay) -> None:
        headers = {**auth_headers(), **signal_, "Content-Type": "text/plain"}
        status, _, body = await call(relay, method, path, headers, b'{"n": 1}')
        assert status == 403
        assert "web pages" in body["error"]
        assert "--allow-origin" in body["hint"]
        assert relay.relay.store.head() == 0

    with_relay(tmp_path, check)


@pytest.mark.parametrize("signal_", BROWSER)
def test_web_pages_cannot_open_the_stream(tmp_path: Path, signal_: dict[str, str]) -> None:
    """A websocket upgrade carrying a browser signal is refused, token or not."""

    async def check(relay: RunningRelay) -> None:
        assert await ws_status(relay, {**auth_headers(), **signal_}) == 403

    with_relay(tmp_path, check)


@pytest.mark.parametrize(
    "headers", [{}, {"Sec-Fetch-Site": "none"}, {"Sec-Fetch-Site": "same-origin"}]
)
def test_ingest_takes_requests_without_cross_site_signals(
    tmp_path: Path, headers: dict[str, str]
) -> None:
    """Server-to-server senders (no Origin, no Sec-Fetch-Site) and direct navigation are taken."""

    async def check(relay: RunningRelay) -> None:
        status, _, _ = await call(relay, "POST", "/v1/ingest/x", headers, b"{}")
        assert status == 202

    with_relay(tmp_path, check)


@pytest.mark.parametrize("path", ["/v1/ingest/x", "/v1/ingest/x/deeper", "/v1/events", "/nope"])
def test_options_is_answered_and_never_stored(tmp_path: Path, path: str) -> None:
    """A CORS preflight gets 204 with no CORS permission and is not stored as an event."""

    async def check(relay: RunningRelay) -> None:
        headers = {
            "Origin": "http://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        }
        status, response, _ = await call(relay, "OPTIONS", path, headers)
        assert status == 204
        assert not [k for k in response if k.lower().startswith("access-control-")]
        assert relay.relay.store.head() == 0

    with_relay(tmp_path, check)


def test_allowed_origin_gets_cors_and_still_needs_the_token(tmp_path: Path) -> None:
    """An --allow-origin page gets CORS permission, and the API still asks it for the token."""
    origin = "https://dash.example.com"

    async def check(relay: RunningRelay) -> None:
        status, headers, _ = await call(
            relay, "OPTIONS", "/v1/events", {"Origin": origin, "Sec-Fetch-Site": "cross-site"}
        )
        assert status == 204
        assert headers["Access-Control-Allow-Origin"] == origin
        assert "Authorization" in headers["Access-Control-Allow-Headers"]
        page = {"Origin": origin, "Sec-Fetch-Site": "cross-site"}
        assert (await call(relay, "GET", "/v1/events", page))[0] == 401
        status, headers, _ = await call(relay, "GET", "/v1/events", {**page, **auth_headers()})
        assert status == 200
        assert headers["Access-Control-Allow-Origin"] == origin

    with_relay(tmp_path, check, guard=GuardSettings(allow_origins=(origin + "/",)))


# -------------------------------------------------------------------- the emulator


@pytest.mark.slow
@pytest.mark.parametrize(
    "signal_",
    [
        {"Origin": "http://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Mode": "no-cors"},
        {"Host": "sqs.us-east-1.amazonaws.com"},
    ],
)
def test_emulator_refuses_web_pages(signal_: dict[str, str]) -> None:
    """moto on loopback refuses a page's form POST (or a foreign Host); boto3's kind is served."""
    import urllib.error
    import urllib.request

    from hookcli.sources.emulator import start_emulator

    form = b"Action=ListQueues&Version=2012-11-05"
    with start_emulator() as emulator:
        plain = {"Content-Type": "application/x-www-form-urlencoded"}

        def post(headers: dict[str, str]) -> int:
            request = urllib.request.Request(emulator.endpoint_url + "/", form, headers)
            try:
                with urllib.request.urlopen(request, timeout=UNIT) as response:
                    return int(response.status)
            except urllib.error.HTTPError as exc:
                exc.close()
                return exc.code

        assert post(plain) == 200
        assert post({**plain, **signal_}) == 403


# -------------------------------------------------------------------- one relay per store


def test_second_relay_on_the_same_store_is_refused_until_the_first_stops(
    tmp_path: Path, loop_thread: LoopThread
) -> None:
    """Two relays on one store: the second fails clearly; once the first stops, one starts."""
    settings = relay_settings(tmp_path / "relay", tokens={TOKEN: ""})
    first = loop_thread.run(start_relay(settings))
    with pytest.raises(StoreError, match="another relay is already using the store") as refused:
        loop_thread.run(start_relay(settings))
    assert refused.value.hint is not None and "--data-dir" in refused.value.hint
    assert refused.value.exit_code == 7
    loop_thread.run(first.stop())
    again = loop_thread.run(start_relay(settings))
    loop_thread.run(again.stop())


def test_another_name_in_the_same_dir_is_another_store(
    tmp_path: Path, loop_thread: LoopThread
) -> None:
    """A different --name in the same --data-dir runs beside the first."""
    first = loop_thread.run(start_relay(relay_settings(tmp_path / "relay", name="a")))
    second = loop_thread.run(start_relay(relay_settings(tmp_path / "relay", name="b")))
    loop_thread.run(second.stop())
    loop_thread.run(first.stop())


# -------------------------------------------------------------------- `hook relay serve`


def serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``hook relay serve --ingest-only`` on a free port, in the default (local token) mode."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HOOK_")}
    environment["HOOK_CONFIG"] = str(tmp_path / "none.toml")
    environment.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "hookcli", "relay", "serve", "--ingest-only", "--port", "0"]
        + ["--data-dir", str(tmp_path / "relay"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )


@pytest.mark.slow
def test_relay_serve_exits_143_on_sigterm_and_a_second_one_is_refused(tmp_path: Path) -> None:
    """SIGTERM ends `hook relay serve` with 143; meanwhile a second one on its store exits 7."""
    first = serve(tmp_path)
    try:
        assert first.stdout is not None
        banner = [first.stdout.readline() for _ in range(4)]
        assert "listening on http://127.0.0.1:" in banner[0], banner
        assert any("auth     local token (" in line for line in banner), banner
        token = load_local_token()
        assert token is not None
        assert not any(token in line for line in banner)
        second = serve(tmp_path)
        out, err = second.communicate(timeout=UNIT * 2)
        assert second.returncode == 7, err
        assert "another relay is already using the store" in err
        assert "--data-dir" in err
        assert "Traceback" not in err
        first.send_signal(signal.SIGTERM)
        wait_until(lambda: first.poll() is not None, UNIT * 2, "relay serve to exit")
        assert first.returncode == 143, first.stderr.read() if first.stderr else ""
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate(timeout=UNIT)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--allow-host", "relay.example.com", "--allow-origin", "https://dash.example.com"], {}),
        (
            [],
            {
                "HOOK_ALLOW_HOST": "relay.example.com",
                "HOOK_ALLOW_ORIGIN": "https://dash.example.com",
            },
        ),
    ],
    ids=["options", "env"],
)
def test_relay_serve_takes_allowed_hosts_and_origins(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    """--allow-host/--allow-origin (or HOOK_ALLOW_HOST/_ORIGIN) reach the running relay's guard."""
    process = serve(tmp_path, *args, env=env)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        url = first.rsplit(" ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:"), first

        async def check() -> None:
            async with aiohttp.ClientSession() as session:
                for host, status in [("relay.example.com:443", 200), ("other.example.com", 421)]:
                    async with session.get(f"{url}/v1/health", headers={"Host": host}) as r:
                        assert r.status == status
                origin = {"Origin": "https://dash.example.com"}
                async with session.options(f"{url}/v1/events", headers=origin) as r:
                    assert r.status == 204
                    assert r.headers["Access-Control-Allow-Origin"] == origin["Origin"]

        run(check())
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=UNIT * 2)
    assert process.returncode == 143
