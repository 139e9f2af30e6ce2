"""Beyond loopback a server needs TLS and a connection secret; here both run on 127.0.0.1."""

from __future__ import annotations

import datetime
import ipaddress
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from twin.cli import main
from twin.server.launcher import ServerProcess

CLIENT = textwrap.dedent('''
    import sys
    from clients.tem import TemMicroscopeClient
    microscope = TemMicroscopeClient()
    try:
        microscope.connect("127.0.0.1", int(sys.argv[1]))
    except ConnectionError as error:
        print("refused:", error)
        raise SystemExit(3)
    print("focus", microscope.optics.defocus)
''')


def certificate_for_loopback(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM), made with ``cryptography``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "twin test server")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path, str]]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = certificate_for_loopback(folder)
    server = ServerProcess.start("--certificate", str(cert), "--private-key", str(key), "--secret",
                                 str(folder / "secret"), "--data-dir", str(folder / "files"))
    secret = (folder / "secret").read_text().strip()
    yield server, cert, secret
    assert server.stop() == 0


def run_client(port: int, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("TWIN_CA", "TWIN_SECRET")} | env
    return subprocess.run([sys.executable, "-c", CLIENT, str(port)], capture_output=True, text=True,
                          timeout=120, env=environment)


def test_a_client_with_the_certificate_and_the_secret_is_served(secured) -> None:
    server, cert, secret = secured
    assert oct((cert.parent / "secret").stat().st_mode & 0o777) == "0o600"
    assert secret not in "\n".join(server.lines)  # the secret is never printed
    assert "Connections: TLS-encrypted, a connection secret required" in "\n".join(server.lines)
    served = run_client(server.port, TWIN_CA=str(cert), TWIN_SECRET=secret)
    assert served.returncode == 0 and served.stdout.startswith("focus"), served.stderr


def test_without_the_secret_or_without_tls_a_client_is_turned_away(secured) -> None:
    server, cert, secret = secured
    wrong = run_client(server.port, TWIN_CA=str(cert), TWIN_SECRET="not the secret at all")
    assert wrong.returncode == 3 and "needs its connection secret" in wrong.stdout
    none = run_client(server.port, TWIN_CA=str(cert))
    assert none.returncode == 3 and "needs its connection secret" in none.stdout
    plain = run_client(server.port, TWIN_SECRET=secret)  # no TLS: the server does not answer in clear
    assert plain.returncode != 0 and "focus" not in plain.stdout


def test_a_server_beyond_loopback_will_not_start_without_tls(capsys) -> None:
    with pytest.raises(SystemExit, match=r"--host 192\.0\.2\.1 is reachable from other machines: give "
                                         r"--certificate and --private-key"):
        main(["serve", "--host", "192.0.2.1", "--port", "0"])
