"""A server reachable beyond this machine speaks TLS and asks every client for a connection secret.

On a loopback address only this machine's users can connect, and neither is required. On any other
address ``twin serve`` refuses to start without a certificate and key (``--certificate``,
``--private-key``); the connection secret comes from ``--secret FILE`` or is made in the data folder
(owner-only), and clients show it through ``TWIN_SECRET`` (and trust the certificate through
``TWIN_CA``).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import ssl
from pathlib import Path

SECRET_FILE = "connection.secret"


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is on this machine's loopback interface."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(found) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in found)


def tls_context(certificate: str | Path, private_key: str | Path) -> ssl.SSLContext:
    """The server's TLS context from a PEM certificate (chain) and its key; clients need no certificate."""
    for option, path in (("--certificate", certificate), ("--private-key", private_key)):
        if not Path(path).is_file():
            raise ValueError(f"{option} = {str(path)!r}: no such file (PEM)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(certificate), str(private_key))
    except ssl.SSLError as error:
        raise ValueError(f"--certificate {str(certificate)!r} with --private-key {str(private_key)!r}: "
                         f"{error.reason or error}") from None
    return context


def load_or_create_secret(path: str | Path) -> tuple[str, bool]:
    """The connection secret kept at ``path`` (made there, owner-only, if missing); and whether it was
    made now."""
    path = Path(path)
    if path.exists():
        text = path.read_text().strip()
        if len(text) < 16:
            raise ValueError(f"--secret {str(path)!r}: a secret of at least 16 characters, please")
        return text, False
    path.parent.mkdir(parents=True, exist_ok=True)
    text = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text + "\n")
    return text, True
