"""Where the relay is and how to authenticate: options, ``HOOK_*`` env vars, then a config file.

The config file is TOML at ``<platform config dir>/hook/config.toml`` (``HOOK_CONFIG`` overrides):

    relay = "https://relay.example.com"
    token = "..."

A relay on loopback started without a token uses the *local token* (the Jupyter model): made on
first start, kept owner-only at ``<platform state dir>/hook/token`` (``$XDG_STATE_HOME/hook/token``
on Linux), and found here by every command that talks to a loopback relay without a token. A web
page cannot read that file, and another local user cannot either.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import stat
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
    #: The token is the local token (found in the state dir, not given by the user).
    local_token: bool = False

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
    url = to_http(chosen or DEFAULT_RELAY)  # validate early, before any network I/O
    local = False
    if secret is None and is_loopback(urlsplit(url).hostname or ""):
        # Only ever to a loopback relay: the local token must not leave this machine.
        secret = load_local_token()
        local = secret is not None
    return Connection(
        relay=chosen or DEFAULT_RELAY,
        token=secret,
        configured=chosen is not None,
        local_token=local,
    )


def is_loopback(host: str) -> bool:
    """``localhost``, ``*.localhost`` (RFC 6761 6.3), 127.0.0.0/8 or ::1; nothing is resolved."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


# -------------------------------------------------------------------- the local token


def local_token_path() -> Path:
    """Where the local token lives: ``<user state dir>/hook/token`` (honours XDG_STATE_HOME)."""
    from platformdirs import user_state_dir

    return Path(user_state_dir("hook", appauthor=False)) / "token"


def load_local_token() -> str | None:
    """The local token, or None when no loopback relay has made one yet (or it is unreadable)."""
    try:
        text = local_token_path().read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text or None


def ensure_local_token() -> str:
    """The local token, made on first use: owner-only file (0600) in an owner-only dir (0700).

    Created atomically (an O_EXCL temp file linked into place, so two relays starting at once
    agree on one token). A file owned by someone else, or not a regular file, is refused; one
    that group or others could read may have leaked, so it is replaced by a fresh token.
    """
    path = local_token_path()
    _owner_only_dir(path.parent)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return _create_token(path, replace=False)
    except OSError as exc:
        raise _token_error(path, exc.strerror or str(exc)) from exc
    if not stat.S_ISREG(info.st_mode):
        raise _token_error(path, "it is not a regular file")
    if info.st_uid != os.getuid():
        raise _token_error(path, "it belongs to another user")
    if info.st_mode & 0o077:
        return _create_token(path, replace=True)
    token = load_local_token()
    return token if token is not None else _create_token(path, replace=True)


def _owner_only_dir(folder: Path) -> None:
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(folder)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            raise _token_error(folder, "it is not a directory of yours")
        if info.st_mode & 0o077:
            folder.chmod(0o700)
    except OSError as exc:
        raise _token_error(folder, exc.strerror or str(exc)) from exc


def _create_token(path: Path, *, replace: bool) -> str:
    token = secrets.token_urlsafe(32)
    temp = path.with_name(f".token.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(
            temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600
        )
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(token + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temp, path)
            return token
        try:
            os.link(temp, path)  # fails if another relay made it first: then use theirs
        except FileExistsError:
            existing = load_local_token()
            if existing is None:
                raise _token_error(path, "it exists but cannot be read") from None
            return existing
        return token
    except OSError as exc:
        raise _token_error(path, exc.strerror or str(exc)) from exc
    finally:
        temp.unlink(missing_ok=True)


def _token_error(path: Path, why: str) -> ConfigError:
    return ConfigError(
        f"cannot use the local token file {path}: {why}",
        hint="remove it (the relay makes a new one), or start the relay with --token/--tokens",
    )


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
