"""`hook send --sample`: the shipped samples, filled fresh and signed as their providers sign."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from datetime import UTC, datetime

import pytest

from hookcli import samples
from hookcli.errors import UsageError
from hookcli.events import RawRequest
from hookcli.providers import provider_event_type
from hookcli.send import entry_from

NOW = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
EVENTBRIDGE = [n for n in samples.names() if samples.load(n).kind == "eventbridge"]
WEBHOOKS = [n for n in samples.names() if samples.load(n).kind == "webhook"]


def test_the_issue_s_samples_are_shipped() -> None:
    """The AWS service events and provider webhooks the issue names are all there."""
    assert set(samples.names()) >= {
        "s3-object-created", "ec2-instance-state-change",
        "stepfunctions-execution-status-change", "codepipeline-execution-state-change",
        "scheduled-event", "github-push", "stripe-payment-intent-succeeded",
        "shopify-orders-create",
    }  # fmt: skip


@pytest.mark.parametrize("name", EVENTBRIDGE)
def test_eventbridge_sample_is_a_valid_entry(name: str) -> None:
    """Each AWS sample fills completely and is an entry `hook send` accepts."""
    event = samples.eventbridge_event(samples.load(name), NOW, random.Random(1))
    assert "${" not in json.dumps(event)
    entry = entry_from(event, name)
    assert entry["Source"].startswith("aws.") and entry["Time"] == "2026-03-01T12:00:00Z"


@pytest.mark.parametrize(
    ("name", "detail_type"),
    [
        ("github-push", "push"),
        ("stripe-payment-intent-succeeded", "payment_intent.succeeded"),
        ("shopify-orders-create", "orders/create"),
    ],
)
def test_webhook_sample_is_recognised_by_ingest(name: str, detail_type: str) -> None:
    """Each webhook sample gets its provider's event type as detail-type at ingest."""
    hook = samples.webhook(samples.load(name), NOW, random.Random(1))
    assert "${" not in hook.body.decode() + json.dumps(hook.headers)
    detail = json.loads(hook.body)
    assert provider_event_type(RawRequest("POST", "", "", hook.headers, hook.body), detail) == (
        detail_type
    )


def test_every_webhook_sample_is_checked() -> None:
    """The parametrized cases above cover every shipped webhook sample."""
    assert set(WEBHOOKS) == {
        "github-push", "stripe-payment-intent-succeeded", "shopify-orders-create",
    }  # fmt: skip


def _mac(secret: str, data: bytes) -> bytes:
    return hmac.new(secret.encode(), data, hashlib.sha256).digest()


def test_github_signature_verifies() -> None:
    """X-Hub-Signature-256 is sha256=<hex HMAC of the body> with the provider secret (GitHub)."""
    hook = samples.webhook(samples.load("github-push"), NOW, random.Random(1), provider_secret="k")
    headers = dict(hook.headers)
    assert headers["X-Hub-Signature-256"] == "sha256=" + _mac("k", hook.body).hex()


def test_stripe_signature_verifies() -> None:
    """Stripe-Signature is t=<time>,v1=<hex HMAC of "t.body"> (Stripe's manual verification)."""
    sample = samples.load("stripe-payment-intent-succeeded")
    hook = samples.webhook(sample, NOW, random.Random(1), provider_secret="whsec_k")
    parts = dict(item.split("=", 1) for item in dict(hook.headers)["Stripe-Signature"].split(","))
    assert parts["t"] == str(int(NOW.timestamp()))
    assert parts["v1"] == _mac("whsec_k", parts["t"].encode() + b"." + hook.body).hex()


def test_shopify_signature_verifies() -> None:
    """X-Shopify-Hmac-Sha256 is the base64 HMAC of the body (Shopify)."""
    hook = samples.webhook(samples.load("shopify-orders-create"), NOW, random.Random(1))
    expected = base64.b64encode(_mac(samples.DEFAULT_PROVIDER_SECRET, hook.body)).decode()
    assert dict(hook.headers)["X-Shopify-Hmac-Sha256"] == expected


@pytest.mark.parametrize("secret", [None, "chan-secret"])
def test_relay_signature_only_with_a_secret(secret: str | None) -> None:
    """X-Hook-Signature is added (sha256=<hex HMAC>) only when the channel secret is given."""
    sample = samples.load("github-push")
    hook = samples.webhook(sample, NOW, random.Random(1), relay_secret=secret)
    got = dict(hook.headers).get("X-Hook-Signature")
    assert got == (None if secret is None else "sha256=" + _mac(secret, hook.body).hex())


def test_fill_shares_labelled_values_and_types_numbers() -> None:
    """Same kind and label: one value (shorter is a prefix); whole numeric tokens are numbers."""
    filled = samples.fill(
        ["${hex:40:a}", "${hex:12:a}", "${hex:40:b}", "${epoch}", "x${epoch}", "${now_ms}"],
        NOW,
        random.Random(7),
    )
    assert filled[1] == filled[0][:12] and filled[2] != filled[0]
    assert filled[3] == int(NOW.timestamp()) and filled[4] == f"x{int(NOW.timestamp())}"
    assert filled[5] == "2026-03-01T12:00:00.250Z"


def test_two_sends_are_two_distinct_events() -> None:
    """Fresh ids per send: two fills of one sample differ."""
    sample = samples.load("stripe-payment-intent-succeeded")
    first, second = (samples.webhook(sample, NOW, random.Random(seed)) for seed in (1, 2))
    assert json.loads(first.body)["id"] != json.loads(second.body)["id"]


def test_unknown_sample_suggests_the_closest() -> None:
    """A misspelt name is a UsageError suggesting the nearest sample."""
    with pytest.raises(UsageError, match="no sample called 'gihub-push'") as caught:
        samples.load("gihub-push")
    assert caught.value.hint is not None and "'github-push'" in caught.value.hint
