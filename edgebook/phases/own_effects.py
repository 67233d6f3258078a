"""What this change itself did to organisation-wide objects, read from the journals of all its
Edges: the certificates it staged on Mailbox servers and the send connector values it set.

A per-Edge plan records organisation-wide facts relative to its change: a value this change set
is recorded as the value it replaced, and a certificate this change staged is left out. A plan
approved up front for the second Edge then still matches after the first Edge's phases changed
those objects (its own steps skip what is already done, by their postconditions), while a
change made by anyone else still changes the plan's hash (docs/change-engine.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgebook.change.journal import Journal
from edgebook.evidence import layout

# Set-SendConnector parameters the phases set, and the SendConnectorFact field of each
SEND_CONNECTOR_FIELDS = {
    "TlsCertificateName": "tls_certificate_name",
    "Fqdn": "fqdn",
    "TlsDomain": "tls_domain",
    "TlsAuthLevel": "tls_auth_level",
    "RequireTLS": "require_tls",
    "CloudServicesMailEnabled": "cloud_services_mail_enabled",
}


@dataclass(frozen=True)
class OwnEffects:
    """Certificates staged and send connector values set by one change (any of its Edges)."""

    staged: frozenset[tuple[str, str]] = frozenset()  # (server casefolded, thumbprint upper)
    # (connector casefolded, parameter) -> (value before the change first set it, value set last)
    send_connectors: dict[tuple[str, str], tuple[Any, Any]] = field(default_factory=dict)

    def staged_here(self, server: str, thumbprint: str) -> bool:
        """Whether this change imported the certificate on that server."""
        return (server.casefold(), thumbprint.upper()) in self.staged

    def before_change(self, connector: str, parameter: str, current: Any) -> Any:
        """The connector's value as it was before this change, when this change set the value
        it has now; otherwise the current value (anyone else's change shows)."""
        entry = self.send_connectors.get((connector.casefold(), parameter))
        if entry is not None and _same(current, entry[1]):
            return entry[0]
        return current

    def send_connector(self, connector: Any) -> Any:
        """A SendConnectorFact with the values this change set replaced by those before it."""
        changes = {
            name: self.before_change(connector.name, parameter, getattr(connector, name))
            for parameter, name in SEND_CONNECTOR_FIELDS.items()
        }
        return dataclasses.replace(connector, **changes)


NO_EFFECTS = OwnEffects()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    return a == b


def read_own_effects(change: str, edges: Iterable[str], root: Path | None = None) -> OwnEffects:
    """The effects journalled as done (and not rolled back) by this change on these Edges."""
    staged: set[tuple[str, str]] = set()
    values: dict[tuple[str, str], tuple[Any, Any]] = {}
    for edge in edges:
        for started in _done_steps(Journal(layout.journal_path(change, edge, root)).read().records):
            before = started.get("before") or {}
            for call in started.get("calls") or []:
                params = call.get("params") or {}
                if call.get("cmdlet") == "Set-SendConnector" and params.get("Identity"):
                    name = str(params["Identity"]).casefold()
                    for parameter in SEND_CONNECTOR_FIELDS:
                        if parameter in params:
                            first = values.get((name, parameter), (before.get(parameter),))[0]
                            values[(name, parameter)] = (first, params[parameter])
            for call in started.get("undo") or []:
                params = call.get("params") or {}
                if call.get("cmdlet") == "Remove-ExchangeCertificate" and params.get("Server"):
                    staged.add(
                        (str(params["Server"]).casefold(), str(params["Thumbprint"]).upper())
                    )
    return OwnEffects(frozenset(staged), values)


def _done_steps(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The step-started records of steps journalled done and not rolled back, in order."""
    rolled_back = {r.get("done_seq") for r in records if r["event"] == "step-rolled-back"}
    started: dict[tuple[Any, Any], dict[str, Any]] = {}
    done = []
    for record in records:
        key = (record.get("plan_sha256"), record.get("step"))
        if record["event"] == "step-started":
            started[key] = record
        elif (
            record["event"] == "step-done"
            and key in started
            and record.get("seq") not in rolled_back
        ):
            done.append(started[key])
    return done
