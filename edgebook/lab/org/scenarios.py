"""Declarative lab scenarios: list, load (validated) and build an organisation from one."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from importlib import resources
from pathlib import Path

from edgebook.certs import thumbprint, tls_certificate_name
from edgebook.lab.org import certstore, edgesync, mailflow, pki
from edgebook.lab.org.model import (
    ADAM,
    EDGESYNC,
    RUNNING,
    TRANSPORT,
    CertEntry,
    LabCA,
    Org,
    Queue,
    ReceiveConnector,
    Replica,
    SendConnector,
    Server,
    Subscription,
)
from edgebook.lab.org.scenario_schema import Scenario, ScenarioError, parse
from edgebook.yamlfile import load_yaml

__all__ = ["Scenario", "ScenarioError", "build", "list_scenarios", "load_scenario"]


def _package_dir() -> Path:
    return Path(str(resources.files("edgebook.lab") / "scenarios"))


def list_scenarios() -> list[tuple[str, str]]:
    """(name, description) of every shipped scenario."""
    found = []
    for path in sorted(_package_dir().glob("*.yaml")):
        found.append((path.stem, load_scenario(path).description))
    return found


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A shipped scenario by name, or a scenario file; ScenarioError if missing or malformed."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = _package_dir() / f"{name_or_path}.yaml"
        if not path.exists():
            names = ", ".join(p.stem for p in sorted(_package_dir().glob("*.yaml")))
            raise ScenarioError(f"no scenario {name_or_path!r}; shipped scenarios: {names}")
    data = load_yaml(path, what="scenario file", error=ScenarioError)
    return parse(path.stem, str(path), data)


def password_hash(salt: str, password: str) -> str:
    """The stored verifier of the lab password."""
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 2000).hex()


def build(
    scenario: Scenario, now: dt.datetime, secret: bytes, password: str
) -> tuple[Org, dict[str, bytes]]:
    """The organisation of a scenario, and the lab files it names (relative path -> bytes)."""
    salt = secrets.token_hex(8)
    org = Org(
        scenario=scenario.name,
        description=scenario.description,
        domain=scenario.domain,
        site=scenario.site,
        hybrid_domain=scenario.hybrid_domain,
        auth_salt=salt,
        auth_hash=password_hash(salt, password),
        password_sealed=pki.seal_bytes(secret, password.encode()),
        secret=secret,
    )

    def at(days: float) -> dt.datetime:
        return now + dt.timedelta(days=days)

    pairs: dict[str, pki.KeyPair] = {}
    for ca in scenario.cas:
        pair = pki.make_ca(
            pki.parse_name(ca.subject),
            at(ca.valid.from_days),
            at(ca.valid.to_days),
            pairs[ca.parent] if ca.parent else None,
        )
        pairs[ca.id] = pair
        org.cas.append(LabCA(ca.id, pki.der_b64(pair[0]), pki.seal(secret, pair[1]), ca.parent))
    for spec in scenario.servers:
        org.servers.append(_server(spec.name, spec.role, spec.fqdn, at(spec.installed_days)))
    lab_files: dict[str, bytes] = {}
    issued: dict[str, pki.KeyPair] = {}
    for cspec in scenario.certificates:
        pair = pki.issue(
            pki.parse_name(cspec.subject),
            cspec.domains,
            at(cspec.valid.from_days),
            at(cspec.valid.to_days),
            pairs[cspec.issuer] if cspec.issuer else None,
            key_size=cspec.key_size,
        )
        issued[cspec.id] = pair
        chain = _chain(org, cspec.issuer)
        for install in cspec.install:
            server = org.server(install.server)
            entry = add_certificate(
                org,
                server,
                pair,
                certstore.services_value(install.services),
                install.exportable,
                install.friendly_name,
                now,
            )
            if install.chain:
                _add_chain(server, chain)
            if install.default:
                server.internal_transport_thumbprint = entry.thumbprint
        for relative in cspec.lab_files:
            lab_files[relative] = pki.pfx(pair[0], pair[1], chain, password, cspec.id)
    for server in org.servers:
        if server.internal_transport_thumbprint is None:
            _self_signed_default(org, server, now)
    for sc in scenario.send_connectors:
        connector = SendConnector(**sc.values, guid=str(uuid.uuid4()), when_changed=now)
        if sc.tls_certificate:
            connector.tls_certificate_name = tls_certificate_name(issued[sc.tls_certificate][0])
        org.send_connectors.append(connector)
    for spec in scenario.servers:
        server = org.server(spec.name)
        rc = server.receive_connectors[0]
        rc.fqdn = spec.receive.fqdn or rc.fqdn
        rc.tls_domain_capabilities = list(spec.receive.tls_domain_capabilities)
        if spec.receive.tls_certificate:
            rc.tls_certificate_name = tls_certificate_name(issued[spec.receive.tls_certificate][0])
        elif spec.receive.tls_certificate_name:
            rc.tls_certificate_name = spec.receive.tls_certificate_name
        server.traffic = dict(spec.traffic)
    for sub in scenario.subscriptions:
        subscribe(
            org, org.server(sub.edge), at(sub.created_days), sub.create_inbound, sub.create_internet
        )
    for spec in scenario.servers:
        server = org.server(spec.name)
        if server.role == "Edge" and spec.services.get(ADAM, RUNNING) != "Stopped":
            mailflow.start_adam(server, now)
        if org.subscription(server.name):
            edgesync.replicate(org, server, now)
    for sub in scenario.subscriptions:
        if sub.mailbox_default:  # the Mailbox servers' default has changed since (F22)
            made = org.subscription(sub.edge)
            then = thumbprint(issued[sub.mailbox_default][0])
            if made is not None:
                made.mailbox_credentials = {name: then for name in made.mailbox_credentials}
    for index, spec in enumerate(scenario.servers):
        _start(org, org.server(spec.name), spec.services, now)
        for name, count in spec.queues.items():
            server = org.server(spec.name)
            replicated = [c.name for c in mailflow.replicated_connectors(server)]
            if name not in replicated:
                raise ScenarioError(
                    f"{scenario.source}: servers[{index}].queues.{name}: found {name!r}, expected "
                    f"the name of a send connector replicated to {spec.name} ("
                    f"{', '.join(replicated) or 'none'})"
                )
            mailflow.enqueue(server, name, count)  # accepted before the lab's start
    mailflow.evaluate(org, now)
    return org, lab_files


def _server(name: str, role: str, fqdn: str, installed: dt.datetime) -> Server:
    server = Server(name=name, role=role, fqdn=fqdn, installed=installed)  # type: ignore[arg-type]
    server.queues.append(
        Queue(1, "submission", "Submission", "Undefined", None, next_hop_category="Internal")
    )
    if role == "Edge":
        server.services = {ADAM: RUNNING, TRANSPORT: RUNNING}
        server.receive_connectors.append(
            ReceiveConnector(
                name=f"Default internal receive connector {name}",
                bindings=["0.0.0.0:25", "[::]:25"],
                fqdn=fqdn,
                guid=str(uuid.uuid4()),
            )
        )
    else:
        server.services = {TRANSPORT: RUNNING, EDGESYNC: RUNNING}
        for rc_name, port in ((f"Default {name}", 2525), (f"Default Frontend {name}", 25)):
            server.receive_connectors.append(
                ReceiveConnector(
                    name=rc_name,
                    bindings=[f"0.0.0.0:{port}", f"[::]:{port}"],
                    fqdn=fqdn,
                    guid=str(uuid.uuid4()),
                )
            )
    return server


def add_certificate(
    org: Org,
    server: Server,
    pair: tuple,
    services: int,
    exportable: bool,
    friendly_name: str,
    now: dt.datetime,
) -> CertEntry:
    """Put a certificate with its key into a server's personal store."""
    cert, key = pair
    entry = CertEntry(
        thumbprint=thumbprint(cert),
        der_b64=pki.der_b64(cert),
        key_sealed=pki.seal(org.secret, key) if key is not None else None,
        friendly_name=friendly_name,
        services=services,
        exportable=exportable,
        added=now,
    )
    server.certificates.append(entry)
    return entry


def _chain(org: Org, ca_id: str | None) -> list:
    chain = []
    while ca_id is not None:
        ca = next(c for c in org.cas if c.id == ca_id)
        chain.append(pki.load(ca.der_b64))
        ca_id = ca.parent
    return chain


def _add_chain(server: Server, chain: list) -> None:
    for cert in chain:
        der = pki.der_b64(cert)
        if der not in server.ca_store:
            server.ca_store.append(der)


def _self_signed_default(org: Org, server: Server, now: dt.datetime) -> None:
    start = server.installed or now
    pair = pki.issue(
        pki.parse_name(f"CN={server.name}"),
        [server.name, server.fqdn],
        start,
        start + dt.timedelta(days=5 * 365),
    )
    services = certstore.services_value(
        ["SMTP"] if server.role == "Edge" else ["IMAP, POP, IIS, SMTP"]
    )
    entry = add_certificate(org, server, pair, services, False, "Microsoft Exchange", now)
    server.internal_transport_thumbprint = entry.thumbprint
    server.trusted_roots.append(entry.thumbprint)  # setup trusts its own certificate


def edgesync_connectors(org: Org, edge: str) -> list[SendConnector]:
    """The two connectors New-EdgeSubscription creates for a site."""
    return [
        SendConnector(
            name=f"EdgeSync - Inbound to {org.site}",
            address_spaces=["SMTP:--;1"],
            smart_hosts=["--"],
            source_transport_servers=[edge],
            dns_routing_enabled=False,
            guid=str(uuid.uuid4()),
        ),
        SendConnector(
            name=f"EdgeSync - {org.site} to Internet",
            address_spaces=["SMTP:*;100"],
            source_transport_servers=[edge],
            domain_secure_enabled=True,
            guid=str(uuid.uuid4()),
        ),
    ]


def subscribe(
    org: Org,
    edge: Server,
    when: dt.datetime,
    create_inbound: bool,
    create_internet: bool,
    certificate_der_b64: str | None = None,
    esra: tuple[str, str] | None = None,
) -> Subscription:
    """Record an Edge Subscription (replacing an existing one) and create/extend its connectors;
    esra: the ESBRA user name and password of the imported file."""
    if certificate_der_b64 is None:
        default = edge.certificate(edge.internal_transport_thumbprint or "")
        if default is None:
            raise ScenarioError(f"{edge.name} has no default certificate to subscribe with")
        certificate_der_b64 = default.der_b64
    sub = Subscription(
        edge=edge.name,
        site=org.site,
        domain=org.domain,
        create_utc=when,
        certificate_der_b64=certificate_der_b64,
        certificate_thumbprint=thumbprint(pki.load(certificate_der_b64)),
        mailbox_servers=[m.name for m in org.mailboxes],
        mailbox_credentials={
            m.name: m.internal_transport_thumbprint
            for m in org.mailboxes
            if m.internal_transport_thumbprint
        },
        esra_username=esra[0] if esra else None,
        esra_password=esra[1] if esra else None,
    )
    org.subscriptions = [s for s in org.subscriptions if s.edge != edge.name] + [sub]
    wanted = [create_inbound, create_internet]
    for make, template in zip(wanted, edgesync_connectors(org, edge.name), strict=True):
        if not make:
            continue
        existing = org.send_connector(template.name)
        if existing is None:
            template.when_changed = when
            org.send_connectors.append(template)
        elif edge.name not in existing.source_transport_servers:
            existing.source_transport_servers.append(edge.name)
    if edge.replica is None:
        edge.replica = Replica()
    return sub


def _start(org: Org, server: Server, states: dict[str, str], now: dt.datetime) -> None:
    if states.get(TRANSPORT, RUNNING) != "Stopped":
        mailflow.start_transport(org, server, now)
    for service, state in states.items():
        if state == "Stopped":
            mailflow.stop_service(server, service)
        else:
            server.services[service] = state
