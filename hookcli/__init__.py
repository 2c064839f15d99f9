"""hook: tunnel cloud events (EventBridge, webhooks) to local code, with nothing lost."""

__version__ = "0.1.0"
