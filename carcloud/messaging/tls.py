"""TLS on NATS: the certificate `carcloud nats-config` gives the nodes, and carcloud's side.

A NATS cluster across hosts carries the services' passwords and every car's data
between hosts. With `--nats-tls-cert/--nats-tls-key` (and `--nats-tls-ca`), nats-config
writes nodes whose client port takes TLS only and whose routes run over TLS; carcloud's
processes then connect to tls://HOST:PORT and check the servers against the CA
(`CARCLOUD_NATS_TLS_CA`), showing a client certificate of their own if given one
(`CARCLOUD_NATS_TLS_CERT/KEY`): with `--nats-tls-verify-clients` the nodes require it.

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
    client_cert: bool = False  # shows servers a certificate (--nats-tls-cert) if asked


# What to do about the TLS alerts of servers that check clients' certificates (mutual TLS).
_CLIENT_CERT_HINTS = {
    "CERTIFICATE_REQUIRED": "the NATS servers ask for a client certificate (mutual TLS): give "
    "this process one signed by their CA with --nats-tls-cert/--nats-tls-key "
    "(CARCLOUD_NATS_TLS_CERT/KEY)",
    "UNKNOWN_CA": "the NATS servers do not trust this process's client certificate "
    "(--nats-tls-cert, CARCLOUD_NATS_TLS_CERT): it must be signed by the CA of their "
    "`tls { ca_file }`",
}


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


def node_tls(settings: Settings, verify_clients: bool = False) -> NatsTls | None:
    """nats-config's node certificate and CA, checked; None for plaintext NATS.

    `verify_clients` (--nats-tls-verify-clients): the client ports also ask every
    client for a certificate signed by --nats-tls-ca (mutual TLS).
    """
    files = _cert_and_key(settings)
    ca = settings.nats_tls_ca
    if files is None:
        if ca is not None or verify_clients:
            flag = "--nats-tls-ca" if ca is not None else "--nats-tls-verify-clients"
            raise ConfigError(
                f"{flag} needs NATS TLS on the nodes: give their certificate with "
                "--nats-tls-cert and --nats-tls-key"
            )
        return None
    if verify_clients and ca is None:
        # The system's trust store would let in a certificate of anyone's from any public CA.
        raise ConfigError(
            "--nats-tls-verify-clients checks clients' certificates against --nats-tls-ca: "
            "give the CA that signs carcloud's client certificates"
        )
    return NatsTls(
        *files,
        None if ca is None else readable_file(ca, "--nats-tls-ca"),
        settings.nats_tls_first,
        verify_clients,
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
    return ClientTls(context, settings.nats_tls_first, files is not None)


def connection_problem(exc: BaseException, tls: ClientTls | None) -> str:
    """What a failed NATS connection logs: the error, and what to do when the servers
    refused this process's client certificate, or wanted one it does not have."""
    text = str(exc) or type(exc).__name__
    if tls is None:
        return text
    for alert, hint in _CLIENT_CERT_HINTS.items():
        if alert in text and (alert != "CERTIFICATE_REQUIRED" or not tls.client_cert):
            return f"{text}; {hint}"
    return text
