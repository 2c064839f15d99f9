"""The relay end to end with real peers: moto's EventBridge + SQS, and a relay process killed with
SIGKILL mid-stream (nothing committed is lost)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from hookcli.relay.service import start_relay
from hookcli.sources.emulator import CREDENTIALS
from hookcli.sources.eventbridge import AwsSettings, sqs_client

from conftest import UNIT, auth_headers, relay_settings, run


async def subscribe(url: str, name: str, pattern: dict[str, Any], start: Any = "now") -> Any:
    ws = await connect(url, additional_headers=auth_headers())
    await ws.send(json.dumps({"type": "hello", "protocol": 1}))
    await ws.recv()
    await ws.send(
        json.dumps({"type": "subscribe", "name": name, "pattern": pattern, "from": start})
    )
    assert json.loads(await ws.recv())["type"] == "subscribed"
    return ws


async def events_of(ws: Any, count: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(UNIT * 2):
        while len(got) < count:
            message = json.loads(await ws.recv())
            if message["type"] == "event":
                got.append(message)
    return got


@pytest.mark.slow
def test_eventbridge_to_listener_through_moto(tmp_path: Path) -> None:
    """put_events on the emulated bus -> rule -> SQS -> relay -> websocket, pattern applied;
    an SQS redelivery of the same event id is stored and sent once."""

    async def main() -> None:
        relay = await start_relay(relay_settings(tmp_path / "r", source=True))
        try:
            from hookcli.send import Bus, entry_from, send

            ws = await subscribe(
                relay.ws_url, "orders", {"detail": {"total": [{"numeric": [">", 100]}]}}
            )
            bus = Bus(
                bus=relay.info.bus, region=relay.info.region, endpoint_url=relay.info.endpoint_url
            )
            entries = [
                entry_from({"source": "shop", "detail-type": "Order", "detail": {"total": t}}, "x")
                for t in (50, 150, 99, 300)
            ]
            results = await asyncio.to_thread(send, bus, entries)
            assert all(r.ok for r in results)
            got = await events_of(ws, 2)
            assert [m["event"]["detail"]["total"] for m in got] == [150, 300]
            assert got[0]["event"]["id"] == results[1].event_id
            assert got[0]["event"]["region"] == relay.info.region
            assert got[0]["event"]["account"] == relay.info.account  # as EventBridge sets it
            # SQS is at-least-once: deliver the same EventBridge event to the queue again.
            sqs = sqs_client(
                AwsSettings(
                    region=relay.info.region,
                    endpoint_url=relay.info.endpoint_url,
                    credentials=CREDENTIALS,
                )
            )
            await asyncio.to_thread(
                sqs.send_message,
                QueueUrl=relay.info.queue_url,
                MessageBody=json.dumps(got[0]["event"]),
            )
            fresh = entry_from({"source": "s", "detail-type": "d", "detail": {"total": 500}}, "x")
            (marker,) = await asyncio.to_thread(send, bus, [fresh])
            after = await events_of(ws, 1)
            assert after[0]["event"]["id"] == marker.event_id  # the redelivered copy never came
            assert relay.relay.store.stats()["events"] == 5
            await ws.close()
        finally:
            await relay.stop()

    run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_relay_process(port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOK_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hookcli",
            "relay",
            "serve",
            "--ingest-only",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.monotonic() + UNIT * 2
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.02)
    process.kill()
    raise AssertionError("relay process did not start")


@pytest.mark.slow
def test_relay_sigkill_mid_stream_loses_nothing(tmp_path: Path) -> None:
    """Every event the relay accepted (202) before a SIGKILL reaches the listener after restart."""
    port = free_port()
    data = tmp_path / "data"
    process = start_relay_process(port, data)
    url = f"http://127.0.0.1:{port}"
    accepted: list[str] = []
    received: dict[str, int] = {}

    subscribed = asyncio.Event()

    async def listen(stop: asyncio.Event) -> None:
        """A listener that reconnects and resumes with `last`, answering every event."""
        while not stop.is_set():
            try:
                ws = await subscribe(f"ws://127.0.0.1:{port}/v1/stream", "survivor", {}, "last")
            except (OSError, ConnectionClosed, TimeoutError):
                await asyncio.sleep(0.05)
                continue
            subscribed.set()  # a never-seen name starts at `now`: ingest only after this
            try:
                async for text in ws:
                    message = json.loads(text)
                    if message["type"] != "event":
                        continue
                    event_id = message["event"]["id"]
                    received[event_id] = received.get(event_id, 0) + 1
                    answer = {"type": "result", "seq": message["seq"], "id": event_id}
                    await ws.send(json.dumps({**answer, "status": "delivered"}))
            except (OSError, ConnectionClosed, TimeoutError):
                await asyncio.sleep(0.05)
            finally:
                await ws.close()

    async def ingest(session: aiohttp.ClientSession, n: int) -> None:
        try:
            async with session.post(f"{url}/v1/ingest/c", json={"n": n}) as response:
                if response.status == 202:
                    accepted.append((await response.json())["id"])
        except aiohttp.ClientError:
            pass  # the relay is down: not accepted, so not owed

    async def main() -> None:
        nonlocal process
        stop = asyncio.Event()
        listener = asyncio.create_task(listen(stop))
        await asyncio.wait_for(subscribed.wait(), UNIT)
        async with aiohttp.ClientSession() as session:
            for n in range(150):
                await ingest(session, n)
                if n == 75:
                    process.send_signal(signal.SIGKILL)
                    process.wait(UNIT)
                    for m in range(1000, 1005):  # refused while down
                        await ingest(session, m)
                    process = start_relay_process(port, data)
            deadline = time.monotonic() + UNIT * 3
            while set(accepted) - set(received) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        stop.set()
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)

    try:
        run(main())
    finally:
        process.kill()
        process.wait(UNIT)
    assert len(accepted) >= 145
    missing = set(accepted) - set(received)
    assert not missing, f"{len(missing)} accepted events never reached the listener"
