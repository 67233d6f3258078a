"""The whole certificate change of docs/domain.md §9 in the seed-incident lab, one Edge at a time,
driven by the change engine with phase 03's steps over pypsrp in process (no sockets), the lab's
behaviour checked between them; the tests of traps the engine avoids (F7, F10, the seed
incident) call the lab's backend directly, to show what goes wrong without the engine's order."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from edgebook.certs import thumbprint
from edgebook.change import steps
from edgebook.change.engine import Engine
from edgebook.change.journal import Journal
from edgebook.change.outcome import ApplyResult
from edgebook.change.plan import Plan
from edgebook.change.session import ShellPool
from edgebook.change.step import Step
from edgebook.change.values import FileBytes, Secret
from edgebook.exchange.secure import SecureText
from edgebook.lab.folder import lab_password
from edgebook.lab.org import certstore, mailflow
from edgebook.lab.org.edgesync import LDAP_UNAVAILABLE
from edgebook.lab.org.listener_state import ListenerState, listener_state
from edgebook.lab.org.model import ADAM, TRANSPORT
from edgebook.lab.org.store import clock
from edgebook.phases import resubscribe_steps as rs
from edgebook.phases.resubscribe_checks import subscription_age_check
from tests.support.lab import PASSWORD, Lab, error_instance, lab_copy
from tests.support.resubscribe import CHANGE, InProcessLab

SITE = "Default-First-Site-Name"
HYBRID = "Outbound to Office 365"
INBOUND = f"EdgeSync - Inbound to {SITE}"
INTERNET = f"EdgeSync - {SITE} to Internet"
EDGES = ("EDGE01", "EDGE02")
SUBSCRIPTION_FILE = r"C:\temp\EdgeSubscriptionInfo.xml"
CLOUD_RECIPIENT = "user@contoso.mail.onmicrosoft.com"
INTERNAL_RECIPIENT = "someone@contoso.com"
WAIT_S = 60.0  # real seconds a waiting step may take; each poll lets a lab minute pass
ERR_TLS_NAME = (
    "454 4.7.5 The certificate specified in TlsCertificateName of the SendConnector could not "
    "be found."
)


def make(tmp_path: Path) -> Lab:
    return Lab(lab_copy("seed-incident", tmp_path / "lab"))


def receive_identity(edge: str) -> str:
    return rf"{edge}\Default internal receive connector {edge}"


def tls_name(cert: dict[str, Any]) -> str:
    return f"<I>{cert['Issuer']}<S>{cert['Subject']}"


def import_renewal(lab: Lab, server: str, edge: str) -> dict[str, Any]:
    data = (lab.store.dir / "renewal" / f"{edge}.pfx").read_bytes()
    (cert,) = lab.ok(
        server, "Import-ExchangeCertificate", FileData=data, Password=SecureText(PASSWORD)
    )
    return cert


def served(lab: Lab, edge: str, kind: Literal["smtp", "ldaps"]) -> str | None:
    """Thumbprint of the certificate the Edge's SMTP or LDAPS listener presents now."""
    org = lab.store.read()
    state = listener_state(org, edge, kind, clock(org))
    if state.certificate is None:
        return None
    return thumbprint(x509.load_pem_x509_certificates(state.certificate[0])[0])


def default_thumbprint(lab: Lab, edge: str) -> str:
    (service,) = lab.ok(edge, "Get-TransportService")
    return service["InternalTransportCertificateThumbprint"]


def subscribed_thumbprint(lab: Lab, edge: str) -> str:
    """The Edge certificate the organisation holds from the subscription."""
    (service,) = lab.ok("EX01", "Get-TransportService", edge)
    return service["InternalTransportCertificateThumbprint"]


def last_event_index(lab: Lab, edge: str) -> int:
    events = lab.store.read().server(edge).events
    return events[-1].index if events else 0


def events_since(lab: Lab, edge: str, index: int, event_id: int) -> list[str]:
    return [
        e.message
        for e in lab.store.read().server(edge).events
        if e.index > index and e.event_id == event_id
    ]


def send_mail(lab: Lab, edge: str, *recipients: str) -> None:
    """Mail arriving at the Edge's SMTP listener."""
    mailflow.accept_mail(lab.store, edge, "sender@example.org", list(recipients), b"Subject: t\r\n")


def sync_status(lab: Lab, edge: str) -> tuple[str, str]:
    (status,) = lab.ok(
        "EX01", "Test-EdgeSynchronization", TargetServer=edge, ExcludeRecipientTest=True
    )
    return status["SyncStatus"].text, status["FailureDetail"]


def sources(lab: Lab) -> dict[str, list[str]]:
    return {
        c["Name"]: list(map(str, c["SourceTransportServers"].items))
        for c in lab.ok("EX01", "Get-SendConnector")
    }


class EngineChange:
    """The change engine driving the lab in process (pypsrp, no sockets): the steps of phase 03
    (edgebook.phases.resubscribe_steps, edgebook.change.steps) applied a few at a time so that
    the lab's behaviour can be checked between them; `lab` reads and sends mail directly."""

    def __init__(self, inproc: InProcessLab, journal: Path) -> None:
        self.inproc = inproc
        self.lab = Lab(inproc.store)
        self.journal = Journal(journal)
        self.password = Secret(lab_password(inproc.directory)[1], "the renewal PFX password")

    def pfx(self, edge: str) -> tuple[FileBytes, str]:
        """The scenario's renewal PFX for an Edge, pinned, and its certificate's thumbprint."""
        path = self.inproc.store.dir / "renewal" / f"{edge}.pfx"
        _, cert, _ = pkcs12.load_key_and_certificates(
            path.read_bytes(), self.inproc.password.encode()
        )
        assert cert is not None
        return FileBytes.of(path), thumbprint(cert)

    def apply(self, edge: str, *steps: Step) -> ApplyResult:
        """Apply these steps as one approved plan; lab time passes while a step waits."""
        plan = Plan(CHANGE, edge, "full-change", {}, steps)
        servers = [edge, "EX01"]

        def sleep(_seconds: float) -> None:
            self.lab.store.advance(1)

        with ShellPool(self.inproc.inventory, servers, self.inproc.factory) as shells:
            engine = Engine(
                plan,
                shells,
                self.journal,
                probe=self.inproc.probe,
                check_kept=subscription_age_check,
                sleep=sleep,
            )
            result = engine.apply()
        assert result.completed, result.error
        return result


def answered(result: ApplyResult) -> list[tuple[str, str]]:
    return [(a.message, a.answer) for a in result.answers]


def change_edge(change: EngineChange, edge: str) -> dict[str, Any]:
    """docs/domain.md §9 for one Edge through the engine's steps; returns the new certificate."""
    lab = change.lab
    send_mail(lab, edge, CLOUD_RECIPIENT, INTERNAL_RECIPIENT)
    change.apply(edge, rs.drain(edge, WAIT_S, 0))
    assert all(q["MessageCount"] == 0 for q in lab.ok(edge, "Get-Queue"))
    with pytest.raises(mailflow.MailRefused):
        send_mail(lab, edge, CLOUD_RECIPIENT)
    default = default_thumbprint(lab, edge)
    (old,) = [
        c
        for c in lab.ok(edge, "Get-ExchangeCertificate", DomainName=["hybrid.contoso.com"])
        if not c["IsSelfSigned"]
    ]
    pfx, thumb = change.pfx(edge)
    change.apply(
        edge,
        rs.stop_transport(edge, allow_queued=False),
        rs.import_on_edge(edge, thumb, pfx, change.password, "renewal", exportable=False),
    )
    (new,) = lab.ok(edge, "Get-ExchangeCertificate", thumb)
    assert new["Services"].text == "None"
    assert new["Subject"] == old["Subject"] and new["Issuer"] != old["Issuer"]
    enabled = change.apply(edge, rs.enable_smtp(edge, thumb, default, replace_default=False))
    ((question, answer),) = answered(enabled)
    assert question.startswith("Overwrite the existing default SMTP certificate?")
    assert answer == "No"
    assert default_thumbprint(lab, edge) == default  # answered No: EdgeSync untouched (F12)
    # the trap the engine's order avoids (remove_old comes after the connectors moved): the old
    # certificate cannot go while the hybrid connector names it (F21); a direct lab call
    refused = lab.fails(edge, "Remove-ExchangeCertificate", old["Thumbprint"], Confirm=False)
    assert f"tagged with following Send Connectors : {HYBRID}." in refused
    before = sources(lab)
    subscribed = change.apply(
        edge,
        rs.restart_adam(edge, default),
        rs.subscription_file(edge, CHANGE),
        rs.subscribe("EX01", edge, SITE, default),
        *[
            steps.restore_source_servers("EX01", name, [edge])
            for name, servers in sorted(before.items())
            if edge in servers
        ],
    )
    status = {o.step: o.status for o in subscribed.outcomes}
    # the default stayed (No): AD LDS already presents it on 50636, no restart needed (F7)
    assert status[f"restart-adam-{edge.lower()}"] == "skipped"
    assert status[f"subscribe-{edge.lower()}"] == "done"
    ((question, answer),) = answered(subscribed)  # the subscription renewed on purpose
    assert rs.SUBSCRIBE_QUESTION in question and answer == "Yes"
    assert lab.ok(edge, "Get-Service", TRANSPORT)[0]["Status"].text == "Stopped"
    path = rs.SUBSCRIPTION_PATH.format(change=CHANGE)
    assert lab.run(edge, "Get-Content", path).errors  # no credentials left behind
    assert sources(lab) == before  # F10: the import without new connectors kept them
    tls = tls_name(new)
    moved = change.apply(
        edge,
        steps.stage_certificate("EX01", thumb, pfx, change.password, "renewal"),  # F9
        rs.tls_name("EX01", HYBRID, tls, edge, new["Subject"], new["Issuer"]),
        rs.synchronise("EX01", edge, WAIT_S, 0),
        rs.replicated(edge, HYBRID, tls, WAIT_S, 0),
        rs.receive_tls_name(edge, receive_identity(edge), tls),
        rs.remove_old(edge, old["Thumbprint"], old["Subject"]),  # F2, after F21's connectors
    )
    assert [o.step for o in moved.outcomes if o.status == "done"][-1].startswith("remove-old")
    assert sync_status(lab, edge) == ("Normal", "")
    (replicated,) = lab.ok(edge, "Get-SendConnector", HYBRID)
    assert replicated["TlsCertificateName"].to_string == tls
    (rc,) = lab.ok(edge, "Get-ReceiveConnector", receive_identity(edge))
    assert rc["TlsCertificateName"].to_string == tls
    assert list(map(str, rc["TlsDomainCapabilities"].items)) == [
        "mail.protection.outlook.com:AcceptCloudServicesMail"
    ]
    smtp = listener_state(lab.store.read(), edge, "smtp", lab.store.now())
    assert smtp == ListenerState(False, None)  # stopped: no new connections
    thumbs = {c["Thumbprint"] for c in lab.ok(edge, "Get-ExchangeCertificate")}
    assert thumbs == {default_thumbprint(lab, edge), thumb}
    mark = last_event_index(lab, edge)
    change.apply(
        edge,
        rs.start_transport(edge),
        rs.resume(edge, thumb, default, WAIT_S, 0),  # probes 25 and 50636
    )
    assert served(lab, edge, "smtp") == thumb
    default = default_thumbprint(lab, edge)
    assert served(lab, edge, "ldaps") == default == subscribed_thumbprint(lab, edge)
    send_mail(lab, edge, CLOUD_RECIPIENT, INTERNAL_RECIPIENT)
    assert lab.queue(edge, HYBRID)["MessageCount"] == 0
    assert lab.queue(edge, INBOUND)["MessageCount"] == 0
    assert lab.ok(edge, "Get-Service", TRANSPORT)[0]["Status"].text == "Running"
    assert events_since(lab, edge, mark, 12014) == []
    return new


def test_full_change_one_edge_at_a_time(tmp_path):
    change = EngineChange(InProcessLab(tmp_path / "lab"), tmp_path / "journal.jsonl")
    lab = change.lab
    started = {edge: last_event_index(lab, edge) for edge in EDGES}
    new = change_edge(change, "EDGE01")
    # EDGE02 keeps delivering with its old certificate meanwhile (binding kept until restart)
    send_mail(lab, "EDGE02", CLOUD_RECIPIENT)
    assert lab.queue("EDGE02", HYBRID)["MessageCount"] == 0
    assert change_edge(change, "EDGE02")["Thumbprint"] == new["Thumbprint"]
    marks = {edge: last_event_index(lab, edge) for edge in EDGES}
    lab.store.advance(10)  # traffic keeps flowing (2 + 3 messages a minute per Edge)
    for edge in EDGES:
        queues = lab.ok(edge, "Get-Queue")
        assert [q["Identity"] for q in queues if q["Status"].text == "Retry"] == []
        assert all(q["MessageCount"] == 0 for q in queues)
        assert events_since(lab, edge, marks[edge], 12014) == []
        assert sync_status(lab, edge) == ("Normal", "")
        health = lab.ok(edge, "Get-ServerHealth", edge, HealthSet="EdgeTransport")
        assert {h["Name"]: h["AlertValue"].text for h in health}[
            "Transport.ServerCertMismatch.Monitor"
        ] == "Healthy"
        assert events_since(lab, edge, started[edge], 12013) == []
    assert {s["Name"] for s in lab.ok("EX01", "Get-EdgeSubscription")} == set(EDGES)
    assert {s["SyncStatus"].text for s in lab.ok("EX01", "Test-EdgeSynchronization")} == {"Normal"}


def test_incident_certificate_changed_but_tls_certificate_name_left_on_the_old_issuer(tmp_path):
    # direct lab calls: the incident is what the engine's order (and F21's refusal) prevents
    lab = make(tmp_path)
    new = {}
    for edge in EDGES:
        new = import_renewal(lab, edge, edge)
        lab.ok(
            edge,
            "Enable-ExchangeCertificate",
            new["Thumbprint"],
            Services=["SMTP"],
            answers=["No"],
        )
        (old,) = [
            c
            for c in lab.ok(edge, "Get-ExchangeCertificate")
            if not c["IsSelfSigned"] and c["Thumbprint"] != new["Thumbprint"]
        ]
        refused = lab.fails(edge, "Remove-ExchangeCertificate", old["Thumbprint"], Confirm=False)
        assert refused.startswith(
            f"A special Rpc error occurs on server {edge}: These certificates are tagged with "
            f"following Send Connectors : {HYBRID}."
        )
        # the incident: the old one deleted behind Exchange's back (recent builds refuse F21)
        lab.ok(edge, "Remove-Item", f"Cert:\\LocalMachine\\My\\{old['Thumbprint']}")
        lab.ok(edge, "Restart-Service", TRANSPORT)
        send_mail(lab, edge, CLOUD_RECIPIENT)
    queue = lab.queue("EDGE01", HYBRID)
    assert queue["Status"].text == "Retry"
    assert queue["LastError"] == ERR_TLS_NAME
    events = lab.ok("EDGE01", "Get-EventLog", "Application", InstanceId=[error_instance(12014)])
    assert any("<I>CN=DigiCert Global CA G2" in e["Message"] for e in events)
    assert served(lab, "EDGE01", "smtp") is None  # the receive connector names the old one too
    health = lab.ok("EDGE01", "Get-ServerHealth", "EDGE01", HealthSet="EdgeTransport")
    assert {h["Name"]: h["AlertValue"].text for h in health}[
        "Transport.ServerCertMismatch.Monitor"
    ] == "Degraded"
    # the fix: the new name on EX01 (certificate imported there first, F9), sync, restart
    import_renewal(lab, "EX01", "EDGE01")
    lab.ok("EX01", "Set-SendConnector", HYBRID, TlsCertificateName=tls_name(new))
    marks = {}
    for edge in EDGES:
        lab.ok("EX01", "Start-EdgeSynchronization", TargetServer=edge, ForceFullSync=True)
        lab.ok(
            edge, "Set-ReceiveConnector", receive_identity(edge), TlsCertificateName=tls_name(new)
        )
        assert lab.queue(edge, HYBRID)["LastError"] == ERR_TLS_NAME  # F11 until restarted
        lab.ok(edge, "Restart-Service", TRANSPORT)
        marks[edge] = last_event_index(lab, edge)
    lab.store.advance(5)
    for edge in EDGES:
        queue = lab.queue(edge, HYBRID)
        assert (queue["Status"].text, queue["MessageCount"], queue["LastError"]) == (
            "Ready",
            0,
            None,
        )
        assert served(lab, edge, "smtp") == new["Thumbprint"]
        assert events_since(lab, edge, marks[edge], 12014) == []
        assert sync_status(lab, edge) == ("Normal", "")  # no resubscription was needed


def test_f7_ad_lds_keeps_its_certificate_until_adam_restarts(tmp_path):
    # direct lab calls: the trap restart_adam (and its LDAPS probe) avoids in the engine
    lab = make(tmp_path)
    edge = "EDGE01"
    old_default = default_thumbprint(lab, edge)
    assert served(lab, edge, "ldaps") == old_default == subscribed_thumbprint(lab, edge)
    new = import_renewal(lab, edge, edge)
    lab.ok(edge, "Enable-ExchangeCertificate", new["Thumbprint"], Services=["SMTP"], Force=True)
    assert default_thumbprint(lab, edge) == new["Thumbprint"]  # F12: the new default
    org = lab.store.read()
    chosen = certstore.adam_choice(org.server(edge), clock(org))
    assert chosen is not None and chosen.thumbprint == new["Thumbprint"]  # eligible at next start
    assert served(lab, edge, "ldaps") == old_default  # ...but AD LDS has not restarted
    status, detail = sync_status(lab, edge)
    assert status == "Failed" and "couldn't match certificate" in detail
    lab.ok(edge, "New-EdgeSubscription", FileName=SUBSCRIPTION_FILE, Force=True)
    (data,) = lab.ok(edge, "Get-Content", Path=SUBSCRIPTION_FILE, Encoding="Byte", ReadCount=0)
    lab.ok("EX01", "New-EdgeSubscription", FileData=data, Site=SITE)
    assert subscribed_thumbprint(lab, edge) == new["Thumbprint"]
    assert sync_status(lab, edge) == ("Failed", LDAP_UNAVAILABLE)  # the seed's misleading text
    results = lab.ok("EX01", "Start-EdgeSynchronization", TargetServer=edge)
    assert {r["Result"].text for r in results} == {"CouldNotConnect"}
    assert served(lab, edge, "ldaps") == old_default
    lab.ok(edge, "Restart-Service", ADAM, Force=True)
    assert served(lab, edge, "ldaps") == new["Thumbprint"]
    # transport depends on AD LDS: -Force stopped it, and Restart-Service started it again (it
    # was running), binding its certificates anew
    assert lab.ok(edge, "Get-Service", TRANSPORT)[0]["Status"].text == "Running"
    assert sync_status(lab, edge) == ("Normal", "")
    send_mail(lab, edge, INTERNAL_RECIPIENT)
    assert lab.queue(edge, INBOUND)["MessageCount"] == 0


def test_f10_remove_edge_subscription_and_restore_source_servers(tmp_path):
    # direct lab calls: Remove-EdgeSubscription drops the Edge from the connectors' sources, the
    # trap restore_source_servers repairs after a resubscription
    lab = make(tmp_path)
    before = sources(lab)
    assert before == {HYBRID: ["EDGE01", "EDGE02"], INBOUND: list(EDGES), INTERNET: list(EDGES)}
    lab.ok("EX01", "Remove-EdgeSubscription", "EDGE01", Confirm=False)
    assert sources(lab) == {name: ["EDGE02"] for name in before}  # connectors kept
    assert [s["Name"] for s in lab.ok("EX01", "Get-EdgeSubscription")] == ["EDGE02"]
    # EDGE01 has no server object in the organisation until it is subscribed again
    message = lab.fails(
        "EX01", "Set-SendConnector", HYBRID, SourceTransportServers={"Add": "EDGE01"}
    )
    assert "EDGE01" in message
    lab.ok("EDGE01", "New-EdgeSubscription", FileName=SUBSCRIPTION_FILE, answers=["Yes"])
    (data,) = lab.ok("EDGE01", "Get-Content", Path=SUBSCRIPTION_FILE, Encoding="Byte", ReadCount=0)
    lab.ok(
        "EX01",
        "New-EdgeSubscription",
        FileData=data,
        Site=SITE,
        CreateInboundSendConnector=False,
        CreateInternetSendConnector=False,
    )
    assert sources(lab) == {name: ["EDGE02"] for name in before}
    for name in before:
        lab.ok("EX01", "Set-SendConnector", name, SourceTransportServers={"Add": "EDGE01"})
    assert {name: sorted(s) for name, s in sources(lab).items()} == before
    lab.ok("EX01", "Start-EdgeSynchronization", TargetServer="EDGE01", ForceFullSync=True)
    assert sync_status(lab, "EDGE01") == ("Normal", "")
    replicated = lab.ok("EDGE01", "Get-SendConnector")
    assert {c["Name"] for c in replicated} == set(before)
    send_mail(lab, "EDGE01", CLOUD_RECIPIENT, INTERNAL_RECIPIENT)
    assert lab.queue("EDGE01", HYBRID)["MessageCount"] == 0
    assert lab.queue("EDGE01", INBOUND)["MessageCount"] == 0
