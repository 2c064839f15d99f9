"""Running the relay for a team: TLS end to end, and the tokens file."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import os
import ssl
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from hookcli.errors import ConfigError, UsageError
from hookcli.relay.service import load_tokens, start_relay

from conftest import UNIT, relay_settings, run, wait_until


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cryptography comes with moto's server extra)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hook test relay")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.slow
def test_tls_relay_end_to_end(tmp_path: Path) -> None:
    """With --tls-cert/--tls-key, ingest is HTTPS and `hook tail` streams over wss."""
    cert, key = make_certificate(tmp_path)

    async def main() -> None:
        relay = await start_relay(
            relay_settings(tmp_path / "relay", tls_cert=cert, tls_key=key, tokens={"t" * 20: ""})
        )
        assert relay.url.startswith("https://")
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOOK_")}
        env.update(
            HOOK_CONFIG=str(tmp_path / "none.toml"), HOOK_TOKEN="t" * 20, SSL_CERT_FILE=str(cert)
        )
        tail = subprocess.Popen(
            [sys.executable, "-m", "hookcli", "tail", "--relay", relay.url, "--count", "1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            lines: list[str] = []

            def ready() -> bool:
                assert tail.stderr is not None
                lines.append(tail.stderr.readline())
                return '"type":"ready"' in lines[-1]

            await asyncio.to_thread(wait_until, ready, UNIT * 2, "tail ready over wss")
            context = ssl.create_default_context(cafile=str(cert))
            async with aiohttp.ClientSession() as session:
                async with session.post(
                    f"{relay.url}/v1/ingest/secure", json={"over": "tls"}, ssl=context
                ) as response:
                    assert response.status == 202
            out, _ = await asyncio.to_thread(tail.communicate, timeout=UNIT * 2)
            assert tail.returncode == 0
            assert json.loads(out.splitlines()[0])["detail"] == {"over": "tls"}
        finally:
            if tail.poll() is None:
                tail.kill()
                tail.communicate()
            await relay.stop()

    run(main())


def test_tls_needs_both_files(tmp_path: Path) -> None:
    """A certificate without its key is a usage error before anything binds."""
    cert, _ = make_certificate(tmp_path)
    with pytest.raises(UsageError, match="go together"):
        run(start_relay(relay_settings(tmp_path / "relay", tls_cert=cert)))


def test_tokens_file_parses_names_and_comments(tmp_path: Path) -> None:
    """name:token lines, with comments and blank lines, map each token to its scope."""
    path = tmp_path / "tokens.txt"
    path.write_text("# team tokens\n\nalice: aaaaaaaaaaaaaaaaaaaa\nbob:bbbbbbbbbbbbbbbbbbbbbbbb\n")
    assert load_tokens(path) == {"aaaaaaaaaaaaaaaaaaaa": "alice", "bbbbbbbbbbbbbbbbbbbbbbbb": "bob"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alice\n", "expected name:token"),
        (":aaaaaaaaaaaaaaaaaaaa\n", "expected name:token"),
        ("alice:short\n", "shorter than 16"),
        ("a:aaaaaaaaaaaaaaaaaaaa\nb:aaaaaaaaaaaaaaaaaaaa\n", "already given"),
        ("# only a comment\n", "no name:token lines"),
    ],
)
def test_tokens_file_errors_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    """A bad tokens file is a ConfigError that says what is wrong (never echoing a token)."""
    path = tmp_path / "tokens.txt"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as raised:
        load_tokens(path)
    assert "aaaaaaaaaaaaaaaaaaaa" not in str(raised.value)
