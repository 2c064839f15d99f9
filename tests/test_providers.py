"""Well-known webhook senders get their own event type as detail-type (hookcli/providers.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from hookcli.events import EventId, RawRequest, event_from_request
from hookcli.providers import MAX_DETAIL_TYPE, PROVIDERS, provider_event_type

Headers = tuple[tuple[str, str], ...]


def request(headers: Headers) -> RawRequest:
    """A webhook request with these headers (the body does not matter to detection)."""
    return RawRequest("POST", "", "", headers, b"")


@pytest.mark.parametrize(
    ("headers", "detail", "expected"),
    [
        ((("X-GitHub-Event", "push"), ("X-Hub-Signature-256", "sha256=0")), {}, "push"),
        ((("X-Gitlab-Event", "Merge Request Hook"),), {}, "Merge Request Hook"),
        ((("X-Gitea-Event", "pull_request"),), {}, "pull_request"),
        ((("X-Event-Key", "repo:push"),), {}, "repo:push"),
        ((("Stripe-Signature", "t=1,v1=ab"),), {"type": "payment_intent.succeeded"},
         "payment_intent.succeeded"),
        ((("X-Shopify-Topic", "orders/create"),), {}, "orders/create"),
        ((("X-Slack-Signature", "v0=ab"),),
         {"type": "event_callback", "event": {"type": "app_mention"}}, "app_mention"),
        ((("X-Slack-Signature", "v0=ab"),), {"type": "url_verification"}, "url_verification"),
        ((("Twitch-Eventsub-Subscription-Type", "channel.follow"),), {}, "channel.follow"),
        ((("X-Square-Hmacsha256-Signature", "x"),), {"type": "payment.created"},
         "payment.created"),
        ((("Paypal-Transmission-Sig", "x"),), {"event_type": "PAYMENT.CAPTURE.COMPLETED"},
         "PAYMENT.CAPTURE.COMPLETED"),
        ((("Paddle-Signature", "ts=1;h1=ab"),), {"event_type": "transaction.completed"},
         "transaction.completed"),
        ((("Linear-Event", "Issue"),), {"type": "Issue", "action": "create"}, "Issue"),
        ((("Sentry-Hook-Resource", "issue"),), {"action": "created"}, "issue"),
        ((("svix-id", "msg_1"), ("svix-signature", "v1,x")), {"type": "user.created"},
         "user.created"),
        ((("webhook-signature", "v1,x"),), {"type": "invoice.paid"}, "invoice.paid"),
        ((("x-zm-signature", "v0=x"),), {"event": "meeting.started"}, "meeting.started"),
        ((("x-vercel-signature", "x"),), {"type": "deployment.created"}, "deployment.created"),
        ((("X-Event-Name", "order_created"),), {}, "order_created"),
        ((("Typeform-Signature", "sha256=x"),), {"event_type": "form_response"},
         "form_response"),
        ((("Calendly-Webhook-Signature", "t=1,v1=x"),), {"event": "invitee.created"},
         "invitee.created"),
        ((("X-Atlassian-Webhook-Identifier", "1"),), {"webhookEvent": "jira:issue_created"},
         "jira:issue_created"),
        ((("ce-type", "com.example.object.deleted.v2"),), {}, "com.example.object.deleted.v2"),
    ],
)  # fmt: skip
def test_known_sender_gives_its_event_type(
    headers: Headers, detail: dict[str, Any], expected: str
) -> None:
    """Each provider's identifying header leads to its event type (header or body field)."""
    assert provider_event_type(request(headers), detail) == expected


def test_every_provider_is_tested() -> None:
    """The table above covers every row of PROVIDERS (a new row needs a case)."""
    tested = {
        "github", "gitlab", "gitea", "bitbucket", "stripe", "shopify", "slack", "twitch",
        "square", "paypal", "paddle", "linear", "sentry", "svix", "standard-webhooks", "zoom",
        "vercel", "lemonsqueezy", "typeform", "calendly", "jira", "cloudevents",
    }  # fmt: skip
    assert {p.name for p in PROVIDERS} == tested


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ((("Content-Type", "application/json"),), {"type": "payment_intent.succeeded"}),
        ((("Stripe-Signature", "t=1"),), {"type": 7}),
        ((("Stripe-Signature", "t=1"),), {}),
        ((("Stripe-Signature", "t=1"),), {"type": "   "}),
        ((("X-Slack-Signature", "v0=ab"),), {"type": "event_callback", "event": "x"}),
        ((("X-GitHub-Event", ""),), {"type": "push"}),
    ],
    ids=["unknown-sender", "non-string", "missing", "blank", "bad-nesting", "empty-header"],
)
def test_no_event_type_without_a_known_sender_and_a_string(
    headers: Headers, detail: dict[str, Any]
) -> None:
    """An unknown sender's body ``type``, or a missing/odd value, gives no event type."""
    assert provider_event_type(request(headers), detail) is None


def test_long_event_type_is_cut() -> None:
    """A header value longer than MAX_DETAIL_TYPE is cut to it."""
    value = provider_event_type(request((("X-GitHub-Event", "x" * 1000),)), {})
    assert value == "x" * MAX_DETAIL_TYPE


@pytest.mark.parametrize(
    ("detail_type", "expected"),
    [(None, "push"), ("configured", "configured")],
    ids=["detected", "configured-header-wins"],
)
def test_event_from_request_uses_detection_only_without_a_detail_type(
    detail_type: str | None, expected: str
) -> None:
    """Ingest's envelope takes the detected type unless a detail-type was given."""
    raw = RawRequest("POST", "", "", (("X-GitHub-Event", "push"),), b"{}")
    event = event_from_request(
        "github", raw, detail_type=detail_type, event_id=EventId("e"), received=datetime.now(UTC)
    )
    assert event.detail_type == expected


def test_event_from_request_unknown_sender_is_webhook() -> None:
    """A body with a ``type`` from an unknown sender stays detail-type ``webhook``."""
    raw = RawRequest("POST", "", "", (), b'{"type": "push"}')
    event = event_from_request(
        "x", raw, detail_type=None, event_id=EventId("e"), received=datetime.now(UTC)
    )
    assert event.detail_type == "webhook"
