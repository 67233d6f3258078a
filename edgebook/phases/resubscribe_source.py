"""What phase 03 takes from phase 02: the certificate prepared for an Edge in the same change.

Phase 02 keeps every plan it computed under its hash and journals the one it applied; the
newest `apply-completed` of a phase-02 plan in outputs/<change>/<EDGE>/journal.jsonl names the
plan, whose facts hold the certificate (thumbprint, subject, issuer, TlsCertificateName, the
PFX pinned by sha256, its password reference) and the staging server, and whose notes give the
route phase 02 chose for phase 03.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgebook.change.approval import load_plan
from edgebook.change.journal import Journal
from edgebook.change.values import FileBytes, Secret
from edgebook.errors import ConfigError
from edgebook.evidence import layout

_ROUTE = re.compile(r"^phase 03 route: ([a-z-]+):")


@dataclass(frozen=True)
class PreparedCertificate:
    """The certificate phase 02 prepared (and staged on `staging`) for this Edge."""

    thumbprint: str
    subject: str
    issuer: str
    tls_name: str
    pfx: FileBytes | None
    password: Secret | None
    staging: str
    route: str  # "certificate-only" or "resubscribe", as phase 02 chose
    plan_sha256: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (references only)."""
        return {
            "thumbprint": self.thumbprint,
            "subject": self.subject,
            "issuer": self.issuer,
            "tls_certificate_name": self.tls_name,
            "pfx": {"path": self.pfx.path, "sha256": self.pfx.sha256} if self.pfx else None,
            "password": self.password.reference if self.password else None,
            "staging_server": self.staging,
            "phase02_route": self.route,
            "phase02_plan": self.plan_sha256,
        }


def prepared_certificate(change: str, edge: str) -> PreparedCertificate:
    """The certificate of the newest completed phase-02 plan of this change and Edge."""
    edge_dir = layout.edge_dir(change, edge)
    journal = Journal(layout.journal_path(change, edge)).read()
    for record in reversed(list(journal.events("apply-completed"))):
        plan = load_plan(edge_dir, record.get("plan_sha256", ""))
        if plan is None or plan.phase != "prepare" or not plan.facts.get("certificate"):
            continue
        cert = plan.facts["certificate"]
        if not cert.get("file"):
            raise ConfigError(
                f"change {change}: phase 02 prepared {cert['thumbprint']} for {edge} without a "
                "PFX (route edge-request: the key is on the Edge); phase 03 needs the PFX"
            )
        route = next((m.group(1) for n in plan.notes if (m := _ROUTE.match(n))), "")
        return PreparedCertificate(
            thumbprint=cert["thumbprint"],
            subject=cert["subject"],
            issuer=cert["issuer"],
            tls_name=cert["tls_certificate_name"],
            pfx=FileBytes(cert["file"], cert["file_sha256"], Path(cert["file"]).stat().st_size)
            if Path(cert["file"]).is_file()
            else _missing(cert["file"]),
            password=Secret(cert["password"], "the password of the PFX")
            if cert.get("password")
            else None,
            staging=plan.facts["organisation"]["staging_server"],
            route=route,
            plan_sha256=plan.sha256,
        )
    raise ConfigError(
        f"change {change}: no completed phase 02 for {edge} in {layout.journal_path(change, edge)}"
        f"; run 02-prepare-certificate with apply=True for change {change} and edge {edge} first"
    )


def _missing(path: str) -> FileBytes:
    raise ConfigError(
        f"{path}: the PFX phase 02 prepared is gone; put it back (its sha256 is in the phase 02 "
        "plan) or prepare the certificate again"
    )
