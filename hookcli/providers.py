"""Well-known webhook senders, and the event type each puts on its requests.

Core module: stdlib only, no I/O. Ingest makes a webhook's detail-type from this table, so
``hook listen --detail-type push`` just works for GitHub, as smee and Hookdeck show the event
type. A sender is recognised by a header only it sends (its signature or event header), never
by the body alone: a generic ``type`` field from an unknown sender is not read as an event type.
The first matching row wins; the relay's ``--detail-type-header`` wins over every row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

#: Longer values are cut: a detail-type is a label on a terminal line, not a payload.
MAX_DETAIL_TYPE = 128


class Headers(Protocol):
    """What detection needs of a request: a case-insensitive header lookup (``RawRequest``)."""

    def header(self, name: str) -> str | None:
        """The first value of header ``name``, or None."""


@dataclass(frozen=True, slots=True)
class Provider:
    """A sender: the header that identifies it, and where its event type is.

    ``type_header`` names a header carrying the type; otherwise ``type_field`` is a path into
    the JSON body. ``nested`` handles envelopes: when the body's ``type_field`` equals
    ``nested[0]``, the type is at path ``nested[1]`` instead (Slack's event callbacks).
    """

    name: str
    identified_by: str
    type_header: str | None = None
    type_field: tuple[str, ...] = ()
    nested: tuple[str, tuple[str, ...]] | None = None


PROVIDERS: tuple[Provider, ...] = (
    # https://docs.github.com/en/webhooks/webhook-events-and-payloads#delivery-headers
    Provider("github", "X-GitHub-Event", type_header="X-GitHub-Event"),
    # https://docs.gitlab.com/user/project/integrations/webhooks/ ("Push Hook")
    Provider("gitlab", "X-Gitlab-Event", type_header="X-Gitlab-Event"),
    # https://docs.gitea.com/usage/webhooks (Gitea and Forgejo send X-Gitea-Event)
    Provider("gitea", "X-Gitea-Event", type_header="X-Gitea-Event"),
    # https://support.atlassian.com/bitbucket-cloud/docs/event-payloads/ ("repo:push")
    Provider("bitbucket", "X-Event-Key", type_header="X-Event-Key"),
    # https://docs.stripe.com/webhooks#verify-events (Stripe-Signature; Event object's "type")
    Provider("stripe", "Stripe-Signature", type_field=("type",)),
    # https://shopify.dev/docs/apps/build/webhooks/subscribe/https ("orders/create")
    Provider("shopify", "X-Shopify-Topic", type_header="X-Shopify-Topic"),
    # https://api.slack.com/authentication/verifying-requests-from-slack and
    # https://api.slack.com/apis/events-api#callback-field ("event_callback" wraps "event")
    Provider(
        "slack",
        "X-Slack-Signature",
        type_field=("type",),
        nested=("event_callback", ("event", "type")),
    ),
    # https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#list-of-request-headers
    Provider(
        "twitch",
        "Twitch-Eventsub-Subscription-Type",
        type_header="Twitch-Eventsub-Subscription-Type",
    ),
    # https://developer.squareup.com/docs/webhooks/step3validate ("payment.created")
    Provider("square", "X-Square-Hmacsha256-Signature", type_field=("type",)),
    # https://developer.paypal.com/api/rest/webhooks/ ("PAYMENT.CAPTURE.COMPLETED")
    Provider("paypal", "Paypal-Transmission-Sig", type_field=("event_type",)),
    # https://developer.paddle.com/webhooks/signature-verification ("transaction.completed")
    Provider("paddle", "Paddle-Signature", type_field=("event_type",)),
    # https://linear.app/developers/webhooks (Linear-Event: "Issue", "Comment")
    Provider("linear", "Linear-Event", type_header="Linear-Event"),
    # https://docs.sentry.io/organization/integrations/integration-platform/webhooks/
    Provider("sentry", "Sentry-Hook-Resource", type_header="Sentry-Hook-Resource"),
    # https://docs.svix.com/receiving/verifying-payloads/how-manual (Clerk, Resend, ... via Svix)
    Provider("svix", "Svix-Signature", type_field=("type",)),
    # https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
    Provider("standard-webhooks", "Webhook-Signature", type_field=("type",)),
    # https://developers.zoom.us/docs/api/webhooks/ (x-zm-signature; "meeting.started")
    Provider("zoom", "X-Zm-Signature", type_field=("event",)),
    # https://vercel.com/docs/webhooks/webhooks-api (x-vercel-signature; "deployment.created")
    Provider("vercel", "X-Vercel-Signature", type_field=("type",)),
    # https://docs.lemonsqueezy.com/help/webhooks (X-Event-Name: "order_created")
    Provider("lemonsqueezy", "X-Event-Name", type_header="X-Event-Name"),
    # https://www.typeform.com/developers/webhooks/secure-your-webhooks/ ("form_response")
    Provider("typeform", "Typeform-Signature", type_field=("event_type",)),
    # https://developer.calendly.com/api-docs/ ("invitee.created")
    Provider("calendly", "Calendly-Webhook-Signature", type_field=("event",)),
    # https://developer.atlassian.com/cloud/jira/platform/webhooks/ ("jira:issue_created")
    Provider("jira", "X-Atlassian-Webhook-Identifier", type_field=("webhookEvent",)),
    # https://github.com/cloudevents/spec/blob/main/cloudevents/bindings/http-protocol-binding.md
    # (binary content mode: the CloudEvents "type" attribute is the ce-type header)
    Provider("cloudevents", "Ce-Type", type_header="Ce-Type"),
)


def detect_provider(request: Headers) -> Provider | None:
    """The first table row whose identifying header the request carries, or None."""
    for provider in PROVIDERS:
        if request.header(provider.identified_by):
            return provider
    return None


def provider_event_type(request: Headers, detail: Any) -> str | None:
    """The sender's own event type for a webhook (``push``, ``payment_intent.succeeded``), or None.

    ``detail`` is the decoded JSON body (``{}`` when the body is not JSON). None when the sender
    is unknown or its type is missing or not a string: ingest then says ``webhook``.
    """
    provider = detect_provider(request)
    if provider is None:
        return None
    if provider.type_header is not None:
        value: Any = request.header(provider.type_header)
    else:
        value = _field(detail, provider.type_field)
        if provider.nested is not None and value == provider.nested[0]:
            value = _field(detail, provider.nested[1])
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:MAX_DETAIL_TYPE]


def _field(document: Any, path: tuple[str, ...]) -> Any:
    """The value at ``path`` in nested JSON objects, or None where the path does not lead."""
    value = document
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value
