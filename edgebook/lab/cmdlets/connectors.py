"""Get/Set-SendConnector and Get/Set-ReceiveConnector."""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Callable
from typing import Any

from edgebook.certs import parse_tls_certificate_name
from edgebook.errors import EdgebookError
from edgebook.exchange import wire_types as T
from edgebook.lab.cmdlets import exdata
from edgebook.lab.cmdlets.base import (
    DOMAIN_CONTROLLER,
    Cmdlet,
    CmdletError,
    Context,
    Param,
    binding_error,
)
from edgebook.lab.cmdlets.common import enum, not_found, not_on_subscribed_edge, target_server
from edgebook.lab.org import certstore
from edgebook.lab.org.model import ReceiveConnector, SendConnector, Server
from edgebook.lab.winrm.objects import ExEnum, ExObject, exchange_object

TLS_AUTH_LEVELS = ["EncryptionOnly", "CertificateValidation", "DomainValidation"]
SEND_AUTH_MECHANISMS = (
    "Microsoft.Exchange.Data.Directory.SystemConfiguration.SmtpSendConnectorConfig+AuthMechanisms"
)
SEND_AUTH_VALUES = {
    "None": 0,
    "BasicAuth": 2,
    "BasicAuthRequireTLS": 4,
    "ExchangeServer": 8,
    "ExternalAuthoritative": 16,
}
RECEIVE_AUTH = (
    "None",
    "Tls",
    "Integrated",
    "BasicAuth",
    "BasicAuthRequireTLS",
    "ExchangeServer",
    "ExternalAuthoritative",
)
PERMISSION_GROUPS = (
    "None",
    "AnonymousUsers",
    "ExchangeUsers",
    "ExchangeServers",
    "ExchangeLegacyServers",
    "Partners",
    "Custom",
)
# Lab wording for Set-SendConnector's documented dependencies (Exchange's texts are not public).
TLS_LEVEL_NEEDS_TLS = (
    "TlsAuthLevel can't be set on send connector '{name}' while RequireTLS is $false or "
    "IgnoreSTARTTLS is $true. Set -RequireTLS $true (and -IgnoreSTARTTLS $false) with it."
)
DOMAIN_VALIDATION_NEEDS_DOMAIN = (
    "TlsAuthLevel DomainValidation on send connector '{name}' needs TlsDomain: set -TlsDomain "
    "to the domain the receiving server's certificate must match."
)
REQUIRE_TLS_IGNORES_STARTTLS = (
    "IgnoreSTARTTLS must be $false on send connector '{name}' while RequireTLS is $true."
)
DOMAIN_SECURE_NEEDS_DNS_AND_TLS = (
    "DomainSecureEnabled can't be $true on send connector '{name}' while DNSRoutingEnabled is "
    "$false or IgnoreSTARTTLS is $true: mutual TLS needs DNS routing and STARTTLS."
)
PORT_RANGE = "The Port value {port} is out of range: use an integer from 0 through 65535."
ONE_AUTH_MECHANISM = (
    "The SmartHostAuthMechanism values are mutually exclusive: '{value}' names more than one."
)
BASIC_AUTH_NEEDS_CREDENTIAL = (
    "SmartHostAuthMechanism {value} needs the AuthenticationCredential parameter, which the "
    "edgebook lab does not simulate (it keeps no smart host credentials)."
)
SMART_HOSTS_AND_DNS = (
    "Send connector '{name}': SmartHosts must be set when DNSRoutingEnabled is $false, and "
    "must be empty when DNSRoutingEnabled is $true. Set both in the same command."
)
RECEIVE_AUTH_RULE = "AuthMechanism on receive connector '{name}' isn't valid: {why}."
# SmtpReceiveCapabilities, the flags a TlsDomainCapabilities entry names ("domain:Capability").
RECEIVE_CAPABILITIES = {
    "None": 0,
    "AcceptOorgHeader": 1,
    "AcceptOorgProtocol": 2,
    "AcceptProxyProtocol": 4,
    "AcceptProxyFromProtocol": 8,
    "AcceptProxyToProtocol": 16,
    "AcceptXAttrProtocol": 32,
    "AcceptOrgHeaders": 64,
    "AcceptXSysProbeProtocol": 128,
    "AcceptCrossForestMail": 256,
    "AcceptCloudServicesMail": 512,
    "AllowSubmit": 1024,
    "AcceptXOriginalFromProtocol": 2048,
    "AllowConsumerMail": 4096,
}
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*", re.IGNORECASE)
# The .NET types PowerShell names when a value does not convert (the reasons are the lab's words:
# Exchange's own texts are not public).
FQDN_TYPE = "Microsoft.Exchange.Data.Fqdn"
DOMAIN_TYPE = "Microsoft.Exchange.Data.SmtpDomainWithSubdomains"
MVP_TYPE = "Microsoft.Exchange.Data.MultiValuedProperty`1[Microsoft.Exchange.Data.{item}]"
_AD = [
    "Microsoft.Exchange.Data.Directory.SystemConfiguration.ADConfigurationObject",
    "Microsoft.Exchange.Data.Directory.ADObject",
    "Microsoft.Exchange.Data.Directory.ADRawEntry",
    "Microsoft.Exchange.Data.ConfigurableObject",
    "System.Object",
]
SEND_CONNECTOR_TYPES = [
    T.SEND_CONNECTOR,
    "Microsoft.Exchange.Data.Directory.SystemConfiguration.MailGateway",
    "Microsoft.Exchange.Data.Directory.SystemConfiguration.SendConnector",
    "Microsoft.Exchange.Data.Directory.SystemConfiguration.ADLegacyVersionableObject",
    *_AD,
]
RECEIVE_CONNECTOR_TYPES = [T.RECEIVE_CONNECTOR, *_AD]


def tls_identifier(name: str | None) -> ExObject | None:
    """An SmtpX509Identifier (ToString "<I>issuer<S>subject")."""
    return exdata.smtp_x509_identifier(name)


def _guid(text: str) -> uuid.UUID | None:
    """A Guid property (<G>); None when the lab has none."""
    return uuid.UUID(text) if text else None


def send_connector_object(connector: SendConnector, domain: str) -> ExObject:
    """The SmtpSendConnectorConfig object of a connector (nested objects as Exchange sends them:
    AddressSpace, SmartHost, ADObjectId, SmtpX509Identifier, Fqdn; docs/serialization.md)."""
    props: dict[str, Any] = {
        "DNSRoutingEnabled": connector.dns_routing_enabled,
        "TlsDomain": connector.tls_domain,
        "TlsAuthLevel": enum(T.TLS_AUTH_LEVEL, TLS_AUTH_LEVELS, connector.tls_auth_level)
        if connector.tls_auth_level
        else None,
        "SmartHosts": exdata.smart_hosts(connector.smart_hosts),
        "Port": connector.port,
        "CloudServicesMailEnabled": connector.cloud_services_mail_enabled,
        "Fqdn": exdata.fqdn(connector.fqdn),
        "TlsCertificateName": tls_identifier(connector.tls_certificate_name),
        "RequireTLS": connector.require_tls,
        "Enabled": connector.enabled,
        "DomainSecureEnabled": connector.domain_secure_enabled,
        "AddressSpaces": exdata.address_spaces(connector.address_spaces),
        "SourceTransportServers": exdata.server_ids(connector.source_transport_servers, domain),
        "Name": connector.name,
        "Identity": exdata.send_connector_id(connector.name, domain, connector.guid),
        "Guid": _guid(connector.guid),
        "WhenChanged": connector.when_changed,
        "IgnoreSTARTTLS": connector.ignore_starttls,
        "SmartHostAuthMechanism": ExEnum(
            SEND_AUTH_MECHANISMS,
            connector.smart_host_auth_mechanism,
            SEND_AUTH_VALUES.get(connector.smart_host_auth_mechanism, 0),
        ),
        "Comment": connector.comment,
    }
    return exchange_object(SEND_CONNECTOR_TYPES, props, to_string=connector.name)


def _visible_send_connectors(ctx: Context) -> list[SendConnector]:
    if ctx.server.role == "Edge":
        return list(ctx.server.replica.connectors) if ctx.server.replica else []
    return list(ctx.org.send_connectors)


def get_send_connector(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Get-SendConnector (on a subscribed Edge: the replicated copies)."""
    connectors = _visible_send_connectors(ctx)
    wanted = params.get("Identity")
    if wanted:
        found = _send_connector(ctx, wanted)
        if found is None:
            raise not_found(ctx, "send connector", wanted)
        connectors = [found]
    return [send_connector_object(c, ctx.org.domain) for c in connectors]


def _apply_mvp(current: list[str], value: Any) -> list[str]:
    if isinstance(value, dict):
        result = list(current)
        for item in value.get("add", []):
            if item.casefold() not in (c.casefold() for c in result):
                result.append(item)
        removed = {item.casefold() for item in value.get("remove", [])}
        return [c for c in result if c.casefold() not in removed]
    return list(value or [])


def _check_tls_name(ctx: Context, server: Server, name: str) -> None:
    try:
        parse_tls_certificate_name(name)
    except EdgebookError as exc:
        raise ctx.fail(
            f"The value '{name}' isn't a valid TlsCertificateName. Use the format "
            "'<I>X.500Issuer<S>X.500Subject'.",
            exception="System.ArgumentException",
            category="InvalidArgument",
        ) from exc
    if not any(certstore.names_tls(name, c) for c in server.certificates):  # F9
        raise ctx.fail(
            f"The certificate specified by TlsCertificateName '{name}' couldn't be found on "
            f"server {server.name}. The certificate must be installed on the server where you "
            f"run {ctx.cmdlet.name}.",
            exception="Microsoft.Exchange.Configuration.Tasks.TaskException",
            category="ObjectNotFound",
        )


class _Invalid(ValueError):
    """A value that does not convert to its Exchange type (why, in the lab's words)."""


def _is_domain(text: str, wildcard: bool = False) -> bool:
    """An SMTP domain: dotted labels of letters, digits and hyphens ("*", "*.<domain>" too when
    wildcards are allowed, as SmtpDomainWithSubdomains takes them)."""
    if wildcard and text == "*":
        return True
    if wildcard and text.startswith("*."):
        text = text[2:]
    return len(text) <= 255 and _DOMAIN.fullmatch(text) is not None


def _fqdn(text: str) -> str:
    if not _is_domain(text):
        raise _Invalid("an FQDN is made of labels of letters, digits and hyphens joined by dots")
    return text


def _domain(text: str) -> str:
    if not _is_domain(text, wildcard=True):
        raise _Invalid("use a domain (contoso.com), *.<domain> or *")
    return text


def _smart_host(text: str) -> str:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        if text != "--" and not _is_domain(text):  # "--": EdgeSync's own inbound connector
            raise _Invalid("a smart host is an FQDN or an IP address") from None
    return text


def _address_space(text: str) -> str:
    """[Type:]AddressSpace[;Cost]: SMTP spaces are domains (* and *.<domain> allowed), the cost
    a whole number from 1 through 100 (Microsoft's Set-SendConnector page)."""
    kind, sep, rest = text.partition(":")
    kind, rest = (kind, rest) if sep else ("SMTP", text)
    space, _, cost = rest.rpartition(";") if ";" in rest else (rest, "", "1")
    if kind.casefold() == "smtp" and space != "--" and not _is_domain(space, wildcard=True):
        raise _Invalid(f"'{space}' isn't an SMTP address space (contoso.com, *.contoso.com, *)")
    if not cost.strip().isdigit() or not 1 <= int(cost) <= 100:
        raise _Invalid("the address space cost must be a whole number from 1 through 100")
    if ";" in space:
        raise _Invalid("the edgebook lab doesn't simulate address spaces that contain ';'")
    return text


def _binding(text: str) -> str:
    """An IPBinding "Address:Port" ([::]:25 for IPv6); an empty address is 0.0.0.0."""
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        raise _Invalid("use Address:Port, for example 0.0.0.0:25 or [::]:25")
    try:
        address = ipaddress.ip_address(host.strip("[]") or "0.0.0.0")
        number = int(port)
    except ValueError:
        raise _Invalid("the address must be an IPv4 or IPv6 address, the port a number") from None
    if not 0 <= number <= 65535:
        raise _Invalid(f"the port {number} is out of range: use 0 through 65535")
    return f"[{address}]:{number}" if address.version == 6 else f"{address}:{number}"


def _capability_domain(text: str) -> bool:
    """The domain of a TlsDomainCapabilities entry: an SMTP domain (NO-TLS is one), *.<domain>,
    or a certificate's <I>issuer<S>subject."""
    if not text.startswith("<"):
        return _is_domain(text, wildcard=True)
    try:
        parse_tls_certificate_name(text)
    except EdgebookError:
        return False
    return True


def _capabilities(text: str) -> str:
    """An SmtpReceiveDomainCapabilities "Domain:Capability[,Capability]" (capabilities by name,
    case-insensitive, or number), written back as .NET writes the flags, in the enum's order."""
    domain, sep, names = (part.strip() for part in text.rpartition(":"))
    if not sep or not _capability_domain(domain):
        raise _Invalid(
            "use Domain:Capability, for example mail.protection.outlook.com:AcceptCloudServicesMail"
        )
    by_name = {k.casefold(): v for k, v in RECEIVE_CAPABILITIES.items()}
    value = 0
    for part in (p.strip() for p in names.split(",")):
        if part.casefold() in by_name:
            value |= by_name[part.casefold()]
        elif part.isdigit() and int(part) <= sum(RECEIVE_CAPABILITIES.values()):
            value |= int(part)
        else:
            raise _Invalid(
                f"'{part}' isn't a capability; valid values: {', '.join(RECEIVE_CAPABILITIES)}"
            )
    flags = [k for k, v in RECEIVE_CAPABILITIES.items() if v & value] or ["None"]
    return f"{domain}:{', '.join(flags)}"


Converter = tuple[str, Callable[[str], str]]


def _convert(ctx: Context, params: dict[str, Any], converters: dict[str, Converter]) -> None:
    """Convert the values of these parameters to their Exchange types as PowerShell binds them
    (a ParameterBindingException for one that doesn't convert, before anything else happens);
    params keep the converted values (a list, or @{Add=..;Remove=..})."""

    def one(name: str, net_type: str, convert: Callable[[str], str], item: str) -> str:
        try:
            return convert(item)
        except _Invalid as exc:
            raise binding_error(
                ctx.cmdlet,
                f"Cannot bind parameter '{name}'. Cannot convert value \"{item}\" to type "
                f'"{net_type}". Error: "{exc}"',
                "CannotConvertArgumentNoMessage",
            ) from None

    for name, (net_type, convert) in converters.items():
        value = params.get(name)
        if value is None or value == "":
            continue  # $null clears the property
        if isinstance(value, dict):
            params[name] = {
                k: [one(name, net_type, convert, i) for i in v] for k, v in value.items()
            }
        elif isinstance(value, list):
            params[name] = [one(name, net_type, convert, i) for i in value]
        else:
            params[name] = one(name, net_type, convert, value)


SEND_VALUES: dict[str, Converter] = {
    "Fqdn": (FQDN_TYPE, _fqdn),
    "TlsDomain": (DOMAIN_TYPE, _domain),
    "SmartHosts": (MVP_TYPE.format(item="SmartHost"), _smart_host),
    "AddressSpaces": (MVP_TYPE.format(item="AddressSpace"), _address_space),
}
RECEIVE_VALUES: dict[str, Converter] = {
    "Fqdn": (FQDN_TYPE, _fqdn),
    "Bindings": (MVP_TYPE.format(item="IPBinding"), _binding),
    "TlsDomainCapabilities": (
        MVP_TYPE.format(item="SmtpReceiveDomainCapabilities"),
        _capabilities,
    ),
}


def _names(connector: SendConnector | ReceiveConnector, identity: str) -> bool:
    """Whether an -Identity value names a connector: its name or its GUID (two of Microsoft's
    Identity forms; the lab has no distinguished names)."""
    wanted = identity.casefold()
    guid = connector.guid.casefold()
    return wanted == connector.name.casefold() or (bool(guid) and wanted.strip("{}") == guid)


def _send_connector(ctx: Context, identity: str) -> SendConnector | None:
    """The send connector an -Identity names."""
    return next((c for c in _visible_send_connectors(ctx) if _names(c, identity)), None)


def set_send_connector(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Set-SendConnector (Mailbox side once Edges are subscribed; F9 for TlsCertificateName)."""
    _convert(ctx, params, SEND_VALUES)
    not_on_subscribed_edge(ctx)
    identity = params["Identity"]
    connector = _send_connector(ctx, identity) if ctx.server.role == "Mailbox" else None
    if connector is None:
        raise not_found(ctx, "send connector", identity)
    if params.get("TlsCertificateName"):
        _check_tls_name(ctx, ctx.server, params["TlsCertificateName"])
    _check_tls_settings(ctx, connector, params)
    if "SourceTransportServers" in params:
        sources = _apply_mvp(connector.source_transport_servers, params["SourceTransportServers"])
        current = {s.casefold() for s in connector.source_transport_servers}
        for name in (s for s in sources if s.casefold() not in current):
            found = ctx.org.find_server(name)
            unsubscribed = (
                found is not None and found.role == "Edge" and not ctx.org.subscription(found.name)
            )
            if found is None or unsubscribed:  # an Edge is in AD only while subscribed (F10)
                raise not_found(ctx, "server", name)
        params["SourceTransportServers"] = [ctx.org.server(n).name for n in sources]
    if ctx.whatif:
        return []
    for param, attr in (
        ("AddressSpaces", "address_spaces"),
        ("SmartHosts", "smart_hosts"),
        ("SourceTransportServers", "source_transport_servers"),
    ):
        if param in params:
            setattr(connector, attr, _apply_mvp(getattr(connector, attr), params[param]))
    for param, attr in (
        ("TlsCertificateName", "tls_certificate_name"),
        ("TlsDomain", "tls_domain"),
        ("TlsAuthLevel", "tls_auth_level"),
        ("Fqdn", "fqdn"),
        ("RequireTLS", "require_tls"),
        ("CloudServicesMailEnabled", "cloud_services_mail_enabled"),
        ("DomainSecureEnabled", "domain_secure_enabled"),
        ("DNSRoutingEnabled", "dns_routing_enabled"),
        ("Enabled", "enabled"),
        ("Port", "port"),
        ("IgnoreSTARTTLS", "ignore_starttls"),
        ("SmartHostAuthMechanism", "smart_host_auth_mechanism"),
    ):
        if param in params:
            value = params[param]
            setattr(connector, attr, value if value != "" else None)
    connector.when_changed = ctx.now
    return []


def _check_tls_settings(ctx: Context, connector: SendConnector, params: dict[str, Any]) -> None:
    """Microsoft's documented dependencies, on the values the connector would have: TlsAuthLevel
    needs RequireTLS $true and IgnoreSTARTTLS $false; DomainValidation needs TlsDomain;
    RequireTLS $true needs IgnoreSTARTTLS $false; the Port range; one SmartHostAuthMechanism;
    SmartHosts go with DNSRoutingEnabled $false (checked when the call changes either);
    DomainSecureEnabled $true needs DNSRoutingEnabled $true and IgnoreSTARTTLS $false."""

    def after(param: str, attr: str) -> Any:
        return params[param] if param in params else getattr(connector, attr)

    def refuse(message: str) -> CmdletError:
        return ctx.fail(
            message,
            exception="Microsoft.Exchange.Data.DataValidationException",
            category="InvalidArgument",
        )

    require_tls = after("RequireTLS", "require_tls")
    ignore_starttls = after("IgnoreSTARTTLS", "ignore_starttls")
    level = after("TlsAuthLevel", "tls_auth_level")
    if level and (not require_tls or ignore_starttls):
        raise refuse(TLS_LEVEL_NEEDS_TLS.format(name=connector.name))
    if level == "DomainValidation" and not after("TlsDomain", "tls_domain"):
        raise refuse(DOMAIN_VALIDATION_NEEDS_DOMAIN.format(name=connector.name))
    if require_tls and ignore_starttls:
        raise refuse(REQUIRE_TLS_IGNORES_STARTTLS.format(name=connector.name))
    port = params.get("Port")
    if port is not None and not 0 <= port <= 65535:
        raise refuse(PORT_RANGE.format(port=port))
    mechanism = params.get("SmartHostAuthMechanism")
    if mechanism and "," in mechanism:
        raise refuse(ONE_AUTH_MECHANISM.format(value=mechanism))
    if mechanism in ("BasicAuth", "BasicAuthRequireTLS"):
        raise refuse(BASIC_AUTH_NEEDS_CREDENTIAL.format(value=mechanism))
    if "SmartHosts" in params or "DNSRoutingEnabled" in params:
        hosts = (
            _apply_mvp(connector.smart_hosts, params["SmartHosts"])
            if "SmartHosts" in params
            else connector.smart_hosts
        )
        if after("DNSRoutingEnabled", "dns_routing_enabled") == bool(hosts):
            raise refuse(SMART_HOSTS_AND_DNS.format(name=connector.name))
    domain_secure = after("DomainSecureEnabled", "domain_secure_enabled")
    if domain_secure and (ignore_starttls or not after("DNSRoutingEnabled", "dns_routing_enabled")):
        raise refuse(DOMAIN_SECURE_NEEDS_DNS_AND_TLS.format(name=connector.name))


def _flags(value: str, members: tuple[str, ...]) -> str:
    """A flags value in the enum's member order (as .NET prints it: "Tls, ExchangeServer")."""
    given = {v.strip() for v in value.split(",")}
    return ", ".join(m for m in members if m in given)


def _check_receive_auth(ctx: Context, rc: ReceiveConnector, params: dict[str, Any]) -> None:
    """Microsoft's AuthMechanism rules on the values the connector would have: None only by
    itself; BasicAuthRequireTLS needs BasicAuth and Tls; ExternalAuthoritative only with Tls
    and PermissionGroups ExchangeServers; Tls when RequireTLS is $true."""
    if not {"AuthMechanism", "PermissionGroups", "RequireTLS"} & set(params):
        return
    auth = {a.strip() for a in str(params.get("AuthMechanism", rc.auth_mechanism) or "").split(",")}
    groups = {
        g.strip()
        for g in str(params.get("PermissionGroups", rc.permission_groups) or "").split(",")
    }
    require_tls = params.get("RequireTLS", rc.require_tls)
    why = ""
    if "None" in auth and len(auth) > 1:
        why = "the value None can only be used by itself"
    elif "BasicAuthRequireTLS" in auth and not {"BasicAuth", "Tls"} <= auth:
        why = "the value BasicAuthRequireTLS also requires the values BasicAuth and Tls"
    elif "ExternalAuthoritative" in auth and not auth <= {"ExternalAuthoritative", "Tls"}:
        why = "the only other value that can be used with ExternalAuthoritative is Tls"
    elif "ExternalAuthoritative" in auth and groups != {"ExchangeServers"}:
        why = "the value ExternalAuthoritative requires PermissionGroups ExchangeServers"
    elif require_tls and "Tls" not in auth:
        why = "the value Tls is required when RequireTLS is $true"
    if why:
        raise ctx.fail(
            RECEIVE_AUTH_RULE.format(name=rc.name, why=why),
            exception="Microsoft.Exchange.Data.DataValidationException",
            category="InvalidArgument",
        )


def receive_connector_object(server: Server, rc: ReceiveConnector, domain: str) -> ExObject:
    """The ReceiveConnector object (IPBinding, Fqdn, SmtpX509Identifier, domain capabilities
    and ADObjectIds as Exchange sends them; docs/serialization.md)."""
    props: dict[str, Any] = {
        "AuthMechanism": ExEnum(T.AUTH_MECHANISMS, rc.auth_mechanism, 6),
        "Bindings": exdata.ip_bindings(rc.bindings),
        "DomainSecureEnabled": rc.domain_secure_enabled,
        "SuppressXAnonymousTls": rc.suppress_x_anonymous_tls,
        "Fqdn": exdata.fqdn(rc.fqdn),
        "TlsCertificateName": tls_identifier(rc.tls_certificate_name),
        "Enabled": rc.enabled,
        "PermissionGroups": ExEnum(T.PERMISSION_GROUPS, rc.permission_groups, 11),
        "RequireTLS": rc.require_tls,
        "TlsDomainCapabilities": exdata.domain_capabilities(rc.tls_domain_capabilities),
        "Server": exdata.server_id(server.name, domain),
        "Name": rc.name,
        "Identity": exdata.receive_connector_id(server.name, rc.name, domain, rc.guid),
        "Guid": _guid(rc.guid),
    }
    return exchange_object(RECEIVE_CONNECTOR_TYPES, props, to_string=f"{server.name}\\{rc.name}")


def _receive(ctx: Context, server: Server, identity: str) -> ReceiveConnector:
    """The receive connector an -Identity names: Name or Server\\Name, or its GUID."""
    name = identity.split("\\", 1)[-1]
    if "\\" in identity:
        server = target_server(ctx, identity.split("\\", 1)[0])
    found = next((rc for rc in server.receive_connectors if _names(rc, name)), None)
    if found is None:
        raise not_found(ctx, "receive connector", identity)
    return found


def get_receive_connector(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Get-ReceiveConnector (local server, or -Server)."""
    server = target_server(ctx, params.get("Server"))
    if params.get("Identity"):
        identity = params["Identity"]
        if "\\" in identity:
            server = target_server(ctx, identity.split("\\", 1)[0])
        return [receive_connector_object(server, _receive(ctx, server, identity), ctx.org.domain)]
    return [
        receive_connector_object(server, rc, ctx.org.domain) for rc in server.receive_connectors
    ]


def set_receive_connector(ctx: Context, params: dict[str, Any]) -> list[Any]:
    """Set-ReceiveConnector (local; not replicated)."""
    _convert(ctx, params, RECEIVE_VALUES)
    identity = params["Identity"]
    server = ctx.server
    if "\\" in identity:
        server = target_server(ctx, identity.split("\\", 1)[0])
    rc = _receive(ctx, server, identity)
    if params.get("TlsCertificateName"):
        _check_tls_name(ctx, server, params["TlsCertificateName"])
    for param, members in (
        ("AuthMechanism", RECEIVE_AUTH),
        ("PermissionGroups", PERMISSION_GROUPS),
    ):
        if params.get(param):
            params[param] = _flags(params[param], members)
    _check_receive_auth(ctx, rc, params)
    if ctx.whatif:
        return []
    if "TlsDomainCapabilities" in params:
        rc.tls_domain_capabilities = _apply_mvp(
            rc.tls_domain_capabilities, params["TlsDomainCapabilities"]
        )
    if "Bindings" in params:
        rc.bindings = _apply_mvp(rc.bindings, params["Bindings"])
    for param, attr in (
        ("Fqdn", "fqdn"),
        ("TlsCertificateName", "tls_certificate_name"),
        ("RequireTLS", "require_tls"),
        ("AuthMechanism", "auth_mechanism"),
        ("PermissionGroups", "permission_groups"),
        ("Enabled", "enabled"),
        ("DomainSecureEnabled", "domain_secure_enabled"),
        ("SuppressXAnonymousTls", "suppress_x_anonymous_tls"),
    ):
        if param in params:
            value = params[param]
            setattr(rc, attr, value if value != "" else None)
    return []


_MVP_SEND = ("AddressSpaces", "SmartHosts", "SourceTransportServers")
DC = DOMAIN_CONTROLLER  # Microsoft: not supported on an Edge (both Get- pages)
CMDLETS = [
    Cmdlet(
        "Get-SendConnector",
        get_send_connector,
        [Param("Identity", position=0, pipeline=True), DC],
        task="Microsoft.Exchange.Management.SystemConfigurationTasks",
    ),
    Cmdlet(
        "Set-SendConnector",
        set_send_connector,
        [
            Param("Identity", position=0, mandatory=True, pipeline=True),
            *(Param(n, "mvp") for n in _MVP_SEND),
            Param("TlsCertificateName"),
            Param("TlsDomain"),
            Param("TlsAuthLevel", values=tuple(TLS_AUTH_LEVELS), net_type=T.TLS_AUTH_LEVEL),
            Param("Fqdn"),
            Param("RequireTLS", "bool"),
            Param("IgnoreSTARTTLS", "bool"),
            Param("CloudServicesMailEnabled", "bool"),
            Param("DomainSecureEnabled", "bool"),
            Param("DNSRoutingEnabled", "bool"),
            Param("Enabled", "bool"),
            Param("Port", "int"),
            Param(
                "SmartHostAuthMechanism",
                values=tuple(SEND_AUTH_VALUES),
                net_type=SEND_AUTH_MECHANISMS,
            ),
            Param("Force", "switch"),
        ],
    ),
    Cmdlet(
        "Get-ReceiveConnector",
        get_receive_connector,
        [
            Param("Identity", position=0, pipeline=True, sets=("Identity",)),
            Param("Server", pipeline=True, sets=("Server",)),
            DC,
        ],
        default_set="Identity",
    ),
    Cmdlet(
        "Set-ReceiveConnector",
        set_receive_connector,
        [
            Param("Identity", position=0, mandatory=True, pipeline=True),
            Param("TlsDomainCapabilities", "mvp"),
            Param("Bindings", "mvp"),
            Param("Fqdn"),
            Param("TlsCertificateName"),
            Param("RequireTLS", "bool"),
            Param("AuthMechanism", values=RECEIVE_AUTH, net_type=T.AUTH_MECHANISMS),
            Param("PermissionGroups", values=PERMISSION_GROUPS, net_type=T.PERMISSION_GROUPS),
            Param("DomainSecureEnabled", "bool"),
            Param("SuppressXAnonymousTls", "bool"),
            Param("Enabled", "bool"),
        ],
    ),
]
