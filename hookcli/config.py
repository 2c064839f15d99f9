"""Where the relay is and how to authenticate: options, ``HOOK_*`` env vars, then a config file.

The config file is TOML at ``<platform config dir>/hook/config.toml`` (``HOOK_CONFIG`` overrides):

    relay = "https://relay.example.com"
    token = "..."
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from hookcli.errors import ConfigError

DEFAULT_RELAY = "http://127.0.0.1:8750"


@dataclass(frozen=True, slots=True)
class Connection:
    """A relay to talk to; ``configured`` is False when nothing named one (embedded default)."""

    relay: str
    token: str | None
    configured: bool

    @property
    def http_url(self) -> str:
        """The relay's HTTP base URL (``ws``/``wss`` become ``http``/``https``)."""
        return to_http(self.relay)

    @property
    def stream_url(self) -> str:
        """The websocket stream URL."""
        base = self.http_url
        return ("wss" + base[5:] if base.startswith("https") else "ws" + base[4:]) + "/v1/stream"

    def headers(self) -> dict[str, str]:
        """Request headers for the relay (the bearer token, when there is one)."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def config_path() -> Path:
    """The config file's path (``HOOK_CONFIG`` wins over the platform config dir)."""
    override = os.environ.get("HOOK_CONFIG")
    if override:
        return Path(override).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("hook", appauthor=False)) / "config.toml"


def load_config() -> dict[str, object]:
    """The config file's table, or {} when there is none."""
    path = config_path()
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"cannot read the config file {path}: {exc}", hint="fix or remove it"
        ) from exc


def resolve(relay: str | None, token: str | None) -> Connection:
    """Combine ``--relay``/``--token`` (or HOOK_RELAY/HOOK_TOKEN) with the config file."""
    file = load_config() if relay is None or token is None else {}
    file_relay = file.get("relay")
    file_token = file.get("token")
    chosen = relay or (file_relay if isinstance(file_relay, str) else None)
    secret = token or (file_token if isinstance(file_token, str) else None)
    if chosen is not None:
        to_http(chosen)  # validate early, before any network I/O
    return Connection(relay=chosen or DEFAULT_RELAY, token=secret, configured=chosen is not None)


def to_http(url: str) -> str:
    """Normalize a relay URL to ``http(s)://host:port`` (accepting ws/wss and a bare host:port)."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    if scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"relay URL {url!r} is not an http(s) or ws(s) URL",
            hint="e.g. --relay http://127.0.0.1:8750 or --relay wss://relay.example.com",
        )
    path = parts.path.rstrip("/").removesuffix("/v1/stream").rstrip("/")
    return f"{scheme}://{parts.netloc}{path}"
