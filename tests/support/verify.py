"""The seed-incident lab brought to where phase 03 (certificate-only route) leaves an Edge, through
LabBackend before the daemon starts: the renewal imported and enabled for SMTP answering No,
the old certificate removed, TlsCertificateName on both connectors, transport restarted."""

from __future__ import annotations

from pathlib import Path

from edgebook.config import load_inventory
from edgebook.exchange.secure import SecureText
from edgebook.lab import control
from edgebook.lab.folder import lab_password
from edgebook.lab.org.model import TRANSPORT
from edgebook.lab.org.store import LabStore
from edgebook.phases import prepare
from tests.support.lab import Lab

HYBRID = "Outbound to Office 365"


def receive_identity(edge: str) -> str:
    return rf"{edge}\Default internal receive connector {edge}"


def changed_certificate(directory: Path, edges: tuple[str, ...] = ("EDGE01",)) -> str:
    """Do phase 03's certificate-only work on the Edges of a created (not running) lab; returns
    the new thumbprint."""
    lab = Lab(LabStore(directory))
    password = SecureText(lab_password(directory)[0])
    new, old = {}, {}
    for edge in edges:
        data = (directory / "renewal" / f"{edge}.pfx").read_bytes()
        (new,) = lab.ok(edge, "Import-ExchangeCertificate", FileData=data, Password=password)
        lab.ok(edge, "Enable-ExchangeCertificate", new["Thumbprint"], Services=["SMTP"],
               answers=["No"])  # fmt: skip
        (old[edge],) = [
            c["Thumbprint"]
            for c in lab.ok(edge, "Get-ExchangeCertificate")
            if not c["IsSelfSigned"] and c["Thumbprint"] != new["Thumbprint"]
        ]
    name = f"<I>{new['Issuer']}<S>{new['Subject']}"
    if not lab.run("EX01", "Get-ExchangeCertificate", new["Thumbprint"]).output:
        data = (directory / "renewal" / f"{edges[0]}.pfx").read_bytes()
        lab.ok("EX01", "Import-ExchangeCertificate", FileData=data, Password=password)
    lab.ok("EX01", "Set-SendConnector", HYBRID, TlsCertificateName=name)
    for edge in edges:  # the connectors name the new one before the old one goes
        lab.ok("EX01", "Start-EdgeSynchronization", TargetServer=edge, ForceFullSync=True)
        lab.ok(edge, "Set-ReceiveConnector", receive_identity(edge), TlsCertificateName=name)
        lab.ok(edge, "Remove-ExchangeCertificate", old[edge], Confirm=False)
        lab.ok(edge, "Restart-Service", TRANSPORT)
    return new["Thumbprint"]


def phases_02_and_03(directory: Path, change: str, edge: str = "EDGE01") -> str:
    """On a created lab: phase 02 applied through the engine (journal, plan), then phase 03's
    work; the lab is stopped again. Returns the new thumbprint."""
    control.start(directory)
    try:
        inventory = load_inventory(directory / "inventory.yaml")
        planned = prepare.prepare(inventory, edge, change)
        assert prepare.apply(planned, planned.plan.sha256).completed
    finally:
        control.stop(directory)
    return changed_certificate(directory, (edge,))
