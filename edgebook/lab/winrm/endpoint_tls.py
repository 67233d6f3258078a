"""The TLS identity of the lab's WSMan endpoints: a CA (DIR/ca.pem) and a loopback certificate.

Made fresh at every lab start by the lab's PKI (edgebook.lab.org.pki), like every other lab
certificate. The private key never touches the disk unencrypted: it is written encrypted under
a random passphrase that lives only in the lab process.
"""

from __future__ import annotations

import datetime as dt
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from edgebook.lab.folder import write_atomic
from edgebook.lab.net.tls_contexts import exchange_tls_versions
from edgebook.lab.org import pki

LIFETIME = dt.timedelta(days=30)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edgebook lab"),
        ]
    )


@dataclass(frozen=True)
class EndpointTls:
    """Files of the endpoint identity and the passphrase of its key."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    passphrase: bytes

    @classmethod
    def create(cls, directory: Path) -> EndpointTls:
        """Issue a CA and a certificate for 127.0.0.1/localhost into DIR/tls/."""
        tls_dir = directory / "tls"
        tls_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        not_before = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        not_after = not_before + LIFETIME
        ca = pki.make_ca(_name("edgebook lab endpoint CA"), not_before, not_after)
        cert, key = pki.issue(
            _name("127.0.0.1"),
            ["localhost"],
            not_before,
            not_after,
            issuer=ca,
            ip_addresses=["127.0.0.1"],
        )
        passphrase = secrets.token_bytes(32)
        tls = cls(
            tls_dir.parent / "ca.pem",
            tls_dir / "endpoint.pem",
            tls_dir / "endpoint.key",
            passphrase,
        )
        write_atomic(tls.ca_file, pki.pem(ca[0]))
        write_atomic(tls.cert_file, pki.pem(cert))
        encrypted = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
        write_atomic(tls.key_file, encrypted, mode=0o600)
        return tls

    def server_context(self) -> ssl.SSLContext:
        """A server-side SSLContext holding the endpoint certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        exchange_tls_versions(context)
        context.load_cert_chain(self.cert_file, self.key_file, password=self.passphrase)
        return context
