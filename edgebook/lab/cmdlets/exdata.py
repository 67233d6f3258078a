"""Exchange's data objects nested in what the cmdlets return, shaped as Exchange serialises them:
ADObjectId, SmtpX509Identifier, AddressSpace, SmartHost, IPBinding, Fqdn, receive domain
capabilities (captures of Exchange 2016/2019, docs/serialization.md)."""

from __future__ import annotations

import functools
import ipaddress
import uuid
from typing import Any

from edgebook.certs import CertificateError, parse_tls_certificate_name
from edgebook.exchange import wire_types as T
from edgebook.lab.winrm.objects import ExList, ExObject, Int64, exchange_object

ADMIN_GROUP = "CN=Exchange Administrative Group (FYDIBOHF23SPDLT),CN=Administrative Groups"
_NIL_GUID = "00000000-0000-0000-0000-000000000000"


def _dc(domain: str) -> str:
    return ",".join(f"DC={part}" for part in domain.split("."))


def ad_object_id(name: str, dn: str, domain: str, guid: str | None = None) -> ExObject:
    """An ADObjectId: ToString the object's name (a server's name, a connector's name)."""
    rdn, _, parent = dn.partition(",")
    return exchange_object(
        [T.AD_OBJECT_ID, "Microsoft.Exchange.Data.ObjectId", "System.Object"],
        {
            "OrgHierarchyToIgnore": None,
            "IsDeleted": False,
            "Rdn": rdn,
            "Parent": parent.partition(",")[0].removeprefix("CN="),
            "Depth": dn.count(",") + 1,
            "DistinguishedName": dn,
            "IsRelativeDn": False,
            "DomainId": domain,
            "PartitionGuid": uuid.UUID(_NIL_GUID),
            "PartitionFQDN": domain,
            "ObjectGuid": uuid.UUID(guid or _NIL_GUID),
            "Name": name,
        },
        to_string=name,
    )


@functools.lru_cache(maxsize=1024)
def server_id(server: str, domain: str, org: str = "First Organization") -> ExObject:
    """The ADObjectId of an Exchange server (ToString its name). One object per server, shared
    (nothing changes an output object): every connector lists its source servers, so each
    Edge's Get-SendConnector would otherwise build an ADObjectId for every Edge."""
    dn = (
        f"CN={server},CN=Servers,{ADMIN_GROUP},CN={org},CN=Microsoft Exchange,CN=Services,"
        f"CN=Configuration,{_dc(domain)}"
    )
    return ad_object_id(server, dn, domain)


def server_ids(servers: list[str], domain: str) -> ExList:
    """An ADMultiValuedProperty of server ADObjectIds (SourceTransportServers)."""
    return ExList(T.AD_OBJECT_ID_MVP, [server_id(s, domain) for s in servers])


def send_connector_id(name: str, domain: str, guid: str) -> ExObject:
    """The Identity of a send connector (ToString its name)."""
    dn = (
        f"CN={name},CN=Connections,CN=Exchange Routing Group (DWBGZMFD01QNBJR),"
        f"CN=Routing Groups,{ADMIN_GROUP},CN=First Organization,CN=Microsoft Exchange,"
        f"CN=Services,CN=Configuration,{_dc(domain)}"
    )
    return ad_object_id(name, dn, domain, guid or None)


def receive_connector_id(server: str, name: str, domain: str, guid: str) -> ExObject:
    """The Identity of a receive connector (ToString "SERVER\\Name")."""
    dn = (
        f"CN={name},CN=SMTP Receive Connectors,CN=Protocols,CN={server},CN=Servers,"
        f"{ADMIN_GROUP},CN=First Organization,CN=Microsoft Exchange,CN=Services,"
        f"CN=Configuration,{_dc(domain)}"
    )
    found = ad_object_id(name, dn, domain, guid or None)
    found.to_string = f"{server}\\{name}"
    return found


def smtp_x509_identifier(name: str | None) -> ExObject | None:
    """An SmtpX509Identifier (ToString "<I>issuer<S>subject"); None when no name is set."""
    if not name:
        return None
    try:
        issuer, subject = parse_tls_certificate_name(name)
    except CertificateError:
        issuer, subject = "", ""
    common = next(
        (p.strip()[3:] for p in subject.split(",") if p.strip().upper().startswith("CN=")), ""
    )
    return exchange_object(
        [T.SMTP_X509_IDENTIFIER, "System.Object"],
        {"CertificateSubject": subject, "CertificateIssuer": issuer, "SubjectCommonName": common},
        to_string=name,
    )


def ip_address(text: str) -> ExObject:
    """A System.Net.IPAddress (IPAddressToString in <MS>)."""
    address = ipaddress.ip_address(text)
    props: dict[str, Any] = {}
    if address.version == 4:
        props["Address"] = Int64(int.from_bytes(address.packed, "little"))
        props["AddressFamily"] = "InterNetwork"
    else:
        props["AddressFamily"] = "InterNetworkV6"
        props["ScopeId"] = 0
    props |= {
        "IsIPv6Multicast": address.version == 6 and address.is_multicast,
        "IsIPv6LinkLocal": address.version == 6 and address.is_link_local,
        "IsIPv6SiteLocal": address.version == 6 and address.is_site_local,
        "IsIPv6Teredo": address.version == 6 and address.teredo is not None,
        "IsIPv4MappedToIPv6": address.version == 6 and address.ipv4_mapped is not None,
        "IPAddressToString": str(address),
    }
    return ExObject(
        ["System.Net.IPAddress", "System.Object"],
        props,
        to_string=str(address),
        notes=("IPAddressToString",),
    )


def address_space(text: str) -> ExObject:
    """An AddressSpace ("SMTP:*.contoso.com;1"; ToString the same)."""
    kind, _, rest = text.partition(":") if ":" in text else ("SMTP", "", text)
    domain, _, cost = rest.partition(";")
    domain = domain.strip()
    return exchange_object(
        [T.ADDRESS_SPACE, "System.Object"],
        {
            "Address": domain,
            "Type": kind,
            "Cost": int(cost or 1),
            "IncludeSubDomains": domain.startswith("*"),
            "Domain": domain,
            "IsSmtpType": kind.casefold() == "smtp",
            "IsX400Type": kind.casefold() == "x400",
            "X400Address": None,
        },
        to_string=f"{kind}:{domain};{int(cost or 1)}",
    )


def address_spaces(items: list[str]) -> ExList:
    """The AddressSpaces MultiValuedProperty."""
    return ExList(T.mvp(T.ADDRESS_SPACE), [address_space(a) for a in items])


def smart_host(text: str) -> ExObject:
    """A SmartHost (a domain, or an IP address in brackets)."""
    bare = text.strip("[]")
    try:
        ipaddress.ip_address(bare)
        is_ip = True
    except ValueError:
        is_ip = False
    return exchange_object(
        [T.SMART_HOST, "System.Object"],
        {
            "Address": ip_address(bare if is_ip else "0.0.0.0"),
            "IsIPAddress": is_ip,
            "Domain": None if is_ip else text,
        },
        to_string=text,
    )


def smart_hosts(items: list[str]) -> ExList:
    """The SmartHosts MultiValuedProperty."""
    return ExList(T.mvp(T.SMART_HOST), [smart_host(h) for h in items])


def ip_binding(text: str) -> ExObject:
    """An IPBinding ("0.0.0.0:25", "[::]:25")."""
    host, _, port = text.rpartition(":")
    address = ip_address(host.strip("[]"))
    return exchange_object(
        [T.IP_BINDING, "System.Net.IPEndPoint", "System.Net.EndPoint", "System.Object"],
        {"Port": int(port), "AddressFamily": address["AddressFamily"], "Address": address},
        to_string=text,
    )


def ip_bindings(items: list[str]) -> ExList:
    """The Bindings MultiValuedProperty of a receive connector."""
    return ExList(T.mvp(T.IP_BINDING), [ip_binding(b) for b in items])


def fqdn(name: str | None) -> ExObject | None:
    """An Fqdn (ToString the name); None when not set."""
    if not name:
        return None
    return exchange_object(
        [T.FQDN, "Microsoft.Exchange.Data.SmtpDomain", "System.Object"],
        {"Domain": name},
        to_string=name,
    )


def domain_capabilities(items: list[str]) -> ExList:
    """TlsDomainCapabilities: SmtpReceiveDomainCapabilities ("domain:Capability")."""
    found = []
    for item in items:
        domain, _, capabilities = item.partition(":")
        found.append(
            exchange_object(
                [T.RECEIVE_DOMAIN_CAPABILITIES, "System.Object"],
                {"Domain": domain, "Capabilities": capabilities, "SmtpX509Identifier": None},
                to_string=item,
            )
        )
    return ExList(T.mvp(T.RECEIVE_DOMAIN_CAPABILITIES), found)
