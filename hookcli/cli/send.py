"""``hook send``: put test events on the bus (the relay's emulated one, or an AWS bus)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from hookcli.cli import options as o

if TYPE_CHECKING:
    from hookcli.samples import Webhook


def register(app: typer.Typer) -> None:
    """Attach ``hook send``."""
    app.command("send")(send)


def send(
    source: Annotated[
        str | None, typer.Option("--source", help="The event's source, e.g. shop.orders.")
    ] = None,
    detail_type: Annotated[
        str | None,
        typer.Option("--detail-type", help="The event's detail-type, e.g. OrderCreated."),
    ] = None,
    detail: Annotated[
        str, typer.Option("--detail", help="The detail object: JSON text, @file or -.")
    ] = "{}",
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            "-f",
            help="Events: JSON Lines, a JSON array or one JSON object, each a PutEvents entry "
            "or an EventBridge event; - for stdin.",
        ),
    ] = None,
    bus: Annotated[
        str | None,
        typer.Option(
            "--bus",
            envvar="HOOK_BUS",
            help="Put on this AWS bus directly (boto3's credential chain) instead of the relay's.",
            show_default=False,
        ),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            "--region", envvar="AWS_REGION", help="AWS region for --bus.", show_default=False
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile", envvar="AWS_PROFILE", help="AWS profile for --bus.", show_default=False
        ),
    ] = None,
    sample: Annotated[
        str | None,
        typer.Option(
            "--sample",
            help="Send a ready-made sample event (see --list-samples): AWS service events go on "
            "the bus (the local emulated one: a real bus refuses aws.* sources from PutEvents), "
            "provider webhooks are POSTed to the relay's ingest; fresh ids each time.",
            show_default=False,
        ),
    ] = None,
    list_samples: Annotated[
        bool, typer.Option("--list-samples", help="List the samples --sample takes, and exit.")
    ] = False,
    channel: Annotated[
        str | None,
        typer.Option(
            "--channel",
            help="Ingest channel for a webhook sample (default: its provider, e.g. github).",
            show_default=False,
        ),
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret",
            envvar="HOOK_SEND_SECRET",
            help="The ingest channel's secret (relay's --ingest-secret): a webhook sample is "
            "signed with it in X-Hook-Signature.",
            show_default=False,
        ),
    ] = None,
    provider_secret: Annotated[
        str,
        typer.Option(
            "--provider-secret",
            envvar="HOOK_PROVIDER_SECRET",
            help="Sign a webhook sample's provider signature (X-Hub-Signature-256, "
            "Stripe-Signature, X-Shopify-Hmac-Sha256) with this, as your app's webhook secret.",
        ),
    ] = "hook-sample-secret",
    as_json: o.JsonOut = False,
    verbose: o.Verbose = False,
    quiet: o.Quiet = False,
    relay: o.Relay = None,
    token: o.Token = None,
) -> None:
    """Put events on the bus: one from --source/--detail-type/--detail, many from --file, or a
    ready-made --sample.

    --file takes JSON Lines, a JSON array or one JSON object; each event a PutEvents entry
    (Source, DetailType, Detail as JSON text) or an EventBridge event. Without --bus, asks the
    relay (/v1/info) which bus it serves; a local relay's emulated bus makes events travel the
    real path (PutEvents -> rule -> SQS -> relay). Webhook samples (github-push, ...) are
    POSTed to /v1/ingest/<channel> with the provider's headers and signature. Prints each
    event id. Exit 1 if any entry was rejected (each is reported), 2 for bad input, 3 if no
    relay answers, 4 if the ingest channel's signature check failed.
    """
    import asyncio

    from hookcli.cli.render import render_posted, render_samples, render_sent
    from hookcli.errors import DeliveryFailedError, UsageError
    from hookcli.send import post_webhook, resolve_target
    from hookcli.send import send as put

    if list_samples:
        from hookcli import samples

        render_samples([samples.load(name) for name in samples.names()], as_json=as_json)
        return
    if sum(x is not None for x in (file, sample)) + bool(source or detail_type) > 1:
        raise UsageError("--file, --sample and --source/--detail-type exclude each other")
    hook_request = _webhook_sample(sample, secret, provider_secret) if sample else None
    if hook_request is None and channel is not None:
        raise UsageError(
            "--channel is for webhook samples", hint="see which are: hook send --list-samples"
        )
    if hook_request is not None:
        assert sample is not None
        where = channel or hook_request.provider
        answer = asyncio.run(post_webhook(relay, token, where, hook_request))
        render_posted(sample, answer, as_json=as_json)
        return
    entries = _entries(file, sample, source, detail_type, detail)
    target = asyncio.run(resolve_target(relay, token, bus, region, profile))
    results = render_sent(target, entries, put, as_json=as_json, level=o.level())
    rejected = [r for r in results if not r.ok]
    if rejected:
        raise DeliveryFailedError(
            f"{len(rejected)} of {len(results)} events were rejected by EventBridge",
            hint="each rejected entry is listed above with EventBridge's reason",
        )


def _webhook_sample(name: str, secret: str | None, provider_secret: str) -> Webhook | None:
    """The sample's request when it is a webhook sample, else None (it goes on the bus)."""
    import random
    from datetime import UTC, datetime

    from hookcli import samples

    sample = samples.load(name)
    if sample.kind != "webhook":
        return None
    return samples.webhook(
        sample,
        datetime.now(UTC),
        random.SystemRandom(),
        provider_secret=provider_secret,
        relay_secret=secret,
    )


def _entries(
    file: str | None,
    sample: str | None,
    source: str | None,
    detail_type: str | None,
    detail: str,
) -> list[dict[str, Any]]:
    """The PutEvents entries to put, from whichever input was given."""
    from hookcli.cli.inputs import read_documents, read_text
    from hookcli.errors import UsageError
    from hookcli.events import load_json_object
    from hookcli.send import entries_from_documents, entry_from

    if sample is not None:
        import random
        from datetime import UTC, datetime

        from hookcli import samples

        event = samples.eventbridge_event(
            samples.load(sample), datetime.now(UTC), random.SystemRandom()
        )
        return [entry_from(event, f"sample {sample}")]
    if file is not None:
        entries = entries_from_documents(read_documents(file, "--file"), file)
        if not entries:
            raise UsageError(f"{file} has no events")
        return entries
    if not (source and detail_type):
        raise UsageError(
            "give --source and --detail-type (and --detail), --file events.jsonl, or --sample NAME",
            hint="see the samples: hook send --list-samples",
        )
    body = load_json_object(read_text(detail, "--detail"), "--detail")
    return [entry_from({"source": source, "detail-type": detail_type, "detail": body}, "event")]
