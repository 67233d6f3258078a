"""The TLS identity of the lab's WSMan endpoints: a CA (DIR/ca.pem) and a loopback certificate.

Made fresh at every lab start. The private key never touches the disk unencrypted: it is
written encrypted under a random passphrase that lives only in the lab process.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edgebook.lab.folder import write_atomic


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
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = (
            x509.CertificateBuilder()
            .subject_name(_name("edgebook lab endpoint CA"))
            .issuer_name(_name("edgebook lab endpoint CA"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name("127.0.0.1"))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(ca_key, hashes.SHA256())
        )
        passphrase = secrets.token_bytes(32)
        pem = serialization.Encoding.PEM
        tls = cls(
            tls_dir.parent / "ca.pem",
            tls_dir / "endpoint.pem",
            tls_dir / "endpoint.key",
            passphrase,
        )
        write_atomic(tls.ca_file, ca.public_bytes(pem))
        write_atomic(tls.cert_file, cert.public_bytes(pem))
        encrypted = key.private_bytes(
            pem,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
        write_atomic(tls.key_file, encrypted, mode=0o600)
        return tls

    def server_context(self) -> ssl.SSLContext:
        """A server-side SSLContext holding the endpoint certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file, password=self.passphrase)
        return context
