"""Get/Enable/Import/Export/Remove/New-ExchangeCertificate."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from edgebook.certs import thumbprint, windows_name
from edgebook.exchange import wire_types as T
from edgebook.lab.cmdlets import certfiles, certvalues
from edgebook.lab.cmdlets.base import DOMAIN_CONTROLLER, Cmdlet, Context, Param, binding_error
from edgebook.lab.cmdlets.certnames import default_services, renewal_of, san_names
from edgebook.lab.cmdlets.certobject import X500_NAME, certificate_object
from edgebook.lab.cmdlets.common import INVALID_OPERATION, target_server
from edgebook.lab.org import certstore, pki
from edgebook.lab.org.model import STOPPED, TRANSPORT, CertEntry, Server
from edgebook.lab.org.scenarios import add_certificate
from edgebook.lab.winrm.objects import ExObject

OVERWRITE_PROMPT = "Overwrite the existing default SMTP certificate?"  # Exchange's wording
# Microsoft: "The default value is Microsoft Exchange" (a request's or a self-signed certificate's)
DEFAULT_FRIENDLY_NAME = "Microsoft Exchange"
# Exchange's wording (a server's prompt quoted by somoit.net, "Cannot remove exchange certificate")
REMOVE_CONFIRMATION = (
    "Remove certificate with thumbprint {thumbprint} from the computer's certificate store?"
)
INTERNAL_TRANSPORT = (  # Exchange's text (practical365.com, somoit.net)
    "The internal transport certificate cannot be removed because that would cause the Microsoft "
    "Exchange Transport service to stop. To replace the internal transport certificate, create a "
    "new certificate. The new certificate will automatically become the internal transport "
    "certificate. You can then remove the existing certificate."
)
# Exchange's text when its enabling code meets an expired certificate (Install-ExchangeCertificate
# in setup logs, rmilne.ca and jetzemellema.blogspot.com; Enable- shares that code: lab's reading)
EXPIRED = "The certificate is expired."
_DER = serialization.Encoding.DER
# How Exchange's certificate service reports these refusals (Microsoft's "Can't remove a
# certificate that's installed in Exchange Server"; practical365.com, somoit.net)
RPC_ERROR = "A special Rpc error occurs on server {server}: {message}"
TAGGED = (  # Exchange's text (F21); the lab joins several names with ", "
    "These certificates are tagged with following Send Connectors : {names}. Removing and "
    "replacing certificates from Send Connector would break the mail flow. If you still want to "
    "proceed then replace or remove these certificates from Send Connector and then try this "
    "command."
)


def find(ctx: Context, server: Server, params: dict[str, Any]) -> CertEntry:
    """The entry named by -Thumbprint or -Identity; terminating error when absent."""
    wanted = params.get("Thumbprint") or str(params.get("Identity") or "").split("\\")[-1]
    entry = server.certificate(wanted) if wanted else None
    if entry is None:
        raise ctx.fail(
            f"The certificate with thumbprint {wanted} was not found.",
            exception="System.ArgumentException",
            category="ObjectNotFound",
            target=wanted,
        )
    return entry


def _server_of(ctx: Context, params: dict[str, Any]) -> Server:
    identity = str(params.get("Identity") or "")
    if "\\" in identity:
        return target_server(ctx, identity.split("\\")[0])
    return target_server(ctx, params.get("Server"))


def get_exchange_certificate(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Get-ExchangeCertificate."""
    server = _server_of(ctx, params)
    entries = list(server.certificates)
    if params.get("Thumbprint"):
        entry = server.certificate(params["Thumbprint"])
        if entry is None:
            ctx.write_error(
                f"The certificate with thumbprint {params['Thumbprint']} was not found.",
                category="ObjectNotFound",
                target=params["Thumbprint"],
            )
            return []
        entries = [entry]
    elif params.get("Identity"):
        entry = server.certificate(str(params["Identity"]).split("\\")[-1])
        # a non-existent identity returns all: Microsoft's caution on other Get- cmdlets'
        # -Identity (this page doesn't say; the lab's reading)
        entries = [entry] if entry else entries
    if params.get("DomainName"):
        wanted = params["DomainName"]
        entries = [
            e for e in entries if any(pki.matches_domain(certstore.cert_of(e), d) for d in wanted)
        ]
        # Microsoft: "The first certificate returned is the certificate that Exchange selects"
        entries.sort(key=lambda e: certstore.preference(e, ctx.now), reverse=True)
    return [certificate_object(ctx, server, e) for e in entries]


def _set_default(ctx: Context, server: Server, entry: CertEntry, force: bool) -> None:
    """SMTP enablement: Exchange asks before it replaces the default SMTP certificate
    (ShouldContinue); -Force answers Yes (F12), -Confirm:$false does not answer it."""
    current = server.certificate(server.internal_transport_thumbprint or "")
    if current is None:
        server.internal_transport_thumbprint = entry.thumbprint  # nothing to overwrite
        return
    if current.thumbprint == entry.thumbprint:
        return
    if force or ctx.should_continue(overwrite_question(current, entry)):
        server.internal_transport_thumbprint = entry.thumbprint


def overwrite_question(current: CertEntry, new: CertEntry) -> str:
    """Exchange's question before it replaces the default SMTP certificate (its wording)."""
    return (
        f"{OVERWRITE_PROMPT}\n\n"
        f"Current certificate: '{current.thumbprint}' (expires {_expiry(current)})\n"
        f"Replace it with certificate: '{new.thumbprint}' (expires {_expiry(new)})"
    )


def _expiry(entry: CertEntry) -> str:
    """NotAfter as an en-US Exchange Management Shell prints it (the lab prints UTC)."""
    when = certstore.cert_of(entry).not_valid_after_utc
    hour = when.hour % 12 or 12
    half = "AM" if when.hour < 12 else "PM"
    return f"{when.month}/{when.day}/{when.year} {hour}:{when.minute:02d}:{when.second:02d} {half}"


def enable_exchange_certificate(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Enable-ExchangeCertificate."""
    server = _server_of(ctx, params)
    entry = find(ctx, server, params)
    services = certstore.services_value(params["Services"])  # names checked when bound
    if entry.pending_request:
        raise ctx.fail(
            f"The certificate with thumbprint {entry.thumbprint} is a pending request and can't "
            "be enabled."
        )
    if entry.key_sealed is None:
        raise ctx.fail(
            f"The certificate with thumbprint {entry.thumbprint} doesn't have a private key and "
            "can't be enabled."
        )
    if certstore.cert_of(entry).not_valid_after_utc < ctx.now:
        raise ctx.fail(
            EXPIRED,
            exception="System.Security.Cryptography.CryptographicException",
            target=entry.thumbprint,
        )
    if not certstore.time_valid(entry, ctx.now):
        raise ctx.fail(
            f"The certificate with thumbprint {entry.thumbprint} is not yet valid and can't be "
            "enabled."
        )
    certvalues.check_services(ctx, server, services)
    question = (
        f"Enable certificate with thumbprint {entry.thumbprint} for services "
        f'"{certstore.services_text(services)}".'
    )
    if not ctx.should_process(question):
        return []
    entry.services |= services
    if services & certstore.SMTP:
        _set_default(ctx, server, entry, bool(params.get("Force")))
    return []


def import_exchange_certificate(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Import-ExchangeCertificate (PKCS#12 with -Password, or PKCS#7 / X.509 certificates,
    DER or Base64 text)."""
    server = _server_of(ctx, params)
    certvalues.check_friendly_name(ctx, params)
    data: bytes = certfiles.unarmored(params["FileData"])
    password = params.get("Password")
    cert = key = None
    extra: list = []
    pfx_name = ""  # Windows keeps a PKCS#12 file's friendlyName
    try:
        cert, key, extra = pki.read_pfx(data, password)
        pfx_name = pki.pfx_friendly_name(data, password)
    except ValueError as exc:
        if certfiles.looks_pkcs12(data):
            raise ctx.fail(
                "The PFX file you're trying to import requires a different password than the "
                "one entered.",
                exception="System.Security.Cryptography.CryptographicException",
            ) from exc
        certs = certfiles.read_certificates(data)
        if not certs:
            raise ctx.fail(
                "Cannot import certificate. The data isn't a PKCS#12 (.pfx) or PKCS#7 (.p7b) file.",
                exception="System.Security.Cryptography.CryptographicException",
            ) from exc
        leaves = [c for c in certs if not certfiles.is_ca(c)]
        cert, extra = (leaves[0] if leaves else certs[0]), [c for c in certs if c not in leaves[:1]]
    if cert is None:
        raise ctx.fail("Cannot import certificate. The file holds no certificate.")
    thumb = thumbprint(cert)
    existing = server.certificate(thumb)
    if existing is not None and not existing.pending_request:
        raise ctx.fail(
            f"Cannot import certificate. A certificate with the thumbprint {thumb} already exists.",
            exception="System.ArgumentException",
            target=thumb,
        )
    if not ctx.should_process(f"Import certificate with thumbprint {thumb}."):
        return []
    pending = _pending_for(ctx, server, cert) if key is None else None
    exportable = bool(params.get("PrivateKeyExportable"))
    if pending is not None:  # completes the request: its key (made exportable or not) is kept
        server.certificates.remove(pending)
        key, exportable = certstore.key_of(ctx.org, pending), pending.exportable
    friendly = params.get("FriendlyName") or (pending.friendly_name if pending else pfx_name)
    entry = add_certificate(ctx.org, server, (cert, key), 0, exportable, friendly, ctx.now)
    for ca in extra:
        der = pki.der_b64(ca)
        if der not in server.ca_store:
            server.ca_store.append(der)
    return [certificate_object(ctx, server, entry)]


def _pending_for(ctx: Context, server: Server, cert: Any) -> CertEntry | None:
    public = cert.public_key().public_numbers()
    for entry in server.certificates:
        if entry.pending_request and entry.key_sealed:
            key = certstore.key_of(ctx.org, entry)
            if key is not None and key.public_key().public_numbers() == public:
                return entry
    return None


def export_exchange_certificate(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Export-ExchangeCertificate: a certificate (F5: only exportable keys) as PKCS#12 with its
    key and chain when -Password is given, else the certificate alone; a pending request as its
    PKCS#10 request; Base64 text, or with -BinaryEncoded an object whose FileData is the DER
    (Microsoft's examples: $txtcert is text, $bincert.FileData bytes)."""
    server = _server_of(ctx, params)
    entry = find(ctx, server, params)
    binary = bool(params.get("BinaryEncoded"))
    if not ctx.should_process(f"Export certificate with thumbprint {entry.thumbprint}."):
        return []
    if entry.pending_request:  # Microsoft: "the command creates a PKCS #10 file"
        request = x509.load_pem_x509_csr((entry.request_pem or "").encode()).public_bytes(_DER)
        if binary:
            return [ExObject([T.BINARY_FILE_DATA, "System.Object"], {"FileData": request})]
        return [certfiles.request_text(request)]
    if entry.key_sealed is not None and not entry.exportable:
        raise ctx.fail(
            f"The private key of the certificate with thumbprint {entry.thumbprint} can't be "
            "exported because it wasn't marked as exportable (PrivateKeyExportable is False).",
            exception="System.Security.Cryptography.CryptographicException",
            target=entry.thumbprint,
        )
    cert = certstore.cert_of(entry)
    if entry.key_sealed is None or not params.get("Password"):
        data = cert.public_bytes(_DER)  # Microsoft: only -Password puts the key and chain in
    else:
        chain = [pki.load(d) for d in server.ca_store]
        key = certstore.key_of(ctx.org, entry)
        assert key is not None  # entry.key_sealed is set on this branch
        data = pki.pfx(cert, key, chain, params["Password"], entry.friendly_name)
    if not binary:
        return [certfiles.armored(data, "CERTIFICATE")]
    return [ExObject([T.BINARY_FILE_DATA, "System.Object"], {"FileData": data})]


def remove_exchange_certificate(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Remove-ExchangeCertificate: F21 before the question; after it, the internal transport
    certificate is refused while transport runs (a server's capture shows the question first)."""
    server = _server_of(ctx, params)
    entry = find(ctx, server, params)
    tagged = [
        c.name
        for c in _send_connectors(ctx, server)
        if c.tls_certificate_name and certstore.names_tls(c.tls_certificate_name, entry)
    ]
    if tagged:  # F21 (recent Exchange 2016/2019 builds)
        raise ctx.fail(
            RPC_ERROR.format(server=server.name, message=TAGGED.format(names=", ".join(tagged))),
            exception=INVALID_OPERATION,
            target=entry.thumbprint,
        )
    confirmation = REMOVE_CONFIRMATION.format(thumbprint=entry.thumbprint)
    if not ctx.should_process(confirmation, high_impact=True):
        return []
    if (
        entry.thumbprint == server.internal_transport_thumbprint
        and server.services.get(TRANSPORT, STOPPED) != STOPPED
    ):  # the capture: InvalidOperationException in category InvalidArgument
        raise ctx.fail(
            RPC_ERROR.format(server=server.name, message=INTERNAL_TRANSPORT),
            exception=INVALID_OPERATION,
            category="InvalidArgument",
            target=entry.thumbprint,
        )
    server.certificates.remove(entry)
    return []


def _send_connectors(ctx: Context, server: Server) -> list[Any]:
    """The send connectors a server reads (an Edge: those EdgeSync replicated to it)."""
    if server.role == "Edge":
        return list(server.replica.connectors) if server.replica else []
    return list(ctx.org.send_connectors)


def new_exchange_certificate(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """New-ExchangeCertificate: a pending request (-GenerateRequest: its text is the output, or
    with -BinaryEncoded an object whose FileData is its DER) or a self-signed certificate; a
    certificate piped in from Get-ExchangeCertificate (-Instance) is renewed: its subject, names
    and key size."""
    server = _server_of(ctx, params)
    if params.get("BinaryEncoded") and not params.get("GenerateRequest"):
        raise ctx.fail(  # Microsoft: "available only when you use the GenerateRequest switch"
            "The BinaryEncoded switch can be used only with the GenerateRequest switch.",
            exception="System.ArgumentException",
            category="InvalidArgument",
        )
    certvalues.check_friendly_name(ctx, params)
    certvalues.check_domains(ctx, params)
    renewal = renewal_of(ctx, params.get("Instance"))
    subject_text = params.get("SubjectName")
    if subject_text:
        subject = subject_name(ctx, subject_text)
    else:
        subject = renewal.subject if renewal else pki.parse_name(f"CN={server.name}")
    domains = san_names(ctx, server, params, subject, renewal)
    size = params.get("KeySize")
    if size is None:
        size = renewal.key_size if renewal else 2048
    if size not in (1024, 2048, 4096):
        raise ctx.fail(
            f"The key size {size} isn't supported. Use 1024, 2048 or 4096.",
            exception="System.ArgumentException",
            category="InvalidArgument",
        )
    services = certstore.services_value(params.get("Services") or default_services(server, params))
    if not params.get("GenerateRequest"):
        certvalues.check_services(ctx, server, services)
    what = "certificate request" if params.get("GenerateRequest") else "self-signed certificate"
    if not ctx.should_process(f'Create a {what} with subject "{windows_name(subject)}".'):
        return []
    key = pki.new_key(size)
    start = ctx.now - dt.timedelta(minutes=5)
    exportable = bool(params.get("PrivateKeyExportable"))
    if params.get("GenerateRequest"):
        request = pki.csr(subject, domains, key)
        placeholder, _ = pki.issue(subject, domains, start, start + dt.timedelta(days=365), key=key)
        entry = add_certificate(
            ctx.org,
            server,
            (placeholder, key),
            0,
            exportable,
            params.get("FriendlyName") or DEFAULT_FRIENDLY_NAME,
            ctx.now,
        )
        entry.pending_request = True
        entry.request_subject = windows_name(subject)
        entry.request_domains = list(domains)
        entry.request_pem = request.public_bytes(serialization.Encoding.PEM).decode()
        der = request.public_bytes(_DER)
        if params.get("BinaryEncoded"):  # Microsoft's docs read $request.FileData
            return [ExObject([T.BINARY_FILE_DATA, "System.Object"], {"FileData": der})]
        return [certfiles.request_text(der)]
    pair = pki.issue(subject, domains, start, start + dt.timedelta(days=5 * 365), key=key)
    entry = add_certificate(
        ctx.org,
        server,
        pair,
        services,
        exportable,
        params.get("FriendlyName") or DEFAULT_FRIENDLY_NAME,
        ctx.now,
    )
    if entry.services & certstore.SMTP:
        _set_default(ctx, server, entry, bool(params.get("Force")))
    return [certificate_object(ctx, server, entry)]


def subject_name(ctx: Context, text: str) -> x509.Name:
    """-SubjectName, an X500DistinguishedName: text .NET can't read is PowerShell's binding
    error, with Windows' message for an invalid X.500 string (CRYPT_E_INVALID_X500_STRING)."""
    try:
        return pki.parse_name(text)
    except Exception as exc:
        raise binding_error(
            ctx.cmdlet,
            f"Cannot bind parameter 'SubjectName'. Cannot convert value \"{text}\" to type "
            f'"{X500_NAME}". Error: "The string contains an invalid X500 name attribute key, '
            'oid, value or delimiter."',
            "CannotConvertArgumentNoMessage",
        ) from exc


SERVICES = ("None", "IMAP", "POP", "UM", "IIS", "SMTP", "Federation", "UMCallRouter")
DC = DOMAIN_CONTROLLER  # Microsoft: not supported on an Edge (all six pages)


def _services(mandatory: bool = False, sets: tuple[str, ...] = ()) -> Param:
    return Param(
        "Services",
        "strs",
        mandatory=mandatory,
        sets=sets,
        values=SERVICES,
        net_type=T.ALLOWED_SERVICES,
    )


def _id(thumbprint_mandatory: bool, server_sets: tuple[str, ...] = ("Thumbprint",)) -> list[Param]:
    """Thumbprint and Identity share position 1 in their own sets; -Server only with Thumbprint."""
    return [
        Param(
            "Thumbprint",
            position=0,
            mandatory=thumbprint_mandatory,
            pipeline=True,
            sets=("Thumbprint",),
        ),
        Param("Identity", position=0, sets=("Identity",)),
        Param("Server", sets=server_sets),
        DC,
    ]


CMDLETS = [
    Cmdlet(
        "Get-ExchangeCertificate",
        get_exchange_certificate,
        [
            *_id(False, ("Instance", "Thumbprint")),
            Param("DomainName", "strs"),
            Param(
                "Instance",
                "any",
                pipeline=True,
                whole=True,
                sets=("Instance",),
                unsimulated="Microsoft documents it as deprecated and no longer used",
            ),
        ],
        default_set="Thumbprint",
    ),
    Cmdlet(
        "Enable-ExchangeCertificate",
        enable_exchange_certificate,
        [
            *_id(True),
            _services(mandatory=True),
            Param("Force", "switch"),
            Param(
                "DoNotRequireSsl",
                "switch",
                unsimulated="the lab does not model IIS's SSL settings",
            ),
            Param(
                "NetworkServiceAllowed",
                "switch",
                unsimulated="the lab does not model private key permissions",
            ),
        ],
        default_set="Thumbprint",
    ),
    Cmdlet(
        "Import-ExchangeCertificate",
        import_exchange_certificate,
        [
            Param("FileData", "bytes", mandatory=True, sets=("FileData",)),
            Param("Password", "secure"),
            Param("PrivateKeyExportable", "bool"),
            Param("FriendlyName"),
            Param("Server"),
            DC,
        ],
    ),
    Cmdlet(
        "Export-ExchangeCertificate",
        export_exchange_certificate,
        [*_id(True), Param("BinaryEncoded", "switch"), Param("Password", "secure")],
        default_set="Thumbprint",
    ),
    Cmdlet(
        "Remove-ExchangeCertificate",
        remove_exchange_certificate,
        _id(True),
        default_set="Thumbprint",
    ),
    Cmdlet(
        "New-ExchangeCertificate",
        new_exchange_certificate,
        [
            Param("GenerateRequest", "switch", sets=("Request",)),
            Param("BinaryEncoded", "switch", sets=("Request",)),
            _services(sets=("Certificate",)),
            Param("SubjectName"),
            Param("DomainName", "strs"),
            Param("KeySize", "int"),
            Param("PrivateKeyExportable", "bool"),
            Param("FriendlyName"),
            Param("Force", "switch"),
            Param("Server"),
            DC,
            Param("IncludeServerFQDN", "switch"),
            Param("IncludeServerNetBIOSName", "switch"),
            Param("IncludeAcceptedDomains", "switch"),
            Param("IncludeAutoDiscover", "switch"),
            Param("Instance", "any", pipeline=True, whole=True),
            Param(
                "SubjectKeyIdentifier",
                unsimulated="the lab derives the key identifier from the public key",
            ),
        ],
        default_set="Certificate",
    ),
]
