"""The ExchangeCertificate object as the lab's cmdlets hold it: every documented property a
runbook reads through Select-Object or the pipeline, while the wire carries what Exchange sends
for the bare object (RawData and SerializationData, docs/serialization.md)."""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from edgebook.certs import issuer_name, subject_name, thumbprint, windows_name
from edgebook.exchange import wire_types as T
from edgebook.lab.cmdlets.base import Context
from edgebook.lab.cmdlets.common import enum
from edgebook.lab.org import certstore, pki
from edgebook.lab.org.model import CertEntry, Server
from edgebook.lab.winrm.objects import (
    SERIALIZATION_DATA,
    ExEnum,
    ExList,
    ExObject,
    serialization_data,
)

STATUSES = [
    "Unknown",
    "Valid",
    "Revoked",
    "DateInvalid",
    "Untrusted",
    "Invalid",
    "RevocationCheckFailure",
    "PendingRequest",
]
CA_TYPES = ["None", "ThirdParty", "Enterprise", "Registry", "GroupPolicy", "Unknown"]
CERT_TYPES = [T.EXCHANGE_CERTIFICATE, T.X509_CERTIFICATE2, T.X509_CERTIFICATE, "System.Object"]
X500_NAME = "System.Security.Cryptography.X509Certificates.X500DistinguishedName"
OID = "System.Security.Cryptography.Oid"
# Windows' friendly names of the OIDs the lab's certificates carry (CryptoAPI's OID table).
FRIENDLY_NAMES = {
    "1.3.6.1.5.5.7.3.1": "Server Authentication",
    "1.3.6.1.5.5.7.3.2": "Client Authentication",
    "1.2.840.113549.1.1.11": "sha256RSA",
    "1.2.840.113549.1.1.12": "sha384RSA",
    "1.2.840.113549.1.1.13": "sha512RSA",
    "1.2.840.113549.1.1.5": "sha1RSA",
}
EKU_TYPE = "System.Collections.Generic.List`1[[Microsoft.Exchange.Data.FriendlyNameObjectId]]"
DNS_NAMES_TYPE = (
    "System.Collections.Generic.List`1[[Microsoft.Exchange.Data.SmtpDomainWithSubdomains]]"
)


def certificate_object(ctx: Context, server: Server, entry: CertEntry) -> ExObject:
    """The ExchangeCertificate object of a store entry."""
    cert = certstore.cert_of(entry)
    der = cert.public_bytes(serialization.Encoding.DER)
    domains = entry.request_domains if entry.pending_request else pki.domains_of(cert)
    ski = key_identifier(cert)
    props: dict[str, Any] = {
        "CertificateDomains": ExList(T.SMTP_DOMAIN_LIST, list(domains)),
        "HasPrivateKey": entry.key_sealed is not None,
        "IsSelfSigned": pki.is_self_signed(cert) and not entry.pending_request,
        "Issuer": issuer_name(cert),
        "NotAfter": cert.not_valid_after_utc,
        "NotBefore": cert.not_valid_before_utc,
        "PublicKeySize": cert.public_key().key_size,  # type: ignore[union-attr]
        "RootCAType": enum(
            T.CERTIFICATE_AUTHORITY_TYPE, CA_TYPES, certstore.root_ca_type(server, entry)
        ),
        "SerialNumber": serial_number(cert),
        "Services": enum_services(entry.services),
        "ServicesStringForm": certstore.services_string_form(entry.services),
        "Status": enum(
            T.CERTIFICATE_STATUS, STATUSES, certstore.status(ctx.org, server, entry, ctx.now)
        ),
        "Subject": entry.request_subject if entry.pending_request else subject_name(cert),
        "FriendlyName": entry.friendly_name,
        "PrivateKeyExportable": entry.exportable,
        "Thumbprint": entry.thumbprint,
        "Identity": f"{server.fqdn}\\{entry.thumbprint}",
        "CertificateRequest": entry.request_pem,
        "Version": 3,
        "Archived": False,
        "DnsNameList": ExList(DNS_NAMES_TYPE, list(domains)),
        "EnhancedKeyUsageList": ExList(EKU_TYPE, [_eku(oid) for oid in _eku_oids(cert)]),
        "SubjectName": _x500(cert.subject),
        "IssuerName": _x500(cert.issuer),
        "SignatureAlgorithm": oid_object(cert.signature_algorithm_oid.dotted_string),
        "KeyIdentifier": ski,
        "SubjectKeyIdentifier": ski,
        "IISServices": ExList("System.Collections.Generic.List`1[[System.String]]", []),
        "SendAsTrustedIssuer": False,
        "RawData": der,
        SERIALIZATION_DATA: serialization_data(T.EXCHANGE_CERTIFICATE),
    }
    # X509Certificate2's type data serialises RawData only; Exchange adds its opaque
    # SerializationData: a client without Exchange's binaries gets nothing else (issue #13).
    return ExObject(
        list(CERT_TYPES),
        props,
        to_string=x509_to_string(cert),
        adapted=("RawData",),
        notes=(SERIALIZATION_DATA,),
    )


def serial_number(cert: x509.Certificate) -> str:
    """X509Certificate.SerialNumber: the serial's DER content bytes, big-endian hex (leading
    zero bytes kept, e.g. "00A1..." when the high bit is set)."""
    serial = cert.serial_number
    return serial.to_bytes((serial.bit_length() + 8) // 8, "big").hex().upper()


def key_identifier(cert: x509.Certificate) -> str | None:
    """The Subject Key Identifier extension in hex (None without one)."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        return None
    return ext.value.digest.hex().upper()


def oid_object(dotted: str) -> ExObject:
    """A System.Security.Cryptography.Oid (Value and FriendlyName)."""
    return ExObject(
        [OID, "System.Object"],
        {"Value": dotted, "FriendlyName": FRIENDLY_NAMES.get(dotted, "")},
        to_string=OID,
    )


def _eku_oids(cert: x509.Certificate) -> list[str]:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return []
    return [oid.dotted_string for oid in eku]


def _eku(dotted: str) -> ExObject:
    """An entry of EnhancedKeyUsageList ("Server Authentication (1.3.6.1.5.5.7.3.1)")."""
    name = FRIENDLY_NAMES.get(dotted, "")
    return ExObject(
        ["Microsoft.Exchange.Data.FriendlyNameObjectId", "System.Object"],
        {"FriendlyName": name, "Value": dotted},
        to_string=f"{name} ({dotted})" if name else dotted,
    )


def _x500(name: x509.Name) -> ExObject:
    """An X500DistinguishedName (Name in Windows format, the DER in RawData)."""
    return ExObject(
        [X500_NAME, "System.Security.Cryptography.AsnEncodedData", "System.Object"],
        {"Name": windows_name(name), "Oid": None, "RawData": name.public_bytes()},
        to_string=X500_NAME,
    )


def x509_to_string(cert: Any) -> str:
    """X509Certificate2.ToString(): subject, issuer, serial, dates (the lab's clock is UTC)."""
    fields = [
        ("Subject", subject_name(cert)),
        ("Issuer", issuer_name(cert)),
        ("Serial Number", serial_number(cert)),
        ("Not Before", cert.not_valid_before_utc.strftime("%m/%d/%Y %H:%M:%S")),
        ("Not After", cert.not_valid_after_utc.strftime("%m/%d/%Y %H:%M:%S")),
        ("Thumbprint", thumbprint(cert)),
    ]
    return "\r\n".join(f"[{label}]\r\n  {value}\r\n" for label, value in fields)


def enum_services(value: int) -> Any:
    """The AllowedServices flags value."""
    return ExEnum(T.ALLOWED_SERVICES, certstore.services_text(value), value)
