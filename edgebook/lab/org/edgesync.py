"""EdgeSync: whether a Mailbox server can reach an Edge's AD LDS, and replication to it.

The Mailbox side decrypts its EdgeSync credentials with its default certificate's key (F22: "failed
to decrypt the credential" once that certificate changed), then checks the certificate AD LDS
presents on 50636 against the one captured by the subscription (F7: "LDAP server unavailable");
a TlsCertificateName longer than 256 characters does not fit the AD LDS attribute and is not
replicated (F4).
"""

from __future__ import annotations

import copy
import datetime as dt
import secrets

from edgebook.lab.org import certstore
from edgebook.lab.org.model import (
    ADAM,
    RUNNING,
    Org,
    Replica,
    SendConnector,
    Server,
    Subscription,
)

TLS_NAME_LIMIT = 256
LDAP_UNAVAILABLE = "SubscriptionConnectionError(LDAP server unavailable)"
# AD LDS refuses the bind (LDAP invalidCredentials, 49); the text is .NET's LdapException message,
# the wrapping the lab's (docs/lab-scenarios.md).
INVALID_CREDENTIAL = "SubscriptionConnectionError(The supplied credential is invalid.)"
DECRYPT_FAILED = (  # Microsoft's text (F22)
    "EdgeSync failed to decrypt the credential for Edge Transport server {edge} using the private "
    "key of the default Exchange certificate with exception Bad Data. The certificate's "
    "thumbprint is {thumbprint} and its subject is {subject}. Use either "
    "Enable-ExchangeCertificate or New-ExchangeCertificate to set the proper Exchange default "
    "certificate and re-subscribe the Edge Transport server {edge} again."
)


def credential_failure(org: Org, edge: Server, mailbox: Server) -> str | None:
    """F22: the Mailbox server's default certificate is no longer the one whose key encrypted
    its EdgeSync credentials for this Edge at subscription (None: it can decrypt them)."""
    sub = org.subscription(edge.name)
    then = sub.mailbox_credentials.get(mailbox.name) if sub else None
    now = mailbox.internal_transport_thumbprint
    if then is None or now == then:
        return None
    current = mailbox.certificate(now or "")
    subject = certstore.subject(current) if current is not None else ""
    return DECRYPT_FAILED.format(edge=edge.fqdn, thumbprint=now, subject=subject)


def sync_failure(org: Org, edge: Server, mailbox: Server | None = None) -> str | None:
    """Why EdgeSync (from this Mailbox server; None: from any of the site) cannot reach this Edge
    now (FailureDetail), or None when it can."""
    sub = org.subscription(edge.name)
    if sub is None:
        return "NoSubscription"
    sources = [mailbox] if mailbox is not None else org.mailboxes
    failures = [credential_failure(org, edge, m) for m in sources]
    if failures and all(failures):
        return failures[0]
    if edge.services.get(ADAM) != RUNNING or edge.adam_thumbprint is None:
        return LDAP_UNAVAILABLE
    if edge.adam_thumbprint != sub.certificate_thumbprint:
        return LDAP_UNAVAILABLE  # F7: AD LDS presents a certificate the subscription doesn't hold
    if edge.internal_transport_thumbprint != sub.certificate_thumbprint:
        return (
            f"SubscriptionConnectionError(Microsoft Exchange couldn't match certificate when "
            f"contacting {edge.fqdn}. The connection was stopped.)"
        )
    if bootstrap_pending(sub, edge) and not _bootstrap_matches(sub, edge):
        return INVALID_CREDENTIAL
    return None


def bootstrap_pending(sub: Subscription, edge: Server) -> bool:
    """Whether the initial replication of an imported subscription has not happened yet: until
    then EdgeSync binds to AD LDS with the file's bootstrap account (ESBRA)."""
    if sub.esra_password is None:
        return False  # subscribed by the scenario, not from a file
    last = edge.replica.last_sync if edge.replica else None
    return last is None or last < sub.create_utc


def _bootstrap_matches(sub: Subscription, edge: Server) -> bool:
    replica = edge.replica
    return (
        replica is not None
        and replica.bootstrap_password is not None
        and (sub.esra_username or "").casefold() == (replica.bootstrap_username or "").casefold()
        and secrets.compare_digest(sub.esra_password or "", replica.bootstrap_password)
    )


def replicate(
    org: Org, edge: Server, now: dt.datetime, mailbox: Server | None = None
) -> list[tuple[str, str, str]]:
    """Replicate the send connectors to the Edge (a full synchronisation: everything is
    compared and copied); (Result, Type, FailureDetails) per data type."""
    failure = sync_failure(org, edge, mailbox)
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
