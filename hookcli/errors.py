"""hook's error tree: every expected failure is a HookError carrying its exit code and a hint.

The CLI has one error boundary (``hookcli.cli.main``) that prints ``Error: <message>`` and the
hint to stderr and exits with the error's code, so no command needs an if-ladder
(click's ``ClickException.exit_code`` is the model). Third-party exceptions are translated
into these at the adapter edge (``raise SourceError(...) from exc``).

    HookError                      exit 1   anything hook expected to go wrong
    ├── UsageError                 exit 2   bad option or argument value
    │   ├── InvalidPatternError    exit 2   EventBridge would reject the pattern
    │   ├── InvalidEventError      exit 2   not an EventBridge event
    │   ├── InvalidTransformError  exit 2   EventBridge would reject the target's input settings
    │   └── ConfigError            exit 2   bad config file, env var or combination of options
    ├── RelayError                 exit 3   relay unreachable, disconnected, or answered badly
    │   ├── AuthError              exit 4   token missing or refused
    │   ├── ProtocolError          exit 3   a wire message that breaks docs/protocol.md
    │   └── NotFoundError          exit 5   no such event (or listener) on the relay
    ├── SourceError                exit 6   AWS (EventBridge / SQS) setup or polling failed
    │   └── MissingExtraError      exit 6   an optional dependency (moto) is not installed
    ├── StoreError                 exit 7   the relay's store cannot be opened or written
    ├── TargetError                exit 8   a target cannot be set up (not: one failed delivery)
    ├── DeliveryFailedError        exit 1   a replay or one-shot delivery ended failed
    └── MissingEventsError         exit 1   `hook expect` timed out before N events matched

Exit 1 is also ``hook pattern test``'s "no match", as grep uses it; 130 is Ctrl-C.
"""

from __future__ import annotations


class HookError(Exception):
    """Base of every error hook expects; ``exit_code`` and ``hint`` drive the CLI boundary."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(HookError):
    """An option or argument has a value hook cannot use."""

    exit_code = 2


class InvalidPatternError(UsageError):
    """An event pattern EventBridge would reject; the message is EventBridge's reason text."""


class InvalidEventError(UsageError):
    """Input that is not an EventBridge event (or not JSON)."""


class InvalidTransformError(UsageError):
    """An InputPath, Input or InputTransformer EventBridge would reject (PutTargets' reason)."""


class ConfigError(UsageError):
    """A config file, environment variable or combination of options that cannot work."""


class RelayError(HookError):
    """The relay could not be reached, dropped the connection, or answered with an error."""

    exit_code = 3


class AuthError(RelayError):
    """The relay refused the token, or needs one that was not given."""

    exit_code = 4


class ProtocolError(RelayError):
    """A message on the stream that does not follow docs/protocol.md."""


class NotFoundError(RelayError):
    """The relay has no such event (or listener)."""

    exit_code = 5


class SourceError(HookError):
    """Setting up or polling the event source (EventBridge, SQS) failed."""

    exit_code = 6


class MissingExtraError(SourceError):
    """An optional dependency is not installed; the hint gives the pip command."""


class StoreError(HookError):
    """The relay's event store cannot be opened or written."""

    exit_code = 7


class TargetError(HookError):
    """A delivery target cannot be set up at all (a single failed delivery is not an error)."""

    exit_code = 8


class DeliveryFailedError(HookError):
    """A one-shot delivery (replay) ended failed; listening commands never raise it."""

    exit_code = 1


class MissingEventsError(HookError):
    """Fewer matching events than expected arrived before the timeout (``hook expect``)."""

    exit_code = 1
