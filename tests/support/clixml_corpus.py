"""CLIXML output objects the lab sends: every object of inspect's statements and of the
change phases' commands that output objects, in one scenario, serialised as the lab puts them
on the wire (psrpcore, Exchange's type names), each as in its own PIPELINE_OUTPUT message,
and the values themselves."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import psrpcore
from psrpcore.types import serialize

from edgebook.exchange.secure import SecureText
from edgebook.lab.winrm.protocol import CommandCall
from edgebook.lab.winrm.wire import to_wire
from edgebook.phases.inspect import MAILBOX_COMMANDS, edge_commands
from tests.support.lab import Lab, lab_copy

SCENARIOS = (
    "healthy",
    "expired",
    "duplicate-subject",
    "edge-hub-clash",
    "mailbox-default-replaced",
    "seed-incident",
)
SINCE = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
_CIPHER = psrpcore.PSRemotingCrypto()


def lab_objects(scenario: str, directory: Path) -> list[str]:
    """The CLIXML of each object the lab outputs for reads before and after a change."""
    return [
        ET.tostring(serialize(to_wire(value), _CIPHER), encoding="unicode")
        for value in lab_values(scenario, directory)
    ]


def lab_values(scenario: str, directory: Path) -> list[Any]:
    """Each value the lab outputs for reads before and after a change, before the wire."""
    lab = Lab(lab_copy(scenario, directory))
    org = lab.store.read()
    edge = next(s.name for s in org.servers if s.role == "Edge")
    mailbox = next(s.name for s in org.servers if s.role == "Mailbox")
    outputs = _reads(lab, org.servers)
    outputs += _change(lab, edge, mailbox)
    outputs += _reads(lab, org.servers)
    return outputs


def _reads(lab: Lab, servers: Any) -> list[Any]:
    """The output of inspect's statements on every server."""
    found = []
    for server in servers:
        if server.role == "Edge":
            commands = edge_commands(cast(Any, SimpleNamespace(name=server.name)), SINCE)
        else:
            commands = MAILBOX_COMMANDS
        for command in commands:
            statement = [CommandCall(c.name, dict(c.parameters)) for c in command.chain()]
            found += lab.pipeline(server.name, statement).output
    return found


def _change(lab: Lab, edge: str, mailbox: str) -> list[Any]:
    """The change phases' commands that output objects: a certificate made, moved and enabled,
    a request, a subscription and its file, a synchronisation, services and queues."""
    password = SecureText("secret")
    found = lab.run(
        mailbox, "New-ExchangeCertificate", Services=["None"], PrivateKeyExportable=True
    ).output
    thumbprint = found[0]["Thumbprint"]
    exported = lab.run(
        mailbox, "Export-ExchangeCertificate", thumbprint, BinaryEncoded=True, Password=password
    ).output
    found += exported
    found += lab.run(
        edge, "Import-ExchangeCertificate", FileData=exported[0]["FileData"], Password=password
    ).output
    found += lab.run(
        edge, "Enable-ExchangeCertificate", thumbprint, Services="SMTP", Force=None
    ).output
    found += lab.run(
        edge, "New-ExchangeCertificate", GenerateRequest=True, SubjectName="CN=request.contoso.com"
    ).output
    path = r"C:\temp\EdgeSubscriptionInfo.xml"
    found += lab.run(edge, "New-EdgeSubscription", FileName=path, answers=["Yes"]).output
    found += lab.run(edge, "Get-Content", path, Raw=True).output
    found += lab.run(mailbox, "Start-EdgeSynchronization", TargetServer=edge).output
    for command in ("Suspend-Service", "Resume-Service", "Restart-Service"):
        found += lab.run(edge, command, "MSExchangeTransport", PassThru=True).output
    return found
