"""What an Edge's TLS listeners do now, read from the simulated organisation.

The SMTP listener accepts while MSExchangeTransport runs and presents the certificate transport
bound, at its start, to the first (default) receive connector; the LDAPS listener accepts while
ADAM_MSExchange runs and presents the certificate AD LDS bound (edgebook.lab.org.mailflow binds
both when the services start). A certificate is served as its PEM chain (leaf first, up to the
root, which is not sent) and PEM key, the chain completed from the Edge's CA store. The
listeners themselves (edgebook.lab.net.listeners) ask here at every connection.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from edgebook.lab.org import certstore, pki
from edgebook.lab.org.model import ADAM, RUNNING, TRANSPORT, Org, Server


@dataclass
class ListenerState:
    """What a TLS listener of an Edge does now."""

    accepting: bool
    certificate: tuple[bytes, bytes] | None  # (PEM chain, PEM key); None: no TLS offered


Materials = dict[tuple[str, str, str, int], tuple[bytes, bytes] | None]


def listener_state(
    org: Org,
    edge_name: str,
    kind: Literal["smtp", "ldaps"],
    now: dt.datetime,
    materials: Materials | None = None,
) -> ListenerState:
    """Whether the listener accepts connections and which certificate it presents.

    materials, when given, keeps the PEM material of each store entry once made (loading a
    sealed RSA key costs milliseconds, and a listener asks at every connection).
    """
    server = org.server(edge_name)
    if kind == "ldaps":
        if server.services.get(ADAM) != RUNNING:
            return ListenerState(False, None)
        return ListenerState(True, _cached(org, server, server.adam_thumbprint, materials))
    if server.services.get(TRANSPORT) != RUNNING or server.transport is None:
        return ListenerState(False, None)
    default_rc = next(iter(server.transport.receive.values()), None)
    return ListenerState(True, _cached(org, server, default_rc, materials))


def _cached(
    org: Org, server: Server, thumbprint: str | None, materials: Materials | None
) -> tuple[bytes, bytes] | None:
    entry = server.certificate(thumbprint) if thumbprint else None
    if materials is None or entry is None:
        return _material(org, server, thumbprint)
    key = (server.name, entry.thumbprint, entry.key_sealed or "", len(server.ca_store))
    if key not in materials:
        materials[key] = _material(org, server, thumbprint)
    return materials[key]


def served_certificate(
    org: Org, edge_name: str, kind: Literal["smtp", "ldaps"], now: dt.datetime
) -> tuple[bytes, bytes] | None:
    """(PEM chain, PEM key) the listener presents; None when it refuses or offers no TLS."""
    return listener_state(org, edge_name, kind, now).certificate


def _material(org: Org, server: Server, thumbprint: str | None) -> tuple[bytes, bytes] | None:
    entry = server.certificate(thumbprint) if thumbprint else None
    key = certstore.key_of(org, entry) if entry else None
    if entry is None or key is None:
        return None
    cert = certstore.cert_of(entry)
    chain = [pki.pem(cert)]
    pool = [pki.load(d) for d in server.ca_store]
    while not pki.is_self_signed(cert):
        parent = next((c for c in pool if c.subject == cert.issuer), None)
        if parent is None or pki.is_self_signed(parent):
            break
        chain.append(pki.pem(parent))
        cert = parent
    return b"".join(chain), pki.key_pem(key)
