"""The facts model of the inspect phase: Edges, the organisation, and the settings."""

from edgebook.facts.cmdlet_outputs import (
    CertificateFact,
    EventFact,
    HealthFact,
    ProbeResult,
    QueueFact,
    ReceiveConnectorFact,
    SendConnectorFact,
)
from edgebook.facts.model import (
    EXO_CAPABILITY,
    SERVICE_PROPERTIES,
    TRANSPORT_SERVICE_PROPERTIES,
    EdgeFacts,
    EdgeSyncFact,
    InspectSettings,
    MailboxServerFact,
    OrgFacts,
    SubscriptionFact,
    any_same_server,
    facts_from_dict,
    facts_to_dict,
    same_server,
)
from edgebook.facts.values import FactsError

__all__ = [
    "EXO_CAPABILITY",
    "SERVICE_PROPERTIES",
    "TRANSPORT_SERVICE_PROPERTIES",
    "CertificateFact",
    "EdgeFacts",
    "EdgeSyncFact",
    "EventFact",
    "FactsError",
    "HealthFact",
    "InspectSettings",
    "MailboxServerFact",
    "OrgFacts",
    "ProbeResult",
    "QueueFact",
    "ReceiveConnectorFact",
    "SendConnectorFact",
    "SubscriptionFact",
    "any_same_server",
    "facts_from_dict",
    "facts_to_dict",
    "same_server",
]
