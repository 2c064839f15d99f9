"""Where the relay is: URL normalization, stream URL, auth header, options over the config file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hookcli.config import (
    DEFAULT_RELAY,
    Connection,
    config_path,
    ensure_local_token,
    load_config,
    load_local_token,
    local_token_path,
    resolve,
    to_http,
)
from hookcli.errors import ConfigError, UsageError


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config path named by HOOK_CONFIG (not yet written), so no test reads the user's own.

    The state dir is a fresh one too, so no local token exists until a test makes one.
    """
    path = tmp_path / "config.toml"
    monkeypatch.setenv("HOOK_CONFIG", str(path))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return path


@pytest.mark.parametrize(
    ("url", "http"),
    [
        ("http://127.0.0.1:8750", "http://127.0.0.1:8750"),
        ("https://relay.example.com", "https://relay.example.com"),
        ("ws://127.0.0.1:8750", "http://127.0.0.1:8750"),
        ("wss://relay.example.com", "https://relay.example.com"),
        ("127.0.0.1:8750", "http://127.0.0.1:8750"),
        ("localhost:8750", "http://localhost:8750"),
        ("relay.example.com", "http://relay.example.com"),
        ("http://relay.example.com/", "http://relay.example.com"),
        ("http://relay.example.com///", "http://relay.example.com"),
        ("  https://relay.example.com/  ", "https://relay.example.com"),
        ("ws://127.0.0.1:8750/v1/stream", "http://127.0.0.1:8750"),
        ("wss://relay.example.com/v1/stream/", "https://relay.example.com"),
        ("https://example.com/hook/v1/stream", "https://example.com/hook"),
        ("https://example.com/hook/", "https://example.com/hook"),
        ("HTTPS://Relay.example.com", "https://Relay.example.com"),
        ("http://[::1]:8750", "http://[::1]:8750"),
    ],
)
def test_to_http_normalizes(url: str, http: str) -> None:
    """ws/wss become http/https, a bare host gets http, and trailing / and /v1/stream go."""
    assert to_http(url) == http


@pytest.mark.parametrize(
    "url",
    [
        "ftp://relay.example.com",
        "file:///tmp/x",
        "http:///path",
        "http://:8750",
        "",
        "   ",
        "://x",
        "http://",
        "wss://",
    ],
)
def test_to_http_rejects_other_schemes(url: str) -> None:
    """Anything but an http(s)/ws(s) URL with a host is a ConfigError with an example hint."""
    with pytest.raises(ConfigError, match="is not an http\\(s\\) or ws\\(s\\) URL") as info:
        to_http(url)
    assert info.value.hint and "--relay" in info.value.hint
    assert isinstance(info.value, UsageError) and info.value.exit_code == 2


@pytest.mark.parametrize(
    ("relay", "stream"),
    [
        ("http://127.0.0.1:8750", "ws://127.0.0.1:8750/v1/stream"),
        ("https://relay.example.com", "wss://relay.example.com/v1/stream"),
        ("wss://relay.example.com/v1/stream", "wss://relay.example.com/v1/stream"),
        ("localhost:9000", "ws://localhost:9000/v1/stream"),
        ("https://example.com/hook/", "wss://example.com/hook/v1/stream"),
    ],
)
def test_stream_url(relay: str, stream: str) -> None:
    """The stream URL is the relay's base with ws/wss and ``/v1/stream``."""
    assert Connection(relay, None, configured=True).stream_url == stream


def test_http_url_normalizes_relay() -> None:
    """``http_url`` is ``to_http`` of the relay as given."""
    assert Connection("wss://r.example.com/", None, configured=True).http_url == (
        "https://r.example.com"
    )


@pytest.mark.parametrize(
    ("token", "headers"),
    [("s3cret", {"Authorization": "Bearer s3cret"}), (None, {}), ("", {})],
)
def test_headers(token: str | None, headers: dict[str, str]) -> None:
    """A token becomes a bearer Authorization header; no token, no header."""
    assert Connection(DEFAULT_RELAY, token, configured=False).headers() == headers


def test_config_path_follows_hook_config(config_file: Path) -> None:
    """HOOK_CONFIG names the config file."""
    assert config_path() == config_file


def test_missing_file_gives_embedded_default(config_file: Path) -> None:
    """No file and no options: the embedded default relay, not configured, no token."""
    assert resolve(None, None) == Connection(DEFAULT_RELAY, None, configured=False)
    assert load_config() == {}


def test_file_supplies_relay_and_token(config_file: Path) -> None:
    """The config file supplies the relay and the token."""
    config_file.write_text('relay = "wss://relay.example.com"\ntoken = "from-file"\n')
    assert resolve(None, None) == Connection("wss://relay.example.com", "from-file", True)


@pytest.mark.parametrize(
    ("relay", "token", "expected"),
    [
        ("http://cli:1", "cli-token", Connection("http://cli:1", "cli-token", True)),
        ("http://cli:1", None, Connection("http://cli:1", "from-file", True)),
        (None, "cli-token", Connection("https://file.example.com", "cli-token", True)),
    ],
)
def test_explicit_options_win_over_file(
    config_file: Path, relay: str | None, token: str | None, expected: Connection
) -> None:
    """``--relay``/``--token`` win; the file fills in only what was not given."""
    config_file.write_text('relay = "https://file.example.com"\ntoken = "from-file"\n')
    assert resolve(relay, token) == expected


def test_token_only_file_keeps_embedded_default(config_file: Path) -> None:
    """A file with only a token does not count as naming a relay."""
    config_file.write_text('token = "t"\n')
    assert resolve(None, None) == Connection(DEFAULT_RELAY, "t", configured=False)


def test_non_string_values_in_file_are_ignored(config_file: Path) -> None:
    """Non-string relay/token values in the file are not used."""
    config_file.write_text("relay = 8750\ntoken = true\n")
    assert resolve(None, None) == Connection(DEFAULT_RELAY, None, configured=False)


@pytest.mark.parametrize("text", ['relay = "unterminated\n', "relay = \n", "[[[\n"])
def test_malformed_file_is_config_error(config_file: Path, text: str) -> None:
    """A file that is not TOML is a ConfigError naming the file, with a hint."""
    config_file.write_text(text)
    with pytest.raises(ConfigError, match="cannot read the config file") as info:
        resolve(None, None)
    assert str(config_file) in info.value.message
    assert info.value.hint == "fix or remove it"


def test_unreadable_file_is_config_error(config_file: Path) -> None:
    """A config path that is a directory is a ConfigError, not an OSError."""
    config_file.mkdir()
    with pytest.raises(ConfigError, match="cannot read the config file"):
        resolve(None, None)


def test_malformed_file_is_not_read_when_both_options_given(config_file: Path) -> None:
    """With both options given the file is not needed, so a broken one does not matter."""
    config_file.write_text("[[[\n")
    assert resolve("http://a:1", "t") == Connection("http://a:1", "t", configured=True)


def test_bad_relay_in_file_is_config_error(config_file: Path) -> None:
    """A bad relay URL from the file is rejected before any network I/O."""
    config_file.write_text('relay = "ftp://relay.example.com"\n')
    with pytest.raises(ConfigError, match="ftp://relay.example.com"):
        resolve(None, None)


def test_bad_relay_option_is_config_error(config_file: Path) -> None:
    """A bad ``--relay`` is rejected at resolve time."""
    with pytest.raises(ConfigError):
        resolve("gopher://x", None)


# -------------------------------------------------------------------- the local token


def test_local_token_is_made_owner_only(config_file: Path, tmp_path: Path) -> None:
    """The first call makes a 43-character token in an 0700 dir, file mode 0600."""
    token = ensure_local_token()
    path = local_token_path()
    assert path == tmp_path / "state" / "hook" / "token"
    assert len(token) >= 43
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_text().strip() == token
    assert [p.name for p in path.parent.iterdir()] == ["token"]  # no temp file left behind


def test_local_token_is_reused(config_file: Path) -> None:
    """Later starts reuse the token, so running commands keep working."""
    first = ensure_local_token()
    assert ensure_local_token() == first
    assert load_local_token() == first


def test_local_token_readable_by_others_is_replaced(config_file: Path) -> None:
    """A token file that group or others could read may have leaked: a fresh one replaces it."""
    first = ensure_local_token()
    local_token_path().chmod(0o644)
    second = ensure_local_token()
    assert second != first
    assert stat.S_IMODE(local_token_path().stat().st_mode) == 0o600


def test_loose_state_dir_is_tightened(config_file: Path) -> None:
    """An existing state dir that others can enter is made owner-only."""
    folder = local_token_path().parent
    folder.mkdir(parents=True)
    folder.chmod(0o755)
    ensure_local_token()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_local_token_symlink_is_refused(config_file: Path, tmp_path: Path) -> None:
    """A symlink in the token's place is refused, with a hint to remove it."""
    folder = local_token_path().parent
    folder.mkdir(parents=True, mode=0o700)
    (tmp_path / "elsewhere").write_text("planted-token-value\n")
    local_token_path().symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match="not a regular file") as refused:
        ensure_local_token()
    assert refused.value.hint is not None and "remove it" in refused.value.hint


@pytest.mark.skipif(os.getuid() != 0, reason="giving a file to another user needs root")
def test_local_token_of_another_user_is_refused(config_file: Path) -> None:
    """A token file owned by another user is refused, never used or overwritten."""
    ensure_local_token()
    os.chown(local_token_path(), 65534, 65534)
    with pytest.raises(ConfigError, match="belongs to another user"):
        ensure_local_token()


@pytest.mark.parametrize(
    "relay",
    [None, "http://127.0.0.1:9000", "http://localhost:8750", "ws://[::1]:1", "127.0.0.2:5"],
)
def test_resolve_finds_the_local_token_for_loopback(config_file: Path, relay: str | None) -> None:
    """With no token given, a loopback relay gets the local token."""
    token = ensure_local_token()
    assert resolve(relay, None).token == token


@pytest.mark.parametrize(
    "relay", ["https://relay.example.com", "http://10.0.0.5:8750", "http://localhost.example.com"]
)
def test_local_token_never_goes_to_a_remote_relay(config_file: Path, relay: str) -> None:
    """The local token is never sent to a relay that is not on loopback."""
    ensure_local_token()
    assert resolve(relay, None).token is None


def test_given_token_wins_over_local_token(config_file: Path) -> None:
    """An explicit token (option, env or file) is used instead of the local token."""
    ensure_local_token()
    assert resolve(None, "mine").token == "mine"
    config_file.write_text('token = "from-file"\n')
    assert resolve(None, None).token == "from-file"
