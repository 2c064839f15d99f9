"""A hostile web page in a real browser (headless Chromium) against the default loopback relay.

The relay runs as `hook relay serve` does by default on a laptop (loopback, no --token: the local
token), with a `hook listen` delivering to a local app. A page from another loopback origin tries
every attack of issue 8 (tests/fixtures/browser/attack.html); nothing may be read, injected,
stored or moved, and the listener must stay connected. Another page tries to reach the relay's
queue through the embedded AWS emulator (tests/fixtures/browser/emulator.html).
"""

from __future__ import annotations

import json
import logging
import shutil
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from test_listen import Hook, hook_env

from hookcli.relay.service import RunningRelay, start_relay

from conftest import UNIT, LoopThread, RecordingTarget, relay_settings, start_target, wait_until

INSTALL = (
    "needs Chromium and its driver (apt-get install chromium chromium-driver) "
    "and selenium (pip install -e '.[test]')"
)
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
PAGES = Path(__file__).parent / "fixtures" / "browser"
SECRET = "secret-marker-7f3a"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None, reason=INSTALL),
]
webdriver = pytest.importorskip("selenium.webdriver", reason=INSTALL)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Chromium from the system, driven by the system chromedriver (no downloads)."""
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    assert CHROMIUM is not None and CHROMEDRIVER is not None
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        # Loopback only: every name but localhost fails to resolve.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(UNIT * 2)
    driver.set_script_timeout(UNIT * 2)
    try:
        yield driver
    finally:
        driver.quit()


async def serve_page(name: str = "attack.html") -> tuple[web.AppRunner, int]:
    """An attack page on 127.0.0.1 (reached as localhost or 127.0.0.1: two other origins)."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=(PAGES / name).read_text(), content_type="text/html")

    app = web.Application()
    app.router.add_get(f"/{name}", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, int(runner.addresses[0][1])


async def ingest(relay: RunningRelay, body: dict[str, Any]) -> str:
    """What a webhook sender does: POST to ingest, no token. Returns the event id."""
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{relay.url}/v1/ingest/shop", json=body) as response:
            assert response.status == 202
            return str((await response.json())["id"])


async def snapshot(relay: RunningRelay, event_id: str) -> dict[str, Any]:
    """What an attack could change: the store head, the listener's cursor, the deliveries."""
    store = relay.relay.store
    listener = store.listener("dev")
    return {
        "head": store.head(),
        "cursor": listener.cursor if listener else None,
        "deliveries": [(d.listener, d.status, d.replay) for d in store.deliveries(event_id)],
        # A page subscribing would add a listener or move one.
        "listeners": [(known.name, known.cursor) for known in store.listeners()],
    }


@pytest.mark.parametrize("page_host", ["localhost", "127.0.0.1"], ids=["cross-site", "same-site"])
def test_a_web_page_can_neither_read_nor_inject_nor_disturb_the_listener(
    tmp_path: Path,
    browser: Any,
    loop_thread: LoopThread,
    caplog: pytest.LogCaptureFixture,
    page_host: str,
) -> None:
    """Every attack from another loopback origin is refused; `hook listen` keeps delivering."""
    caplog.set_level(logging.DEBUG, logger="hook.relay.guard")
    relay = loop_thread.run(start_relay(relay_settings(tmp_path / "relay")))
    target = RecordingTarget()
    target_runner = loop_thread.run(start_target(target))
    page_runner, page_port = loop_thread.run(serve_page())
    listener = Hook(
        ["listen", "--relay", relay.url, "--target", target.url, "--name", "dev", "--json"],
        hook_env(tmp_path),
        tmp_path,
    )
    try:
        listener.wait_ready()
        event_id = loop_thread.run(ingest(relay, {"card": SECRET}))
        listener.wait_results(1)
        wait_until(
            lambda: loop_thread.run(snapshot(relay, event_id))["cursor"] == 1,
            what="the listener's cursor to be recorded",
        )
        before = loop_thread.run(snapshot(relay, event_id))

        query = f"relay={relay.url}&event={event_id}&listener=dev"
        browser.get(f"http://{page_host}:{page_port}/attack.html?{query}")
        wait_until(
            lambda: browser.execute_script("return window.done") is True,
            UNIT * 6,
            "the page's attacks to settle",
        )
        report = browser.execute_script("return window.report")

        # Nothing read: no websocket opened, responses opaque or refused, no event data.
        for name in ("ws_tail", "ws_takeover"):
            assert report[name]["opened"] is False, report[name]
            assert report[name]["messages"] == [], report[name]
        for name in ("history_no_cors", "event_no_cors", "ingest_text_plain", "forged_result"):
            assert report[name] == {"type": "opaque", "status": 0, "body": ""}, report[name]
        for name in ("history_cors", "health_cors", "preflight", "forged_result_cors"):
            assert "threw" in report[name], report[name]
        assert SECRET not in json.dumps(report)

        # Nothing injected, stored, answered or moved; the local app got nothing more.
        after = loop_thread.run(snapshot(relay, event_id))
        assert after == before
        assert len(target.requests) == 1

        # The requests reached the relay and its guard refused them (not the browser alone).
        refused = " ".join(r.getMessage() for r in caplog.records if r.name == "hook.relay.guard")
        for path in ("/v1/stream", "/v1/events", "/v1/ingest/x", f"/v1/events/{event_id}/results"):
            assert f" {path}:" in refused, refused

        # The listener never noticed: still connected, and it delivers the next event.
        assert listener.proc.poll() is None
        states = [line["state"] for line in listener.of("state")]
        assert "reconnecting" not in states and "closed" not in states, states
        assert listener.of("error") == []
        assert len(listener.of("ready")) == 1
        loop_thread.run(ingest(relay, {"after": "attack"}))
        results = listener.wait_results(2)
        assert results[1]["status"] == "delivered"
        assert len(target.requests) == 2
    finally:
        listener.close()
        loop_thread.run(page_runner.cleanup())
        loop_thread.run(target_runner.cleanup())
        loop_thread.run(relay.stop())


@pytest.mark.parametrize("page_host", ["localhost", "127.0.0.1"], ids=["cross-site", "same-site"])
def test_a_web_page_cannot_inject_through_the_embedded_emulator(
    tmp_path: Path, browser: Any, loop_thread: LoopThread, page_host: str
) -> None:
    """In local mode, a page's SendMessage or reset sent to moto (form, fetch, img) is refused."""
    from hookcli.sources.emulator import CREDENTIALS
    from hookcli.sources.eventbridge import AwsSettings, clients, teardown

    # moto's state is per process: a relay name of its own, and its queue and rule removed at
    # the end, so later tests' events on the default bus do not pile up in its queue.
    settings = relay_settings(tmp_path / "relay", source=True, name=f"browser-{page_host[:3]}")
    relay = loop_thread.run(start_relay(settings))
    info = relay.info
    aws = AwsSettings(
        bus=info.bus,
        region=info.region,
        endpoint_url=info.endpoint_url,
        credentials=CREDENTIALS,
        relay_name=info.name,
    )
    page_runner, page_port = loop_thread.run(serve_page("emulator.html"))
    try:
        assert info.mode == "local" and info.endpoint_url.startswith("http://127.0.0.1:")

        def message(marker: str) -> str:
            """An EventBridge event as the bus's rule delivers it to the queue."""
            body = {"id": marker, "source": "evil", "detail-type": "x", "detail": {}}
            return json.dumps({**body, "account": info.account, "region": info.region})

        query = urllib.parse.urlencode(
            {"endpoint": info.endpoint_url, "queue": info.queue_url, "body": message("injected")}
        )
        browser.get(f"http://{page_host}:{page_port}/emulator.html?{query}")
        wait_until(
            lambda: browser.execute_script("return window.done") is True,
            UNIT * 6,
            "the page's attacks to settle",
        )
        report = browser.execute_script("return window.report")
        for name in ("fetch_form", "fetch_text", "fetch_get", "reset"):
            assert report[name] == {"type": "opaque", "status": 0, "body": ""}, report[name]
        assert report["img"] == {"loaded": False}

        # The same SendMessage from boto3 (no browser headers) is taken: the queue survived
        # (no reset), and since it hands out messages in order, anything the page had put on
        # it would have been committed before this one.
        _, sqs, _ = clients(aws)
        sqs.send_message(QueueUrl=info.queue_url, MessageBody=message("sentinel"))

        async def committed() -> list[str]:
            return [item.event.id for item in relay.relay.store.read(0, 10)]

        wait_until(lambda: loop_thread.run(committed()) != [], UNIT * 2, "the sentinel")
        assert loop_thread.run(committed()) == ["sentinel"]
    finally:
        loop_thread.run(page_runner.cleanup())
        teardown(aws)
        loop_thread.run(relay.stop())
