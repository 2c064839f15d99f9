"""The relay's SQS poller: long-poll the queue, commit the events, and only then delete them.

Adapter (boto3). EventBridge delivers each event's JSON as an SQS message body. SQS is
at-least-once, and a message is deleted only after ``commit`` returned, so an event can arrive
twice (a crash between commit and delete, a visibility timeout during a slow commit): the
store deduplicates on the event id (with its ``replay-name``), this module never does.

Each body is parsed once and its text kept as received (``events.parse_event``): the relay
stores and forwards those bytes, and a key given twice in them keeps every value for matching,
as ``hook pattern test`` reads the same text.

Blocking boto3 calls run in short-lived daemon threads rather than ``asyncio.to_thread``: a
cancelled ``run`` returns at once while a long poll may still be in flight, and the default
executor would make ``asyncio.run`` wait for it at shutdown (up to ``wait_seconds``).
A poll left behind like that releases whatever it received (visibility 0) when it returns.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import random
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    SSOError,
    TokenRetrievalError,
)

from hookcli.errors import ConfigError, InvalidEventError, SourceError
from hookcli.events import Event, parse_event, with_account
from hookcli.sources.eventbridge import (
    AwsSettings,
    Provisioned,
    error_code,
    is_transient,
    sqs_client,
    translate,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import DeleteMessageBatchRequestEntryTypeDef, MessageTypeDef

logger = logging.getLogger("hook.sources")

T = TypeVar("T")
Commit = Callable[[list[Event]], Awaitable[None]]

#: Long-poll wait on real AWS: the maximum, so an idle relay makes 3 requests a minute.
AWS_WAIT_SECONDS = 20
#: Long-poll wait on the emulator. moto wakes a waiting ReceiveMessage as soon as a message
#: lands (a condition variable, no busy loop). Measured on loopback: a message is committed
#: ~6 ms after its SendMessage starts, about that SendMessage's own round trip, the same with
#: wait 1 or 20; idle, relay + moto use 0.2-0.6 % of a core (short polling, wait 0, burns a
#: whole core). So the wait only bounds how long a poll outlives a stopped source: keep it short.
LOCAL_WAIT_SECONDS = 1
#: Backoff after a failure: full jitter, doubling from BASE up to CAP (AWS Architecture Blog,
#: "Exponential Backoff And Jitter").
BACKOFF_BASE = 0.2
BACKOFF_CAP = 20.0
LOCAL_BACKOFF_CAP = 2.0
#: Attempts at DeleteMessageBatch entries that failed for a transient reason.
DELETE_ATTEMPTS = 3
_FATAL_BOTOCORE = (
    NoCredentialsError,
    PartialCredentialsError,
    CredentialRetrievalError,
    SSOError,
    TokenRetrievalError,
    NoRegionError,
    ProfileNotFound,
)
_RETRYABLE_CODES = {"OverLimit", "KmsThrottled", "RequestThrottled"}


class SourceState(enum.Enum):
    """What the poller is doing, for the relay's status line."""

    STARTING = "starting"
    POLLING = "polling"
    BACKING_OFF = "backing-off"
    STOPPED = "stopped"


class SqsSource:
    """Long-polls the relay's queue and hands each batch of events to ``commit``.

    ``last_error`` is the most recent failure (kept after recovery); ``received`` counts SQS
    messages received, malformed ones included.
    """

    def __init__(
        self,
        settings: AwsSettings,
        provisioned: Provisioned,
        *,
        wait_seconds: int | None = None,
        batch: int = 10,
    ) -> None:
        local = settings.endpoint_url is not None
        if wait_seconds is None:
            wait_seconds = LOCAL_WAIT_SECONDS if local else AWS_WAIT_SECONDS
        if not 1 <= wait_seconds <= 20:
            # 0 would be short polling in a loop: a busy loop on an idle queue.
            raise ConfigError(f"wait_seconds must be 1-20 (SQS long poll), not {wait_seconds}")
        if not 1 <= batch <= 10:
            raise ConfigError(f"batch must be 1-10 (SQS limit), not {batch}")
        self.settings = settings
        self.provisioned = provisioned
        self.wait_seconds = wait_seconds
        self.batch = batch
        self.state = SourceState.STARTING
        self.last_error: str | None = None
        self.received = 0
        self._backoff_cap = LOCAL_BACKOFF_CAP if local else BACKOFF_CAP
        self._random = random.Random()
        self._client: SQSClient | None = None

    async def run(self, commit: Commit) -> None:
        """Poll until cancelled; raises SourceError only for what retrying cannot fix
        (credentials, permissions, a deleted queue). Transient failures and a failing
        ``commit`` back off with jitter and go on."""
        abandoned = threading.Event()
        failures = 0
        try:
            if self._client is None:
                read_timeout = self.wait_seconds + 10  # above the long poll, or it times out
                self._client = await _in_daemon_thread(
                    lambda: sqs_client(self.settings, read_timeout=read_timeout)
                )
            client = self._client
            self.state = SourceState.POLLING
            while True:
                try:
                    messages = await _in_daemon_thread(lambda: self._receive(client, abandoned))
                except (BotoCoreError, ClientError) as exc:
                    if _fatal(exc):
                        raise self._fail(exc, "sqs:ReceiveMessage", "receiving messages") from exc
                    failures += 1
                    await self._back_off(failures, translate(exc, settings=self.settings).message)
                    continue
                self.state = SourceState.POLLING
                if not messages:
                    failures = 0
                    continue
                self.received += len(messages)
                if await self._handle(client, messages, commit):
                    failures = 0
                else:
                    failures += 1
                    await self._back_off(failures, self.last_error or "commit failed")
        finally:
            abandoned.set()
            self.state = SourceState.STOPPED

    def _receive(self, client: SQSClient, abandoned: threading.Event) -> list[MessageTypeDef]:
        """One long poll (in a worker thread)."""
        response = client.receive_message(
            QueueUrl=self.provisioned.queue_url,
            MaxNumberOfMessages=self.batch,
            WaitTimeSeconds=self.wait_seconds,
        )
        messages = response.get("Messages", [])
        if abandoned.is_set() and messages:
            # Nobody will commit these any more: make them visible again now rather than after
            # the visibility timeout. Best effort: otherwise they come back in 60 s.
            self._release(client, messages)
            return []
        return messages

    async def _handle(
        self, client: SQSClient, messages: list[MessageTypeDef], commit: Commit
    ) -> bool:
        """Parse, commit, delete. False when commit failed (its messages are released)."""
        events: list[Event] = []
        parsed: list[MessageTypeDef] = []
        malformed: list[MessageTypeDef] = []
        for message in messages:
            try:
                event = parse_event(message.get("Body", ""))
            except InvalidEventError as exc:
                logger.warning(
                    "dropping SQS message %s: not an EventBridge event: %s",
                    message.get("MessageId", "?"),
                    exc,
                )
                malformed.append(message)
            else:
                if not event.account:
                    # EventBridge always sets `account`; moto's SQS target drops it. The rule is
                    # on our bus, so the bus's account is the event's: patterns on it then
                    # behave in local mode as on AWS. The rest of the text stays as received.
                    event = with_account(event, self.provisioned.account)
                events.append(event)
                parsed.append(message)
        committed = True
        if events:
            try:
                await commit(events)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the relay's store: any failure means "not committed"
                committed = False
                self.last_error = f"commit failed: {exc}"
                logger.warning(
                    "could not commit %d event(s), retrying: %s", len(events), exc, exc_info=True
                )
                # Not deleted, so SQS delivers them again; release them now instead of waiting
                # out the 60 s visibility timeout (SQS developer guide, "Visibility timeout").
                await _in_daemon_thread(lambda: self._release(client, parsed))
        # The queue has no dead-letter queue, so deleting a malformed message is the only way
        # to stop it coming back forever; it is logged above.
        to_delete = (parsed if committed else []) + malformed
        if to_delete:
            await self._delete(client, to_delete)
        return committed

    async def _delete(self, client: SQSClient, messages: Sequence[MessageTypeDef]) -> None:
        """DeleteMessageBatch, retrying entries that failed for a transient reason.

        A message left undeleted is not lost: SQS delivers it again after the visibility
        timeout, and the store drops the duplicate event id.
        """
        pending = {str(i): message["ReceiptHandle"] for i, message in enumerate(messages)}
        for attempt in range(1, DELETE_ATTEMPTS + 1):
            entries: list[DeleteMessageBatchRequestEntryTypeDef] = [
                {"Id": key, "ReceiptHandle": handle} for key, handle in pending.items()
            ]
            try:
                response = await _in_daemon_thread(
                    functools.partial(
                        client.delete_message_batch,
                        QueueUrl=self.provisioned.queue_url,
                        Entries=entries,
                    )
                )
            except (BotoCoreError, ClientError) as exc:
                if _fatal(exc):
                    raise self._fail(exc, "sqs:DeleteMessage", "deleting messages") from exc
                self.last_error = translate(exc, settings=self.settings).message
            else:
                retry: dict[str, str] = {}
                for failed in response.get("Failed", []):
                    if failed.get("SenderFault"):
                        # e.g. an expired receipt handle: the message is visible again already.
                        logger.warning(
                            "SQS refused to delete a message (%s: %s); it will come back and "
                            "be deduplicated",
                            failed.get("Code"),
                            failed.get("Message"),
                        )
                    elif failed["Id"] in pending:
                        retry[failed["Id"]] = pending[failed["Id"]]
                pending = retry
            if not pending:
                return
            if attempt < DELETE_ATTEMPTS:
                await asyncio.sleep(self._delay(attempt))
        logger.warning(
            "%d SQS message(s) not deleted after %d attempts; they will be delivered again "
            "and deduplicated by the store",
            len(pending),
            DELETE_ATTEMPTS,
        )

    def _release(self, client: SQSClient, messages: Sequence[MessageTypeDef]) -> None:
        """Make messages visible again at once (in a worker thread); best effort."""
        if not messages:
            return
        try:
            client.change_message_visibility_batch(
                QueueUrl=self.provisioned.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for i, m in enumerate(messages)
                ],
            )
        except (BotoCoreError, ClientError) as exc:
            logger.debug("could not release %d message(s): %s", len(messages), exc)

    async def _back_off(self, failures: int, reason: str) -> None:
        self.state = SourceState.BACKING_OFF
        self.last_error = reason
        delay = self._delay(failures)
        logger.warning("SQS source backing off %.1f s: %s", delay, reason)
        await asyncio.sleep(delay)

    def _delay(self, attempt: int) -> float:
        return self._random.uniform(0, min(self._backoff_cap, BACKOFF_BASE * 2 ** (attempt - 1)))

    def _fail(self, exc: BaseException, iam_action: str, doing: str) -> SourceError:
        error = translate(exc, settings=self.settings, iam_action=iam_action, doing=doing)
        if error_code(exc) in {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}:
            error = SourceError(
                f"the relay's SQS queue {self.provisioned.queue_url} no longer exists",
                hint="restart the relay to provision it again",
            )
        self.last_error = error.message
        return error


def _fatal(exc: BaseException) -> bool:
    """Failures that retrying cannot fix: credentials, configuration, permissions, no queue."""
    if isinstance(exc, _FATAL_BOTOCORE):
        return True
    if isinstance(exc, ClientError):
        return not is_transient(exc) and error_code(exc) not in _RETRYABLE_CODES
    return False


async def _in_daemon_thread(work: Callable[[], T]) -> T:
    """Run blocking ``work`` in a new daemon thread; cancelling the await does not wait for it."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():  # cancelled meanwhile: nobody wants the result
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def target() -> None:
        try:
            result = work()
        except Exception as exc:
            post(None, exc)
        else:
            post(result, None)

    def post(result: T | None, error: BaseException | None) -> None:
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop is closed: the caller is long gone
            pass

    threading.Thread(target=target, name="hook-sqs", daemon=True).start()
    return await future
