"""The steps and settings of phase 04: the hybrid receive connector on the Edge (F17) and the
hybrid send connector on a Mailbox server as KB3212872 and the HCW set them (F16)."""

from __future__ import annotations

from typing import Any

from edgebook.change.step import Call, Check, Step, contains
from edgebook.change.values import Before
from edgebook.facts import CertificateFact, EdgeFacts, OrgFacts, SendConnectorFact
from edgebook.phases import inspect as inspect_phase
from edgebook.rules.usage import EXO_TLS_DOMAIN, is_hybrid_connector

KB3212872 = {  # the HCW's values for an Edge hybrid send connector, besides Fqdn
    "TlsDomain": EXO_TLS_DOMAIN,
    "TlsAuthLevel": "DomainValidation",
    "RequireTLS": True,
    "CloudServicesMailEnabled": True,
}


def hybrid_send_connectors(org: OrgFacts, edge: EdgeFacts) -> list[SendConnectorFact]:
    """The organisation's send connectors to Exchange Online that send from this Edge."""
    return [
        c
        for c in org.send_connectors
        if is_hybrid_connector(c) and any(edge.is_named(s) for s in c.source_transport_servers)
    ]


def capability_present(values: tuple[str, ...], wanted: str) -> bool:
    """Whether TlsDomainCapabilities hold the wanted entry (AcceptOorgProtocol admits the 2013+
    name too)."""
    accepted = {a.casefold() for a in inspect_phase._accepted_capabilities(wanted)}
    return any(value.strip().casefold() in accepted for value in values)


def receive_step(edge: str, identity: str, capabilities: list[str], fqdn: str) -> Step:
    """Set-ReceiveConnector on the Edge: TlsDomainCapabilities and Fqdn (F17), undone to the
    values read before."""
    props = ("Identity", "TlsDomainCapabilities", "Fqdn")
    read = Call("Get-ReceiveConnector", {"Identity": identity}, props)
    return Step(
        id=f"hybrid-receive-{edge.lower()}",
        server=edge,
        does=f"set the hybrid receive connector {identity}: {', '.join(capabilities)}, Fqdn {fqdn}",
        calls=(
            Call(
                "Set-ReceiveConnector",
                {"Identity": identity, "TlsDomainCapabilities": capabilities, "Fqdn": fqdn},
            ),
        ),
        before=read,
        post=(
            Check(
                f"{identity} accepts Exchange Online mail as internal and uses {fqdn}",
                read,
                {"TlsDomainCapabilities": contains(capabilities[-1]), "Fqdn": fqdn},
            ),
        ),
        undo=(
            Call(
                "Set-ReceiveConnector",
                {
                    "Identity": identity,
                    "TlsDomainCapabilities": Before("TlsDomainCapabilities"),
                    "Fqdn": Before("Fqdn"),
                },
            ),
        ),
    )


def send_step(mailbox: str, edge: str, connector: str, settings: dict[str, Any]) -> Step:
    """One Set-SendConnector on a Mailbox server with the KB3212872 values that differ, then a
    synchronisation to the Edge; undone to the values read before."""
    names = tuple(settings)
    read = Call("Get-SendConnector", {"Identity": connector}, ("Identity", *names))
    sync = Call("Start-EdgeSynchronization", {"TargetServer": edge, "ForceFullSync": True})
    shown = ", ".join(f"{k} {v}" for k, v in settings.items())
    return Step(
        id=f"hybrid-send-{_slug(connector)}",
        server=mailbox,
        does=f"set {connector} as KB3212872 says ({shown}) and synchronise it to {edge}",
        calls=(Call("Set-SendConnector", {"Identity": connector, **settings}), sync),
        before=read,
        post=(Check(f"{connector} has {shown}", read, dict(settings)),),
        undo=(
            Call(
                "Set-SendConnector",
                {"Identity": connector, **{name: Before(name) for name in names}},
            ),
            sync,
        ),
    )


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")[:60]


def send_settings(connector: SendConnectorFact, cert: CertificateFact, fqdn: str) -> dict:
    """The KB3212872 values (and Fqdn, a name the certificate covers) the connector lacks."""
    found = {
        "TlsDomain": connector.tls_domain,
        "TlsAuthLevel": connector.tls_auth_level,
        "RequireTLS": connector.require_tls,
        "CloudServicesMailEnabled": connector.cloud_services_mail_enabled,
    }
    wrong = {
        name: wanted
        for name, wanted in KB3212872.items()
        if str(found[name]).casefold() != str(wanted).casefold()
    }
    if not cert.covers(connector.fqdn):
        wrong["Fqdn"] = fqdn
    return wrong
