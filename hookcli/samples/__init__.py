"""Ready-made sample events for ``hook send --sample NAME`` (Stripe CLI's ``trigger``).

Each ``<name>.json`` beside this module is one sample: an AWS service event put on the bus as
EventBridge delivers it (``kind: eventbridge``), or a provider's webhook POSTed to the relay's
ingest with that provider's headers and signature (``kind: webhook``). Shapes follow the
provider's documentation (each file's ``docs``). Strings like ``${uuid}`` or ``${hex:40}`` are
filled in fresh on every send (``fill``), so two sends are two distinct events.

Reading the files is the only I/O here; building and signing a request are pure functions of
the sample, the clock and a random source, so tests pin both.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import hmac
import json
import random
import re
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any, Literal

from hookcli.errors import UsageError

#: What a webhook sample is signed with when no --provider-secret is given (documented in --help).
DEFAULT_PROVIDER_SECRET = "hook-sample-secret"
_TOKEN = re.compile(r"\$\{([a-zA-Z_]+)(?::([^:}]*))?(?::([^}]*))?\}")
_ALPHABETS = {
    "hex": "0123456789abcdef",
    "HEX": "0123456789ABCDEF",
    "alnum": string.ascii_letters + string.digits,
    "ALNUM": string.ascii_uppercase + string.digits,
    "digits": string.digits,
}
#: Kinds whose token, when it is the whole string, becomes a JSON number.
_NUMBERS = {"epoch", "epoch_ms", "epoch_ms_ago", "digits"}


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample as its file describes it (before its ``${...}`` values are filled in)."""

    name: str
    description: str
    kind: Literal["eventbridge", "webhook"]
    docs: str
    #: eventbridge: the event (EventBridge shape); webhook: ``{"headers": ..., "body": ...}``.
    template: dict[str, Any]
    provider: str | None = None
    indent: int | None = None


@dataclass(frozen=True, slots=True)
class Webhook:
    """A webhook request ready to POST: header pairs in order, and the exact body bytes."""

    provider: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


def names() -> list[str]:
    """Every sample's name, sorted."""
    folder = resources.files(__name__)
    return sorted(
        entry.name.removesuffix(".json")
        for entry in folder.iterdir()
        if entry.name.endswith(".json")
    )


def load(name: str) -> Sample:
    """The sample called ``name``; an unknown name is a UsageError suggesting the closest."""
    known = names()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.4)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UsageError(
            f"no sample called {name!r}", hint=f"{hint}see them all: hook send --list-samples"
        )
    data = json.loads(resources.files(__name__).joinpath(f"{name}.json").read_text("utf-8"))
    kind = data["kind"]
    template = data["event"] if kind == "eventbridge" else {k: data[k] for k in ("headers", "body")}
    return Sample(
        name=name,
        description=data["description"],
        kind=kind,
        docs=data["docs"],
        template=template,
        provider=data.get("provider"),
        indent=data.get("indent"),
    )


def fill(template: Any, now: datetime, rng: random.Random) -> Any:
    """``template`` with every ``${kind[:arg[:label]]}`` replaced by a fresh value.

    Kinds: ``uuid``, ``hex``/``HEX``/``alnum``/``ALNUM``/``digits`` with a length, ``now``
    (``2026-01-02T03:04:05Z``), ``now_ms``, ``now_offset`` (``+00:00``), ``epoch``,
    ``epoch_ms``, ``epoch_ms_ago:N``. Tokens with the same kind and label share one value (a
    shorter one is its prefix), so an id repeated in a payload stays consistent. A whole
    string that is one numeric token becomes a number.
    """
    shared: dict[tuple[str, str], str] = {}

    def value(kind: str, arg: str, label: str) -> str:
        if kind == "uuid":
            key = ("uuid", arg)
            if not arg:
                return str(uuid.UUID(int=rng.getrandbits(128), version=4))
            if key not in shared:
                shared[key] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            return shared[key]
        if kind in _ALPHABETS:
            alphabet = _ALPHABETS[kind]
            key = (kind, label)
            if not label or key not in shared:
                # No leading zero: a ``digits`` value is a number, and keeps its length.
                first = rng.choice(alphabet[1:] if kind == "digits" else alphabet)
                text = first + "".join(rng.choice(alphabet) for _ in range(63))
                if not label:
                    return text[: int(arg)]
                shared[key] = text
            return shared[key][: int(arg)]
        return _clock(kind, arg, now)

    def replace(text: str) -> Any:
        whole = _TOKEN.fullmatch(text)
        if whole is not None and whole.group(1) in _NUMBERS:
            return int(value(whole.group(1), whole.group(2) or "", whole.group(3) or ""))
        return _TOKEN.sub(lambda m: value(m.group(1), m.group(2) or "", m.group(3) or ""), text)

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return replace(node)
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, dict):
            return {key: walk(item) for key, item in node.items()}
        return node

    return walk(template)


def _clock(kind: str, arg: str, now: datetime) -> str:
    """The time-valued tokens."""
    now = now.astimezone(UTC)
    if kind == "now":
        return now.strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == "now_ms":
        return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    if kind == "now_offset":
        return now.replace(microsecond=0).isoformat()
    if kind == "epoch":
        return str(int(now.timestamp()))
    if kind == "epoch_ms":
        return str(int(now.timestamp() * 1000))
    if kind == "epoch_ms_ago":
        return str(int((now - timedelta(milliseconds=int(arg))).timestamp() * 1000))
    raise ValueError(f"unknown sample token kind {kind!r}")


def eventbridge_event(sample: Sample, now: datetime, rng: random.Random) -> dict[str, Any]:
    """The sample's EventBridge event, with fresh values (``hook send`` puts it on the bus)."""
    event: dict[str, Any] = fill(sample.template, now, rng)
    return event


def webhook(
    sample: Sample,
    now: datetime,
    rng: random.Random,
    *,
    provider_secret: str = DEFAULT_PROVIDER_SECRET,
    relay_secret: str | None = None,
    relay_header: str = "X-Hook-Signature",
) -> Webhook:
    """The sample's webhook request: fresh values, the provider's own signature header (so a
    local app that verifies it passes with the same secret), and the relay's signature header
    when the ingest channel has a secret."""
    filled = fill(sample.template, now, rng)
    # As the provider sends it: compact JSON, or indented where the provider indents (Stripe).
    separators = (",", ":") if sample.indent is None else None
    text = json.dumps(filled["body"], indent=sample.indent, separators=separators)
    body = text.encode("utf-8")
    headers = [(str(k), str(v)) for k, v in filled["headers"].items()]
    provider = sample.provider or sample.name
    signer = SIGNERS.get(provider)
    if signer is not None:
        headers.extend(signer(provider_secret.encode(), body, now))
    if relay_secret is not None:
        digest = hmac.new(relay_secret.encode(), body, hashlib.sha256).hexdigest()
        headers.append((relay_header, f"sha256={digest}"))
    return Webhook(provider=provider, headers=tuple(headers), body=body)


def _github(secret: bytes, body: bytes, now: datetime) -> list[tuple[str, str]]:
    """GitHub: HMAC-SHA256 of the body, hex, ``sha256=`` (and the legacy SHA-1 header).

    https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
    """
    sha1 = hmac.new(secret, body, hashlib.sha1).hexdigest()
    sha256 = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return [("X-Hub-Signature", f"sha1={sha1}"), ("X-Hub-Signature-256", f"sha256={sha256}")]


def _stripe(secret: bytes, body: bytes, now: datetime) -> list[tuple[str, str]]:
    """Stripe: ``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``.

    https://docs.stripe.com/webhooks#verify-manually
    """
    timestamp = str(int(now.timestamp()))
    signed = timestamp.encode() + b"." + body
    return [
        ("Stripe-Signature", f"t={timestamp},v1={hmac.new(secret, signed, 'sha256').hexdigest()}")
    ]


def _shopify(secret: bytes, body: bytes, now: datetime) -> list[tuple[str, str]]:
    """Shopify: base64 of the HMAC-SHA256 of the body.

    https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-2-validate-the-origin-of-your-webhook
    """
    digest = hmac.new(secret, body, hashlib.sha256).digest()
    return [("X-Shopify-Hmac-Sha256", base64.b64encode(digest).decode("ascii"))]


SIGNERS: dict[str, Callable[[bytes, bytes, datetime], list[tuple[str, str]]]] = {
    "github": _github,
    "stripe": _stripe,
    "shopify": _shopify,
}
