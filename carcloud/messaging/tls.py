"""TLS on NATS: the certificate `carcloud nats-config` gives the nodes, and carcloud's side.

A NATS cluster across hosts carries the services' passwords and every car's data
between hosts. With `--nats-tls-cert/--nats-tls-key` (and `--nats-tls-ca`), nats-config
writes nodes whose client port takes TLS only and whose routes run over TLS; carcloud's
processes then connect to tls://HOST:PORT and check the servers against the CA
(`CARCLOUD_NATS_TLS_CA`), showing a client certificate of their own if given one.

Both sides start with the TLS handshake (`CARCLOUD_NATS_TLS_FIRST`, on by default): a
NATS server otherwise says in a plaintext INFO that it wants TLS, and whoever can
rewrite that INFO on the network could have the client send its password in clear.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from carcloud.config import Settings, mask_url, nats_servers
from carcloud.errors import ConfigError
from carcloud.messaging.natsserver import NatsTls

SECURE_SCHEMES = ("tls", "wss")


@dataclass(frozen=True)
class ClientTls:
    """How carcloud's NATS connections do TLS (see `client_tls`)."""

    context: ssl.SSLContext
    handshake_first: bool  # TLS before the server's INFO; False: when the INFO asks for it


def readable_file(path: Path, flag: str) -> Path:
    """`path` made absolute; ConfigError naming `flag` when it is not a file."""
    if not path.is_file():
        raise ConfigError(f"{flag} {path} is not a readable file")
    return path.absolute()


def _cert_and_key(settings: Settings) -> tuple[Path, Path] | None:
    cert, key = settings.nats_tls_cert, settings.nats_tls_key
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigError("NATS TLS needs both --nats-tls-cert and --nats-tls-key")
    return readable_file(cert, "--nats-tls-cert"), readable_file(key, "--nats-tls-key")


def node_tls(settings: Settings) -> NatsTls | None:
    """nats-config's node certificate and CA, checked; None for plaintext NATS."""
    files = _cert_and_key(settings)
    ca = settings.nats_tls_ca
    if files is None:
        if ca is not None:
            raise ConfigError(
                "--nats-tls-ca checks the nodes' certificates: give them with "
                "--nats-tls-cert and --nats-tls-key"
            )
        return None
    return NatsTls(
        *files,
        None if ca is None else readable_file(ca, "--nats-tls-ca"),
        settings.nats_tls_first,
    )


def client_tls(settings: Settings) -> ClientTls | None:
    """The TLS of carcloud's NATS connections; None when the servers are nats://.

    Servers are checked against --nats-tls-ca (else the system's trust store) and
    must be named by their certificates; --nats-tls-cert/--nats-tls-key are shown to
    servers that ask for a client certificate. The handshake comes first, before any
    byte from the server, unless --nats-tls-first is 0.
    """
    servers = nats_servers(settings.nats_url)
    secure = [urlsplit(server).scheme in SECURE_SCHEMES for server in servers]
    given = (settings.nats_tls_ca, settings.nats_tls_cert, settings.nats_tls_key)
    if not any(secure):
        if any(path is not None for path in given):
            raise ConfigError(
                f"NATS TLS settings (--nats-tls-ca, --nats-tls-cert) are given but NATS is "
                f"reached without TLS at {mask_url(settings.nats_url)}; use tls://HOST:PORT "
                "for a NATS with TLS (--nats, CARCLOUD_NATS_URL)"
            )
        return None
    if not all(secure):
        raise ConfigError(
            f"NATS URL {mask_url(settings.nats_url)} mixes servers with and without TLS; "
            "give every server as tls://HOST:PORT"
        )
    ca = settings.nats_tls_ca
    files = _cert_and_key(settings)
    try:
        context = ssl.create_default_context(
            cafile=None if ca is None else str(readable_file(ca, "--nats-tls-ca"))
        )
        if files is not None:
            context.load_cert_chain(*files)
    except ssl.SSLError as exc:
        raise ConfigError(f"NATS TLS files cannot be used: {exc}") from exc
    return ClientTls(context, settings.nats_tls_first)
