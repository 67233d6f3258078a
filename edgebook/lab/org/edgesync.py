"""EdgeSync: whether a Mailbox server can reach an Edge's AD LDS, and replication to it.

The Mailbox side checks the certificate AD LDS presents on 50636 against the one captured by
the subscription (F7: "LDAP server unavailable"); a TlsCertificateName longer than 256
characters does not fit the AD LDS attribute and is not replicated (F4).
"""

from __future__ import annotations

import copy
import datetime as dt

from edgebook.lab.org.model import ADAM, RUNNING, Org, Replica, SendConnector, Server

TLS_NAME_LIMIT = 256
LDAP_UNAVAILABLE = "SubscriptionConnectionError(LDAP server unavailable)"


def sync_failure(org: Org, edge: Server) -> str | None:
    """Why EdgeSync cannot reach this Edge now (FailureDetail), or None when it can."""
    sub = org.subscription(edge.name)
    if sub is None:
        return "NoSubscription"
    if edge.services.get(ADAM) != RUNNING or edge.adam_thumbprint is None:
        return LDAP_UNAVAILABLE
    if edge.adam_thumbprint != sub.certificate_thumbprint:
        return LDAP_UNAVAILABLE  # F7: AD LDS presents a certificate the subscription doesn't hold
    if edge.internal_transport_thumbprint != sub.certificate_thumbprint:
        return (
            f"SubscriptionConnectionError(Microsoft Exchange couldn't match certificate when "
            f"contacting {edge.fqdn}. The connection was stopped.)"
        )
    return None


def replicate(org: Org, edge: Server, now: dt.datetime) -> list[tuple[str, str, str]]:
    """Replicate the send connectors to the Edge; (Result, Type, FailureDetails) per data type."""
    failure = sync_failure(org, edge)
    if failure is not None:
        return [("CouldNotConnect", t, failure) for t in ("Configuration", "Recipients")]
    old = {c.name: c for c in (edge.replica.connectors if edge.replica else [])}
    copies: list[SendConnector] = []
    incomplete: list[str] = []
    for connector in org.send_connectors:
        if len(connector.tls_certificate_name or "") > TLS_NAME_LIMIT:
            incomplete.append(connector.name)  # F4: rangeUpper 256 in AD LDS
            if connector.name in old:
                copies.append(old[connector.name])
            continue
        copies.append(copy.deepcopy(connector))
    if edge.replica is None:
        edge.replica = Replica()
    edge.replica.connectors = copies
    edge.replica.last_sync = now
    config = "Incomplete" if incomplete else "Success"
    detail = (
        "A value in the request is invalid. Failed to synchronize entry "
        + ", ".join(f"CN={n}" for n in incomplete)
        if incomplete
        else ""
    )
    return [(config, "Configuration", detail), ("Success", "Recipients", "")]
