"""Every trap of docs/domain.md §8 happens in the lab (backend called directly, no sockets)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from cryptography import x509

from edgebook.certs import thumbprint, tls_certificate_name
from edgebook.exchange.secure import SecureText
from edgebook.lab.org import mailflow
from edgebook.lab.org.listener_state import served_certificate
from edgebook.lab.org.store import clock
from edgebook.lab.winrm.protocol import CommandCall
from tests.support.lab import PASSWORD, Lab, error_instance, lab_copy

SITE = "Default-First-Site-Name"
HYBRID = "Outbound to Office 365"
INBOUND = f"EdgeSync - Inbound to {SITE}"


def make(tmp_path: Path, scenario: str) -> Lab:
    return Lab(lab_copy(scenario, tmp_path / "lab"))


def renewal(lab: Lab, edge: str = "EDGE01") -> bytes:
    return (lab.store.dir / "renewal" / f"{edge}.pfx").read_bytes()


def import_renewal(lab: Lab, server: str, edge: str = "EDGE01") -> dict:
    (cert,) = lab.ok(
        server,
        "Import-ExchangeCertificate",
        FileData=renewal(lab, edge),
        Password=SecureText(PASSWORD),
    )
    return cert


def subscription_file(lab: Lab, edge: str, **params) -> bytes:
    lab.ok(
        edge,
        "New-EdgeSubscription",
        FileName=r"C:\temp\EdgeSubscriptionInfo.xml",
        Force=True,
        **params,
    )
    (data,) = lab.ok(
        edge, "Get-Content", Path=r"C:\temp\EdgeSubscriptionInfo.xml", Encoding="Byte", ReadCount=0
    )
    return data


def submit(lab: Lab, edge: str, recipient: str, count: int = 5) -> None:
    with lab.store.transaction() as org:
        mailflow.submit_mail(org, edge, count, [recipient], clock(org))


def default_thumbprint(lab: Lab, server: str) -> str:
    thumb = lab.store.read().server(server).internal_transport_thumbprint
    assert thumb is not None, f"{server} has no internal transport certificate"
    return thumb


def served_thumbprint(lab: Lab, edge: str, kind: Literal["smtp", "ldaps"]) -> str | None:
    served = served_certificate(lab.store.read(), edge, kind, lab.store.now())
    return None if served is None else thumbprint(x509.load_pem_x509_certificates(served[0])[0])


def test_f1_edge_certificate_equal_to_a_mailbox_default_is_refused(tmp_path):
    lab = make(tmp_path, "edge-hub-clash")
    data = subscription_file(lab, "EDGE01")
    message = lab.fails("EX01", "New-EdgeSubscription", FileData=data, Site=SITE)
    thumb = default_thumbprint(lab, "EDGE01")
    assert message == (
        "The subscription file failed to load for the following reason: The direct trust "
        f"certificate of the subscribed Edge Transport server with the thumbprint {thumb} is a "
        "duplicate of the certificate of one of the Hubtransport servers. Sharing the same "
        "certificate between Edge and Hub Transport servers is not allowed"
    )
    assert lab.store.read().subscription("EDGE01") is None


def test_f2_two_certificates_with_the_same_subject_break_mutual_tls(tmp_path):
    lab = make(tmp_path, "duplicate-subject")
    queue = lab.queue("EDGE01", HYBRID)
    assert queue["Status"].text == "Retry"
    assert queue["LastError"] == (
        "451 4.4.395 Target host responded with error. -> 421 4.1.1 Connection timed out"
    )
    assert queue["MessageCount"] == 12
    # the other Edge, with a single certificate of that subject, delivers
    submit(lab, "EDGE02", "user@contoso.mail.onmicrosoft.com")
    assert lab.queue("EDGE02", HYBRID)["MessageCount"] == 0


def test_f2_importing_the_renewal_beside_the_old_certificate_stops_outbound_mail(tmp_path):
    lab = make(tmp_path, "seed-incident")
    import_renewal(lab, "EDGE01")  # not enabled for anything, as in the seed
    submit(lab, "EDGE01", "user@contoso.mail.onmicrosoft.com")
    assert lab.queue("EDGE01", HYBRID)["LastError"].startswith("451 4.4.395")


def test_f3_stale_tls_certificate_name_fails_with_454_and_event_12014(tmp_path):
    lab = make(tmp_path, "expired")
    queue = lab.queue("EDGE01", HYBRID)
    assert queue["Status"].text == "Retry"
    assert queue["NextHopDomain"] == "contoso-com.mail.protection.outlook.com"
    assert queue["LastError"] == (
        "454 4.7.5 The certificate specified in TlsCertificateName of the SendConnector could "
        "not be found."
    )
    events = lab.ok("EDGE01", "Get-EventLog", LogName="Application", Source="MSExchangeTransport")
    assert 12014 in [e["EventID"] for e in events]
    before = queue["MessageCount"]
    lab.store.advance(10)
    assert lab.queue("EDGE01", HYBRID)["MessageCount"] == before + 20  # 2 messages a minute


def test_f4_tls_certificate_name_over_256_characters_is_not_replicated(tmp_path):
    lab = make(tmp_path, "healthy")
    long_subject = ", ".join(f"OU=Department of Certificate Renewal Number {i}" for i in range(6))
    (cert,) = lab.ok(
        "EX01",
        "New-ExchangeCertificate",
        SubjectName=f"CN=hybrid.contoso.com, {long_subject}",
        DomainName=["hybrid.contoso.com"],
        Services=["None"],
    )
    name = f"<I>{cert['Issuer']}<S>{cert['Subject']}"
    assert len(name) > 256
    old = lab.ok("EDGE01", "Get-SendConnector", HYBRID)[0]["TlsCertificateName"]
    lab.ok("EX01", "Set-SendConnector", HYBRID, TlsCertificateName=name)
    results = lab.ok("EX01", "Start-EdgeSynchronization", TargetServer="EDGE01", ForceFullSync=True)
    config = next(r for r in results if r["Type"].text == "Configuration")
    assert config["Result"].text == "Incomplete"
    assert "CN=Outbound to Office 365" in config["FailureDetails"]
    replicated = lab.ok("EDGE01", "Get-SendConnector", HYBRID)[0]["TlsCertificateName"]
    assert replicated.to_string == old.to_string


def test_f5_non_exportable_key_cannot_be_exported(tmp_path):
    lab = make(tmp_path, "seed-incident")
    old = next(c for c in lab.ok("EDGE01", "Get-ExchangeCertificate") if not c["IsSelfSigned"])
    assert old["PrivateKeyExportable"] is False
    message = lab.fails(
        "EDGE01",
        "Export-ExchangeCertificate",
        old["Thumbprint"],
        BinaryEncoded=True,
        Password=SecureText("x"),
    )
    assert "exportable" in message
    hcw_copy = next(c for c in lab.ok("EX01", "Get-ExchangeCertificate") if not c["IsSelfSigned"])
    (exported,) = lab.ok(
        "EX01",
        "Export-ExchangeCertificate",
        hcw_copy["Thumbprint"],
        BinaryEncoded=True,
        Password=SecureText("x"),
    )
    assert exported["FileData"][:1] == b"\x30"


def test_f7_ad_lds_serves_the_old_certificate_until_adam_restarts(tmp_path):
    lab = make(tmp_path, "seed-incident")
    new = import_renewal(lab, "EDGE01")
    old_ldaps = served_thumbprint(lab, "EDGE01", "ldaps")
    lab.ok("EDGE01", "Enable-ExchangeCertificate", new["Thumbprint"], Services=["SMTP"], Force=True)
    data = subscription_file(lab, "EDGE01")
    lab.ok(
        "EX01",
        "New-EdgeSubscription",
        FileData=data,
        Site=SITE,
        CreateInboundSendConnector=False,
        CreateInternetSendConnector=False,
    )
    (status,) = lab.ok(
        "EX01", "Test-EdgeSynchronization", TargetServer="EDGE01", ExcludeRecipientTest=True
    )
    assert status["SyncStatus"].text == "Failed"
    assert status["FailureDetail"] == "SubscriptionConnectionError(LDAP server unavailable)"
    assert served_thumbprint(lab, "EDGE01", "ldaps") == old_ldaps
    lab.ok("EDGE01", "Restart-Service", "ADAM_MSExchange", Force=True)
    assert served_thumbprint(lab, "EDGE01", "ldaps") == new["Thumbprint"]
    (status,) = lab.ok("EX01", "Test-EdgeSynchronization", TargetServer="EDGE01")
    assert status["SyncStatus"].text == "Normal"


def test_f8_subscription_file_older_than_its_lifetime_is_refused(tmp_path):
    lab = make(tmp_path, "healthy")
    data = subscription_file(lab, "EDGE01")
    lab.store.advance(1441)
    message = lab.fails("EX01", "New-EdgeSubscription", FileData=data, Site=SITE)
    assert message.startswith("The subscription file failed to load for the following reason:")
    assert "expired" in message
    fresh = subscription_file(lab, "EDGE01", AccountExpiryDuration="00:10:00")
    lab.store.advance(5)
    lab.ok("EX01", "New-EdgeSubscription", FileData=fresh, Site=SITE)


def test_f9_set_send_connector_needs_the_certificate_on_that_server(tmp_path):
    lab = make(tmp_path, "seed-incident")
    new_name = tls_certificate_name(
        x509.load_der_x509_certificate(import_renewal(lab, "EDGE01")["RawData"])
    )
    message = lab.fails("EX02", "Set-SendConnector", HYBRID, TlsCertificateName=new_name)
    assert "couldn't be found on server EX02" in message
    import_renewal(lab, "EX02")
    lab.ok("EX02", "Set-SendConnector", HYBRID, TlsCertificateName=new_name)
    assert (
        lab.ok("EX01", "Get-SendConnector", HYBRID)[0]["TlsCertificateName"].to_string == new_name
    )


def test_f10_remove_edge_subscription_strips_sources_and_deletes_sole_source_connectors(tmp_path):
    lab = make(tmp_path, "healthy")
    lab.ok("EX01", "Remove-EdgeSubscription", "EDGE01", Confirm=False)
    connectors = lab.ok("EX01", "Get-SendConnector")
    assert {c["Name"] for c in connectors} == {HYBRID, INBOUND, f"EdgeSync - {SITE} to Internet"}
    assert all(list(map(str, c["SourceTransportServers"].items)) == ["EDGE02"] for c in connectors)
    lab.ok("EX01", "Remove-EdgeSubscription", "EDGE02", Confirm=False)
    assert lab.ok("EX01", "Get-SendConnector") == []


def test_f11_transport_keeps_the_old_certificate_until_restarted(tmp_path):
    lab = make(tmp_path, "seed-incident")
    old = served_thumbprint(lab, "EDGE01", "smtp")
    new = import_renewal(lab, "EDGE01")
    lab.ok(
        "EDGE01", "Enable-ExchangeCertificate", new["Thumbprint"], Services=["SMTP"], answers=["No"]
    )
    name = f"<I>{new['Issuer']}<S>{new['Subject']}"
    lab.ok(
        "EDGE01",
        "Set-ReceiveConnector",
        r"EDGE01\Default internal receive connector EDGE01",
        TlsCertificateName=name,
    )
    assert served_thumbprint(lab, "EDGE01", "smtp") == old
    lab.ok("EDGE01", "Restart-Service", "MSExchangeTransport")
    assert served_thumbprint(lab, "EDGE01", "smtp") == new["Thumbprint"]


def test_f12_enable_smtp_with_force_replaces_the_default_and_breaks_edgesync(tmp_path):
    lab = make(tmp_path, "healthy")
    before = default_thumbprint(lab, "EDGE01")
    (cert,) = lab.ok("EDGE01", "New-ExchangeCertificate", Services=["None"])
    lab.ok(
        "EDGE01",
        "Enable-ExchangeCertificate",
        cert["Thumbprint"],
        Services=["SMTP"],
        Confirm=False,  # does not answer the question (only -Force does)
        answers=["No"],
    )
    assert lab.questions[-1][1].startswith("Overwrite the existing default SMTP certificate?")
    assert default_thumbprint(lab, "EDGE01") == before
    lab.ok(
        "EDGE01", "Enable-ExchangeCertificate", cert["Thumbprint"], Services=["SMTP"], Force=True
    )
    assert default_thumbprint(lab, "EDGE01") == cert["Thumbprint"]
    (status,) = lab.ok("EX01", "Test-EdgeSynchronization", TargetServer="EDGE01")
    assert status["SyncStatus"].text == "Failed"
    submit(lab, "EDGE01", "someone@contoso.com")
    assert "454 4.7.0 Temporary authentication failure" in lab.queue("EDGE01", INBOUND)["LastError"]
    data = subscription_file(lab, "EDGE01")
    lab.ok("EX01", "New-EdgeSubscription", FileData=data, Site=SITE)
    lab.ok("EDGE01", "Restart-Service", "ADAM_MSExchange", Force=True)
    lab.ok("EDGE01", "Start-Service", "MSExchangeTransport")
    (status,) = lab.ok("EX01", "Test-EdgeSynchronization", TargetServer="EDGE01")
    assert status["SyncStatus"].text == "Normal"
    assert lab.queue("EDGE01", INBOUND)["MessageCount"] == 0


def test_f14_default_certificate_deleted_breaks_edge_to_mailbox(tmp_path):
    lab = make(tmp_path, "healthy")
    default = default_thumbprint(lab, "EDGE01")
    message = lab.fails("EDGE01", "Remove-ExchangeCertificate", default, Confirm=False)
    assert message.startswith(
        "A special Rpc error occurs on server EDGE01: The internal transport certificate cannot "
        "be removed"
    )
    lab.ok("EDGE01", "Remove-Item", rf"Cert:\LocalMachine\My\{default}")
    submit(lab, "EDGE01", "someone@contoso.com")
    queue = lab.queue("EDGE01", INBOUND)
    assert queue["Status"].text == "Retry"
    assert queue["LastError"] == (
        "451 4.4.395 Target host responded with error. -> "
        "454 4.7.0 Temporary authentication failure"
    )
    events = lab.ok("EDGE01", "Get-EventLog", "Application", InstanceId=[error_instance(12013)])
    assert default in events[0]["Message"]
    # PowerShell compares the whole InstanceId: the event ID alone matches nothing
    alone = lab.run("EDGE01", "Get-EventLog", "Application", InstanceId=["12013"])
    assert alone.output == [] and [e.message for e in alone.errors] == ["No matches found"]


def test_f15_certificate_selected_by_fqdn_without_smtp(tmp_path):
    lab = make(tmp_path, "healthy")
    (cert,) = lab.ok(
        "EDGE01",
        "New-ExchangeCertificate",
        SubjectName="CN=relay.contoso.com",
        DomainName=["relay.contoso.com"],
        Services=["None"],
    )
    lab.ok("EX01", "Set-SendConnector", HYBRID, TlsCertificateName=None, Fqdn="relay.contoso.com")
    lab.ok("EX01", "Start-EdgeSynchronization", TargetServer="EDGE01")
    lab.ok("EDGE01", "Restart-Service", "MSExchangeTransport")
    submit(lab, "EDGE01", "user@contoso.mail.onmicrosoft.com")
    error = lab.queue("EDGE01", HYBRID)["LastError"]
    assert error.startswith('451 4.4.0 Primary target IP address responded with: "421 4.4.1')
    lab.ok(
        "EDGE01",
        "Enable-ExchangeCertificate",
        cert["Thumbprint"],
        Services=["SMTP"],
        answers=["No"],
    )
    lab.ok("EDGE01", "Restart-Service", "MSExchangeTransport")
    assert lab.queue("EDGE01", HYBRID)["MessageCount"] == 0


def test_f17_receive_connector_lost_hybrid_tls_domain_capabilities(tmp_path):
    lab = make(tmp_path, "healthy")
    identity = r"EDGE01\Default internal receive connector EDGE01"
    (rc,) = lab.ok("EDGE01", "Get-ReceiveConnector", identity)
    assert list(map(str, rc["TlsDomainCapabilities"].items)) == [
        "mail.protection.outlook.com:AcceptCloudServicesMail"
    ]
    lab.ok(
        "EDGE01",
        "Set-ReceiveConnector",
        identity,
        TlsDomainCapabilities={"Remove": "mail.protection.outlook.com:AcceptCloudServicesMail"},
    )
    (rc,) = lab.ok("EDGE01", "Get-ReceiveConnector", identity)
    assert rc["TlsDomainCapabilities"].items == []
    assert not mailflow.cloud_mail_internal(lab.store.read(), "EDGE01")
    assert mailflow.cloud_mail_internal(lab.store.read(), "EDGE02")


def test_event_12018_when_the_smtp_certificate_expires_soon(tmp_path):
    lab = make(tmp_path, "seed-incident")
    events = lab.ok(
        "EDGE01",
        "Get-EventLog",
        LogName="Application",
        Source=["MSExchangeTransport"],
        InstanceId=[error_instance(12018)],
        Newest=1,
    )
    assert (
        "The STARTTLS certificate will expire soon: subject: hybrid.contoso.com"
        in events[0]["Message"]
    )
    assert "hours remaining: 23" in events[0]["Message"]  # 239-240 hours
    health = lab.ok("EDGE01", "Get-ServerHealth", "EDGE01", HealthSet="EdgeTransport")
    expiring = next(h for h in health if h["Name"] == "Transport.ServerCertExpireSoon.Monitor")
    assert expiring["AlertValue"].text == "Degraded"


@pytest.mark.parametrize("scenario", ["healthy"])
def test_healthy_mail_drains_and_edgesync_is_normal(tmp_path, scenario):
    lab = make(tmp_path, scenario)
    submit(lab, "EDGE01", "user@contoso.mail.onmicrosoft.com")
    submit(lab, "EDGE01", "user@contoso.com")
    assert lab.queue("EDGE01", HYBRID)["MessageCount"] == 0
    statuses = lab.ok("EX01", "Test-EdgeSynchronization")
    assert [s["SyncStatus"].text for s in statuses] == ["Normal", "Normal"]
    assert lab.pipeline("EDGE01", [CommandCall("Get-Queue")]).terminating is None
