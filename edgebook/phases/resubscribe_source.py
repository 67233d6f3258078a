"""What phase 03 takes from phase 02: the certificate prepared for an Edge in the same change.

Phase 02 keeps every plan it computed under its hash and journals the one it applied; the
newest `apply-completed` of a phase-02 plan in outputs/<change>/<EDGE>/journal.jsonl names the
plan, whose facts hold the certificate (thumbprint, subject, issuer, TlsCertificateName, the
PFX pinned by sha256, its password reference) and the staging server, and whose notes give the
route phase 02 chose for phase 03.

Route edge-request leaves no PFX: phase 02 completed the request on the Edge, so the
certificate is there with the key made there (`key_on_edge`). Phase 03 imports nothing then; it
checks, when planning and again before enabling SMTP, that the certificate is on the Edge with
its private key (`on_edge_problems`, `on_edge_check`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edgebook import certs
from edgebook.certs import CertificateError
from edgebook.change.approval import load_plan
from edgebook.change.journal import Journal
from edgebook.change.step import Call, Check, Step
from edgebook.change.values import FileBytes, Secret
from edgebook.errors import ConfigError, EdgebookError
from edgebook.evidence import layout
from edgebook.phases import resubscribe_steps as rs
from edgebook.phases.prepare_certificate import Candidate

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
    key_on_edge: bool = False  # route edge-request: completed on the Edge, no PFX
    certificate_file: FileBytes | None = None  # then: the bare certificate and its chain

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
            **(
                {"key_on_edge": True, "certificate_file": self.certificate_file.path}
                if self.key_on_edge and self.certificate_file
                else {}
            ),
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
                "file; prepare the certificate again"
            )
        route = next((m.group(1) for n in plan.notes if (m := _ROUTE.match(n))), "")
        if cert.get("route") == "edge-request":
            return PreparedCertificate(
                thumbprint=cert["thumbprint"],
                subject=cert["subject"],
                issuer=cert["issuer"],
                tls_name=cert["tls_certificate_name"],
                pfx=None,
                password=None,
                staging=plan.facts["organisation"]["staging_server"],
                route=route,
                plan_sha256=plan.sha256,
                key_on_edge=True,
                certificate_file=_pinned(cert["file"], cert["file_sha256"], "certificate"),
            )
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


def _pinned(path: str, sha256: str, what: str) -> FileBytes:
    pinned = FileBytes(path, sha256, Path(path).stat().st_size) if Path(path).is_file() else None
    if pinned is None:
        raise ConfigError(
            f"{path}: the {what} phase 02 prepared is gone; put it back (its sha256 is in the "
            "phase 02 plan) or prepare the certificate again"
        )
    return pinned


def on_edge(cert: PreparedCertificate, facts: Any) -> tuple[list[str], Candidate | None]:
    """Route edge-request when planning: the certificate is on the Edge with its private key
    (phase 02 completed the request there); the problems, and the certificate from phase 02's
    file to validate (None when it cannot be read)."""
    file = cert.certificate_file
    if file is None:
        return ["phase 02 left no certificate file for the Edge"], None
    try:
        file.read()
        bundle = certs.load_certificates(Path(file.path))
    except (CertificateError, EdgebookError) as exc:
        return [f"the certificate phase 02 kept: {exc}"], None
    problems = []
    if certs.thumbprint(bundle.leaf) != cert.thumbprint:
        problems.append(f"{file.path} no longer holds {cert.thumbprint}")
    held = facts.certificate(cert.thumbprint)
    if held is None or held.status == "PendingRequest":
        problems.append(
            f"{cert.thumbprint} is not on {facts.name}: phase 02 (route edge-request, with "
            "certificate=<the issued file>) completes the request there; run it with apply first"
        )
    elif held.has_private_key is False:
        problems.append(
            f"{cert.thumbprint} is on {facts.name} without its private key: it cannot serve TLS. "
            "Complete the pending request it was issued for (phase 02), or bring a PFX"
        )
    return problems, Candidate(bundle.leaf, bundle.chain, file, None, "edge-request", True)


def put_on_edge(
    edge: str, cert: PreparedCertificate, change: str, exportable: bool, enable: Step
) -> list[Step]:
    """The PFX imported on the Edge, then `enable`; route edge-request: `enable` alone, with the
    precondition that the certificate is on the Edge with its private key."""
    if cert.key_on_edge:
        read = Call(
            "Get-ExchangeCertificate", {}, ("Thumbprint", "Status", "HasPrivateKey", "Services")
        )
        there = Check(
            f"{cert.thumbprint} is on {edge} with its private key (phase 02 completed it there)",
            read,
            {"Thumbprint": cert.thumbprint, "HasPrivateKey": True},
        )
        return [replace(enable, pre=(*enable.pre, there))]
    if cert.pfx is None:
        raise ConfigError(f"phase 02 left no PFX to import on {edge}")
    friendly = f"{cert.subject.split(',')[0]} (edgebook {change})"
    imported = rs.import_on_edge(
        edge, cert.thumbprint, cert.pfx, cert.password, friendly, exportable
    )
    return [imported, enable]


def _missing(path: str) -> FileBytes:
    raise ConfigError(
        f"{path}: the PFX phase 02 prepared is gone; put it back (its sha256 is in the phase 02 "
        "plan) or prepare the certificate again"
    )
