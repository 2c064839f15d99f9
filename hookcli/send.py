"""``hook send`` as a library: turn lines or options into PutEvents entries and put them on a bus.

Against a local relay the events go onto the relay's emulated bus (found through ``/v1/info``), so
they travel the real path: PutEvents -> rule -> SQS -> relay. Against AWS, boto3's normal
credential chain is used.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hookcli.errors import AuthError, InvalidEventError, RelayError, UsageError
from hookcli.events import Document

if TYPE_CHECKING:
    from hookcli.samples import Webhook
    from hookcli.sources.eventbridge import PutResult

#: What the embedded relay's emulated bus stamps on events (moto's defaults, sources/emulator.py).
LOCAL_ACCOUNT = "123456789012"
LOCAL_REGION = "us-east-1"
_PUT_KEYS = {"Source", "DetailType", "Detail", "Resources", "Time", "EventBusName", "TraceHeader"}


@dataclass(frozen=True, slots=True)
class Bus:
    """Where events are put: a bus, and how to reach it (emulator endpoint or AWS profile)."""

    bus: str
    region: str | None
    profile: str | None = None
    endpoint_url: str | None = None
    relay: str | None = None

    @property
    def description(self) -> str:
        """One line for the user: which bus, where."""
        where = f"emulated bus at {self.endpoint_url}" if self.endpoint_url else "AWS"
        return f"bus {self.bus!r} ({where}{', region ' + self.region if self.region else ''})"


def entry_from(value: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A PutEvents entry from either a PutEvents-shaped or an EventBridge-shaped object."""
    if is_put_entry(value):
        unknown = set(value) - _PUT_KEYS
        if unknown:
            raise InvalidEventError(f"{where}: unknown PutEvents field(s) {sorted(unknown)}")
        source, detail_type, detail = (
            value.get("Source"),
            value.get("DetailType"),
            value.get("Detail", "{}"),
        )
        resources = value.get("Resources", [])
        extra = {k: value[k] for k in ("Time", "EventBusName", "TraceHeader") if k in value}
    else:
        source, detail_type = value.get("source"), value.get("detail-type")
        detail, resources = value.get("detail", {}), value.get("resources", [])
        extra = (
            {"Time": value["time"]} if isinstance(value.get("time"), str) and value["time"] else {}
        )
    if not isinstance(source, str) or not source:
        raise InvalidEventError(f"{where}: needs a non-empty source (Source)")
    if not isinstance(detail_type, str) or not detail_type:
        raise InvalidEventError(f"{where}: needs a non-empty detail-type (DetailType)")
    if isinstance(detail, str):
        try:
            parsed = json.loads(detail)
        except ValueError:
            raise InvalidEventError(f"{where}: Detail is not JSON text") from None
        detail = parsed
    if not isinstance(detail, dict):
        raise InvalidEventError(f"{where}: detail must be a JSON object")
    if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
        raise InvalidEventError(f"{where}: resources must be a list of strings")
    entry: dict[str, Any] = {
        "Source": source,
        "DetailType": detail_type,
        "Detail": json.dumps(detail, separators=(",", ":"), ensure_ascii=False),
        **extra,
    }
    if resources:
        entry["Resources"] = resources
    return entry


def is_put_entry(value: Mapping[str, Any]) -> bool:
    """PutEvents-shaped (``Source``/``DetailType``/``Detail``) rather than an EventBridge event."""
    return any(key in value for key in ("Source", "DetailType", "Detail"))


def entries_from_documents(documents: Sequence[Document], name: str) -> list[dict[str, Any]]:
    """PutEvents entries from an events file's objects; the first bad one is an error naming it."""
    return [entry_from(doc.value, doc.where(name)) for doc in documents]


def envelope_from(
    entry: Mapping[str, Any],
    *,
    event_id: str,
    time: str,
    account: str = LOCAL_ACCOUNT,
    region: str = LOCAL_REGION,
) -> dict[str, Any]:
    """The EventBridge event a bus makes of a PutEvents entry: what the relay stores and matches.

    EventBridge fills id, account, region and (unless the entry has ``Time``) time, and parses
    ``Detail`` into an object (PutEvents API reference, PutEventsRequestEntry).
    """
    return {
        "version": "0",
        "id": event_id,
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": account,
        "time": entry.get("Time") or time,
        "region": region,
        "resources": list(entry.get("Resources", [])),
        "detail": json.loads(entry["Detail"]),
    }


def as_stored(document: Document, name: str, *, event_id: str, time: str) -> dict[str, Any]:
    """The event the relay would store for one object of an events file sent with ``send --file``.

    Either shape (PutEvents entry or EventBridge event) goes through ``entry_from``, as
    ``hook send`` does, then gets the envelope the bus adds. An EventBridge-shaped object's own
    id, account, region and time are kept: it is usually a captured real event.
    """
    value = document.value
    entry = entry_from(value, document.where(name))
    envelope = envelope_from(entry, event_id=event_id, time=time)
    if not is_put_entry(value):
        for key in ("id", "account", "region", "time", "version"):
            if isinstance(value.get(key), str) and value[key]:
                envelope[key] = value[key]
    return envelope


async def resolve_target(
    relay: str | None, token: str | None, bus: str | None, region: str | None, profile: str | None
) -> Bus:
    """An explicit --bus means AWS; otherwise ask the relay which bus it serves."""
    if bus is not None:
        return Bus(bus=bus, region=region, profile=profile)
    from hookcli.client import RelayApi
    from hookcli.config import resolve

    connection = resolve(relay, token)
    async with RelayApi.open(connection, timeout=5.0) as api:
        try:
            info = await api.info()
        except RelayError as exc:
            if connection.configured:
                raise
            raise RelayError(
                f"no relay answers at {connection.http_url}",
                hint="start one (`hook relay serve` or `hook listen`), pass --relay, "
                "or give --bus to put events on an AWS bus directly",
            ) from exc
    mode = info.get("mode")
    if mode == "ingest":
        raise UsageError(
            f"the relay at {connection.http_url} has no EventBridge bus (--ingest-only)",
            hint=f"POST webhooks to {connection.http_url}/v1/ingest/<channel> instead",
        )
    endpoint = info.get("endpoint_url") or None
    return Bus(
        bus=str(info.get("bus") or "default"),
        region=str(info.get("region") or "") or region,
        profile=None if endpoint else profile,
        endpoint_url=endpoint,
        relay=connection.http_url,
    )


def send(
    target: Bus,
    entries: Sequence[Mapping[str, Any]],
    on_progress: Callable[[int], None] | None = None,
) -> list[PutResult]:
    """Put the entries (batches of 10, as PutEvents allows); one PutResult per entry, in order."""
    from hookcli.sources.eventbridge import AwsSettings, put_events

    credentials = None
    if target.endpoint_url:
        from hookcli.sources.emulator import CREDENTIALS

        credentials = CREDENTIALS
    settings = AwsSettings(
        bus=target.bus,
        region=target.region,
        profile=target.profile,
        endpoint_url=target.endpoint_url,
        credentials=credentials,
    )
    results: list[PutResult] = []
    chunk = 100
    for start in range(0, len(entries), chunk):
        results.extend(put_events(settings, entries[start : start + chunk]))
        if on_progress is not None:
            on_progress(len(results))
    return _reindex(results)


def _reindex(results: list[PutResult]) -> list[PutResult]:
    """put_events numbers entries per call; renumber them over the whole input."""
    from dataclasses import replace

    return [replace(result, index=position) for position, result in enumerate(results)]


async def post_webhook(
    relay: str | None, token: str | None, channel: str, webhook: Webhook
) -> dict[str, Any]:
    """POST a webhook to the relay's ``/v1/ingest/<channel>`` as its provider would.

    No bearer token is sent: ingest needs none, and it keeps every header it gets (a token
    would be stored with the event). Returns the relay's answer (``id``, ``seq``) and ``url``.
    """
    import aiohttp

    from hookcli.config import resolve

    url = f"{resolve(relay, token).http_url}/v1/ingest/{channel}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
            async with session.post(url, data=webhook.body, headers=list(webhook.headers)) as r:
                text = await r.text()
                status = r.status
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise RelayError(
            f"no relay answers at {url}: {exc}",
            hint="start one (`hook relay serve` or `hook listen`), or pass --relay",
        ) from exc
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise RelayError(f"{url} answered HTTP {status} without JSON: is it a hook relay?")
    if status == 401:
        raise AuthError(
            str(answer.get("error") or "signature check failed"),
            hint="pass the channel's secret (its --ingest-secret on the relay) with --secret "
            "or HOOK_SEND_SECRET",
        )
    if status >= 400:
        raise RelayError(
            str(answer.get("error") or f"HTTP {status} from {url}"), hint=answer.get("hint")
        )
    return {**answer, "url": url}
