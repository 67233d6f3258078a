"""Read a parameters file into a validated Inventory (see edgebook.config for the format)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from edgebook.config.model import (
    AUTH_METHODS,
    DEFAULT_TLS_DOMAIN_CAPABILITIES,
    EDGE,
    MAILBOX,
    SCHEMES,
    TLS_CAPABILITIES,
    CertificateSource,
    ChangeSettings,
    CredentialRef,
    EdgeServer,
    Inventory,
    MailboxServer,
    Organisation,
    SocketAddress,
    WinRMEndpoint,
)
from edgebook.config.reader import (
    MISSING,
    Section,
    is_host,
    join,
    load_yaml,
    refuse_literal_secrets,
)
from edgebook.errors import ConfigError
from edgebook.exchange.wire_types import EDGE_SHAPE, MAILBOX_SHAPE

TOP_KEYS = ("lab", "organisation", "edges", "change")
ORGANISATION_KEYS = ("name", "ad_site", "mailbox_servers")
MAILBOX_KEYS = ("name", "fqdn", "winrm", "credential")
EDGE_KEYS = ("name", "fqdn", "winrm", "credential", "smtp", "ldaps")
WINRM_KEYS = (
    "host",
    "port",
    "path",
    "scheme",
    "auth",
    "ca_file",
    "verify_tls",
    "configuration_name",
    "certificate_pem",
    "certificate_key_pem",
    "certificate_key_password",
)
CREDENTIAL_KEYS = ("username", "password")
PROBE_KEYS = ("host", "port")
CHANGE_KEYS = (
    "warning_days",
    "expected_fqdns",
    "hybrid",
    "tls_domain_capabilities",
    "event_days",
    "trust_anchors",
    "certificates",
)
CERTIFICATE_KEYS = ("pfx", "password", "chain")
_SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_CAPABILITIES = re.compile(r"^(?P<domain>[^:\s]+):(?P<capabilities>[A-Za-z, ]+)$")

# Role defaults: (scheme, auth, path, configuration, {scheme: port})
_ROLE_DEFAULTS: dict[str, tuple[str, str, str, str, dict[str, int]]] = {
    MAILBOX: ("http", "kerberos", *MAILBOX_SHAPE, {"http": 80, "https": 443}),
    EDGE: ("https", "ntlm", *EDGE_SHAPE, {"http": 5985, "https": 5986}),
}


def load_inventory(path: str | Path) -> Inventory:
    """Read and validate a parameters file; every problem is a ConfigError naming the key."""
    file = Path(path).expanduser().resolve()
    document = load_yaml(file)
    refuse_literal_secrets(file, document)
    top = Section(file, document, "", TOP_KEYS)
    lab = top.boolean("lab", False)
    organisation_section = top.section("organisation", ORGANISATION_KEYS)
    mailbox_servers = tuple(
        _mailbox(file, item_path, item, lab)
        for item_path, item in organisation_section.items("mailbox_servers", minimum=1)
    )
    organisation = Organisation(
        name=organisation_section.text("name"),
        ad_site=organisation_section.text("ad_site", "Default-First-Site-Name"),
        mailbox_servers=mailbox_servers,
    )
    edges = tuple(
        _edge(file, item_path, item, lab) for item_path, item in top.items("edges", minimum=1)
    )
    _refuse_duplicate_names(file, organisation, edges)
    return Inventory(
        path=file,
        lab=lab,
        organisation=organisation,
        edges=edges,
        change=_change(top.optional_section("change", CHANGE_KEYS)),
    )


def _server_basics(section: Section) -> tuple[str, str]:
    name = section.text("name")
    if not _SERVER_NAME.match(name):
        raise section.error(section.key("name"), name, "a server name (letters, digits, -, _)")
    return name, section.host("fqdn")


def _mailbox(file: Path, path: str, value: Any, lab: bool) -> MailboxServer:
    section = Section(file, value, path, MAILBOX_KEYS)
    name, fqdn = _server_basics(section)
    winrm = _winrm(section, MAILBOX, fqdn, lab)
    return MailboxServer(name, fqdn, winrm, _credential(section, winrm))


def _edge(file: Path, path: str, value: Any, lab: bool) -> EdgeServer:
    section = Section(file, value, path, EDGE_KEYS)
    name, fqdn = _server_basics(section)
    winrm = _winrm(section, EDGE, fqdn, lab)
    return EdgeServer(
        name,
        fqdn,
        winrm,
        _credential(section, winrm),
        smtp=_probe(section, "smtp", fqdn, 25),
        ldaps=_probe(section, "ldaps", fqdn, 50636),
    )


def _winrm(server: Section, role: str, fqdn: str, lab: bool) -> WinRMEndpoint:
    scheme_default, auth_default, path_default, config_default, ports = _ROLE_DEFAULTS[role]
    section = server.optional_section("winrm", WINRM_KEYS) or Section(
        server.file, {}, server.key("winrm"), WINRM_KEYS
    )
    scheme = section.choice("scheme", SCHEMES, scheme_default)
    auth = section.choice("auth", AUTH_METHODS, auth_default)
    endpoint = WinRMEndpoint(
        host=section.host("host", fqdn),
        port=section.integer("port", ports[scheme], 1, 65535),
        path=section.text("path", path_default).strip("/"),
        scheme=scheme,
        auth=auth,
        configuration_name=section.text("configuration_name", config_default),
        ca_file=section.file_path("ca_file"),
        verify_tls=section.boolean("verify_tls", True),
        certificate_pem=section.file_path("certificate_pem"),
        certificate_key_pem=section.file_path("certificate_key_pem"),
        certificate_key_password=section.optional_reference("certificate_key_password"),
    )
    _check_security(section, endpoint, lab)
    return endpoint


def _check_security(section: Section, endpoint: WinRMEndpoint, lab: bool) -> None:
    if endpoint.scheme == "http":
        for key in ("ca_file", "verify_tls"):
            if section.raw(key) is not MISSING:
                raise section.error(
                    section.key(key), section.raw(key), "no TLS setting with scheme: http"
                )
        if endpoint.auth == "certificate":
            raise section.error(
                section.key("auth"), "certificate", "certificate authentication only with https"
            )
        if endpoint.auth == "basic" and not (lab and endpoint.is_loopback):
            raise section.error(
                section.key("auth"),
                "basic",
                "an authentication that protects the password over http (kerberos, ntlm, "
                "negotiate) or scheme: https; Basic over plain http is refused except in a "
                "lab inventory (lab: true) on a loopback address",
            )
    if not endpoint.verify_tls and endpoint.ca_file is not None:
        raise section.error(
            section.key("verify_tls"), False, "true when a ca_file is given (or drop ca_file)"
        )
    certificate_keys = ("certificate_pem", "certificate_key_pem")
    if endpoint.auth == "certificate":
        for key in certificate_keys:
            if section.raw(key) is MISSING:
                raise section.error(section.key(key), MISSING, "a PEM file (auth: certificate)")
    else:
        for key in (*certificate_keys, "certificate_key_password"):
            if section.raw(key) is not MISSING:
                raise section.error(
                    section.key(key), section.raw(key), "this key only with auth: certificate"
                )


def _credential(server: Section, winrm: WinRMEndpoint) -> CredentialRef | None:
    if winrm.auth == "certificate":
        section = server.optional_section("credential", CREDENTIAL_KEYS)
        if section is None:
            return None
    else:
        section = server.section("credential", CREDENTIAL_KEYS)
    return CredentialRef(username=section.text("username"), password=section.reference("password"))


def _probe(server: Section, key: str, fqdn: str, port: int) -> SocketAddress:
    section = server.optional_section(key, PROBE_KEYS)
    if section is None:
        return SocketAddress(fqdn, port)
    return SocketAddress(section.host("host", fqdn), section.integer("port", port, 1, 65535))


def _change(section: Section | None) -> ChangeSettings:
    if section is None:
        return ChangeSettings()
    fqdns: list[str] = []
    for item_path, item in section.items("expected_fqdns"):
        name = item[2:] if isinstance(item, str) and item.startswith("*.") else item
        if not isinstance(name, str) or not is_host(name):
            raise section.error(item_path, item, "a DNS name such as mail.contoso.com")
        fqdns.append(item.lower())
    capabilities = section.text("tls_domain_capabilities", DEFAULT_TLS_DOMAIN_CAPABILITIES)
    match = _CAPABILITIES.match(capabilities)
    names = [part.strip() for part in match["capabilities"].split(",")] if match else []
    if not match or not names or any(name not in TLS_CAPABILITIES for name in names):
        raise section.error(
            section.key("tls_domain_capabilities"),
            capabilities,
            "domain:Capability with Capability one of "
            f"{', '.join(TLS_CAPABILITIES)} (e.g. {DEFAULT_TLS_DOMAIN_CAPABILITIES})",
        )
    return ChangeSettings(
        warning_days=section.integer("warning_days", 30, 1, 3650),
        expected_fqdns=tuple(fqdns),
        hybrid=section.boolean("hybrid", False),
        tls_domain_capabilities=capabilities,
        event_days=section.integer("event_days", 7, 1, 365),
        trust_anchors=section.file_path("trust_anchors"),
        certificates=_certificates(section),
    )


def _certificates(change: Section) -> tuple[tuple[str, CertificateSource], ...]:
    """change.certificates: {EDGE: {pfx: PATH, password: REFERENCE, chain: PATH}}."""
    raw = change.raw("certificates")
    if raw is MISSING:
        return ()
    if not isinstance(raw, dict):
        raise change.error(change.key("certificates"), raw, "a mapping of Edge name to {pfx, ...}")
    sources = []
    for name in raw:
        if not isinstance(name, str) or not _SERVER_NAME.match(name):
            raise change.error(change.key("certificates"), name, "Edge names as keys")
        entry = Section(
            change.file, raw[name], join(change.key("certificates"), name), CERTIFICATE_KEYS
        )
        pfx = entry.file_path("pfx")
        if pfx is None:
            raise entry.error(entry.key("pfx"), MISSING, "the path of the Edge's PFX file")
        sources.append(
            (
                name,
                CertificateSource(
                    pfx, entry.optional_reference("password"), entry.file_path("chain")
                ),
            )
        )
    return tuple(sources)


def _refuse_duplicate_names(
    file: Path, organisation: Organisation, edges: tuple[EdgeServer, ...]
) -> None:
    seen: dict[str, str] = {}
    entries = [
        (join(join("organisation.mailbox_servers", index), "name"), server.name)
        for index, server in enumerate(organisation.mailbox_servers)
    ] + [(join(join("edges", index), "name"), edge.name) for index, edge in enumerate(edges)]
    for path, name in entries:
        first = seen.setdefault(name.lower(), path)
        if first != path:
            raise ConfigError(
                f"{file}: {path}: found {name!r} again (already at {first}); "
                "expected a unique server name"
            )
