"""Exchange's own behaviour where a runbook would be misled (issue #10 item 3): parameter sets,
enum values and dependencies refused with PowerShell's errors, pipeline binding, documented
parameters that act (or are refused as not simulated), queue cmdlets, documented output
properties, and the traps F21 and F22."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from edgebook.certs import thumbprint
from edgebook.lab.cmdlets.binding import AMBIGUOUS_SET, INPUT_NOT_BOUND
from edgebook.lab.org.store import LabStore
from edgebook.lab.winrm.protocol import CommandCall
from tests.support.lab import PASSWORD, Lab, lab_copy

HYBRID = "Outbound to Office 365"
INTERNET = "EdgeSync - Default-First-Site-Name to Internet"
DECRYPT = "EdgeSync failed to decrypt the credential for Edge Transport server edge01.contoso.com"


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    return Lab(lab_copy("healthy", tmp_path / "lab"))


def terminating(lab: Lab, server: str, *calls: CommandCall) -> tuple[str, str]:
    result = lab.pipeline(server, list(calls))
    assert result.terminating is not None, result.output
    return result.terminating.message, result.terminating.fully_qualified_error_id


def thumbprints(lab: Lab, server: str) -> set[str]:
    return {c["Thumbprint"] for c in lab.ok(server, "Get-ExchangeCertificate")}


def hybrid_thumbprint(lab: Lab, server: str = "EDGE01") -> str:
    return next(
        c["Thumbprint"]
        for c in lab.ok(server, "Get-ExchangeCertificate")
        if str(c["Subject"]).startswith("CN=hybrid.contoso.com")
    )


# --- parameter sets, enum values, dependencies -------------------------------------------------


def test_generate_request_with_services_is_an_ambiguous_parameter_set(lab):
    before = thumbprints(lab, "EDGE01")
    message, fqid = terminating(
        lab,
        "EDGE01",
        CommandCall("New-ExchangeCertificate", {"GenerateRequest": True, "Services": "SMTP"}),
    )
    assert message == AMBIGUOUS_SET
    assert fqid.startswith("AmbiguousParameterSet,")
    assert thumbprints(lab, "EDGE01") == before


def test_identity_with_server_is_an_ambiguous_parameter_set(lab):
    thumb = hybrid_thumbprint(lab)
    message, _ = terminating(
        lab,
        "EDGE01",
        CommandCall("Get-ExchangeCertificate", {"Identity": thumb, "Server": "EDGE01"}),
    )
    assert message == AMBIGUOUS_SET


def test_enum_values_are_checked_with_powershells_text(lab):
    message, fqid = terminating(
        lab,
        "EX01",
        CommandCall("Set-SendConnector", {"Identity": HYBRID, "TlsAuthLevel": "Domain"}),
    )
    assert message == (
        "Cannot bind parameter 'TlsAuthLevel'. Cannot convert value \"Domain\" to type "
        '"Microsoft.Exchange.Data.TlsAuthLevel". Error: "Unable to match the identifier name '
        "Domain to a valid enumerator name. Specify one of the following enumerator names and "
        'try again:\r\nEncryptionOnly, CertificateValidation, DomainValidation"'
    )
    assert fqid.startswith("CannotConvertArgumentNoMessage,")
    services = lab.fails("EDGE01", "New-ExchangeCertificate", Services="SMTP,Pop3")
    assert "Unable to match the identifier name Pop3 to a valid enumerator name" in services


def test_domain_validation_needs_require_tls_and_tls_domain(lab):
    before = lab.ok("EX01", "Get-SendConnector", INTERNET)[0]
    refused = lab.fails("EX01", "Set-SendConnector", INTERNET, TlsAuthLevel="DomainValidation")
    assert "while RequireTLS is $false" in refused
    refused = lab.fails(
        "EX01", "Set-SendConnector", INTERNET, TlsAuthLevel="DomainValidation", RequireTLS=True
    )
    assert "needs TlsDomain" in refused
    after = lab.ok("EX01", "Get-SendConnector", INTERNET)[0]
    assert (after["TlsAuthLevel"], after["RequireTLS"]) == (before["TlsAuthLevel"], False)
    lab.ok(
        "EX01",
        "Set-SendConnector",
        INTERNET,
        TlsAuthLevel="DomainValidation",
        RequireTLS=True,
        TlsDomain="contoso.com",
    )
    assert str(lab.ok("EX01", "Get-SendConnector", INTERNET)[0]["TlsAuthLevel"]) == (
        "DomainValidation"
    )
    # IgnoreSTARTTLS $true contradicts a TlsAuthLevel the connector has
    assert "IgnoreSTARTTLS is $true" in lab.fails(
        "EX01", "Set-SendConnector", HYBRID, IgnoreSTARTTLS=True
    )


def test_set_send_connector_takes_the_documented_parameters_get_shows_them(lab):
    lab.ok(
        "EX01", "Set-SendConnector", INTERNET, SmartHostAuthMechanism="ExchangeServer", Force=None
    )
    (connector,) = lab.ok("EX01", "Get-SendConnector", INTERNET)
    assert (
        str(connector["SmartHostAuthMechanism"]),
        connector["SmartHostAuthMechanism"].value,
    ) == (
        "ExchangeServer",
        8,
    )
    assert connector["IgnoreSTARTTLS"] is False and "Comment" in connector.properties


def test_a_switch_sent_without_a_value_is_present(lab):
    (new,) = lab.ok("EDGE01", "New-ExchangeCertificate", Services="None", SubjectName="CN=x.new")
    default = lab.store.read().server("EDGE01").internal_transport_thumbprint
    lab.ok("EDGE01", "Enable-ExchangeCertificate", new["Thumbprint"], Services="SMTP", Force=None)
    assert lab.store.read().server("EDGE01").internal_transport_thumbprint != default


# --- documented parameters act, or are refused as not simulated --------------------------------


def test_subject_name_alone_keeps_the_default_names_and_adds_its_cn(lab):
    (cert,) = lab.ok(
        "EDGE01", "New-ExchangeCertificate", Services="None", SubjectName="CN=mail.contoso.com"
    )
    assert list(cert["CertificateDomains"].items) == [
        "mail.contoso.com",
        "EDGE01",
        "edge01.contoso.com",
    ]


def test_include_switches_add_their_names(lab):
    (cert,) = lab.ok(
        "EDGE01",
        "New-ExchangeCertificate",
        Services="None",
        SubjectName="CN=edge.contoso.com",
        IncludeServerFQDN=True,
        IncludeAcceptedDomains=True,
        IncludeAutoDiscover=True,
    )
    assert list(cert["CertificateDomains"].items) == [
        "edge.contoso.com",
        "edge01.contoso.com",
        "contoso.com",
        "contoso.mail.onmicrosoft.com",
        "autodiscover.contoso.com",
        "autodiscover.contoso.mail.onmicrosoft.com",
    ]
    (netbios,) = lab.ok(  # a request: its text
        "EDGE01",
        "New-ExchangeCertificate",
        GenerateRequest=True,
        SubjectName="CN=edge.contoso.com",
        IncludeServerNetBIOSName=True,
    )
    san = x509.load_pem_x509_csr(netbios.encode()).extensions
    names = san.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["edge.contoso.com", "EDGE01"]


def test_include_accepted_domains_enables_smtp_only(lab):
    (cert,) = lab.ok("EX01", "New-ExchangeCertificate", IncludeAcceptedDomains=True, Force=True)
    assert str(cert["Services"]) == "SMTP"


def test_unsimulated_parameters_are_refused_clearly(lab):
    for server, cmdlet, params in (
        ("EX01", "Test-EdgeSynchronization", {"VerifyRecipient": "a@contoso.com"}),
        ("EX01", "Start-EdgeSynchronization", {"ForceUpdateCookie": True}),
        ("EDGE01", "New-ExchangeCertificate", {"SubjectKeyIdentifier": "00AA"}),
        ("EDGE01", "Get-Queue", {"BookmarkIndex": 2}),
    ):
        message = lab.fails(server, cmdlet, **params)
        name = next(iter(params))
        assert message.startswith(
            f"The edgebook lab does not simulate the {name} parameter of {cmdlet} ("
        ), message


def test_force_full_sync_replicates_everything(lab):
    results = lab.ok("EX01", "Start-EdgeSynchronization", TargetServer="EDGE01", ForceFullSync=None)
    assert {str(r["Result"]) for r in results} == {"Success"}


def test_verify_recipient_cannot_join_the_default_set(lab):
    message, _ = terminating(
        lab,
        "EX01",
        CommandCall(
            "Test-EdgeSynchronization", {"VerifyRecipient": "a@contoso.com", "TargetServer": "x"}
        ),
    )
    assert message == AMBIGUOUS_SET


# --- pipeline binding --------------------------------------------------------------------------


def test_piped_certificate_renews_it_as_a_request(lab):
    thumb = hybrid_thumbprint(lab)
    (old,) = lab.ok("EDGE01", "Get-ExchangeCertificate", thumb)
    result = lab.pipeline(
        "EDGE01",
        [
            CommandCall("Get-ExchangeCertificate", {"Thumbprint": thumb}),
            CommandCall("New-ExchangeCertificate", {"GenerateRequest": None}),
        ],
    )
    assert result.terminating is None and not result.errors
    (text,) = result.output  # the request's text; the pending request is in the store
    pending = lab.ok("EDGE01", "Get-ExchangeCertificate")
    (request,) = [c for c in pending if str(c["Status"]) == "PendingRequest"]
    assert request["Subject"] == old["Subject"]
    assert list(request["CertificateDomains"].items) == list(old["CertificateDomains"].items)
    csr = x509.load_pem_x509_csr(text.encode())
    assert csr.subject == x509.load_der_x509_certificate(old["RawData"]).subject
    assert csr.public_key().key_size == old["PublicKeySize"]


def test_piped_certificate_binds_by_thumbprint_within_its_parameter_set(lab):
    thumb = hybrid_thumbprint(lab)
    result = lab.pipeline(
        "EDGE01",
        [
            CommandCall("Get-ExchangeCertificate", {"Thumbprint": thumb}),
            CommandCall("Get-ExchangeCertificate"),
        ],
    )
    assert result.terminating is None and not result.errors  # not the deprecated -Instance
    assert [c["Thumbprint"] for c in result.output] == [thumb]


def test_piped_input_that_binds_to_nothing_is_an_error(lab):
    thumb = hybrid_thumbprint(lab)
    result = lab.pipeline(
        "EDGE01",
        [
            CommandCall("Get-ExchangeCertificate", {"Thumbprint": thumb}),
            CommandCall("Get-Date"),
        ],
    )
    assert [e.message for e in result.errors] == [INPUT_NOT_BOUND]
    assert result.errors[0].fully_qualified_error_id.startswith("InputObjectNotBound,")
    assert result.output == []
    # the pipeline parameter already bound by name: the input binds to nothing either
    result = lab.pipeline(
        "EDGE01",
        [
            CommandCall("Get-ExchangeCertificate", {"Thumbprint": thumb}),
            CommandCall("Export-ExchangeCertificate", {"Thumbprint": thumb}),
        ],
    )
    assert [e.message for e in result.errors] == [INPUT_NOT_BOUND]


# --- queues ------------------------------------------------------------------------------------


@pytest.fixture
def retrying(tmp_path: Path) -> Lab:
    """duplicate-subject, built afresh (its queues fill with the clock): EDGE01's queue to
    Office 365 retries (F2)."""
    LabStore.create(tmp_path / "lab", "duplicate-subject", PASSWORD)
    return Lab(LabStore(tmp_path / "lab"))


def test_get_queue_filters_with_and_contains_include_exclude(retrying):
    lab = retrying
    found = lab.ok(
        "EDGE01",
        "Get-Queue",
        Filter="Status -eq 'Retry' -and LastError -contains '4.4.395' -and MessageCount -gt 0",
    )
    (queue,) = found
    assert queue["NextHopConnector"] == lab.ok("EDGE01", "Get-SendConnector", HYBRID)[0]["Guid"]
    assert lab.ok("EDGE01", "Get-Queue", Filter="Status -eq 'Retry' -and MessageCount -eq 0") == []
    external = {q["Identity"] for q in lab.ok("EDGE01", "Get-Queue", Include=["External"])}
    internal = {q["Identity"] for q in lab.ok("EDGE01", "Get-Queue", Exclude=["External"])}
    everything = {q["Identity"] for q in lab.ok("EDGE01", "Get-Queue")}
    assert queue["Identity"] in external and external.isdisjoint(internal)
    assert external | internal == everything
    assert "isn't valid" in lab.fails("EDGE01", "Get-Queue", Filter="Status -matches 'R'")


def test_suspend_retry_resume_a_queue(retrying):
    lab = retrying
    queue = lab.queue("EDGE01", HYBRID)
    count, retries = queue["MessageCount"], queue["RetryCount"]
    lab.ok("EDGE01", "Retry-Queue", queue["Identity"])
    assert lab.queue("EDGE01", HYBRID)["RetryCount"] == retries + 1  # connected now
    lab.ok("EDGE01", "Suspend-Queue", Filter="Status -eq 'Retry'", Server="EDGE01")
    assert str(lab.queue("EDGE01", HYBRID)["Status"]) == "Suspended"
    lab.store.advance(10)
    suspended = lab.queue("EDGE01", HYBRID)
    assert str(suspended["Status"]) == "Suspended"
    assert suspended["RetryCount"] == retries + 1  # no connection attempts while suspended
    assert suspended["MessageCount"] >= count
    lab.ok("EDGE01", "Resume-Queue", queue["Identity"])
    assert str(lab.queue("EDGE01", HYBRID)["Status"]) == "Retry"  # still failing (F2)
    both = lab.fails(
        "EDGE01", "Suspend-Queue", Identity=queue["Identity"], Filter="Status -eq 'Retry'"
    )
    assert both == AMBIGUOUS_SET
    positional = lab.fails("EDGE01", "Suspend-Queue", queue["Identity"], Filter="Status -eq 'R'")
    assert positional.startswith("A positional parameter cannot be found")  # Filter set only
    assert "Resubmit" in lab.fails("EDGE01", "Retry-Queue", queue["Identity"], Resubmit=True)


# --- output properties -------------------------------------------------------------------------


def test_certificate_object_carries_the_documented_properties(lab):
    thumb = hybrid_thumbprint(lab)
    (cert,) = lab.ok("EDGE01", "Get-ExchangeCertificate", thumb)
    parsed = x509.load_der_x509_certificate(cert["RawData"])
    serial = parsed.serial_number.to_bytes((parsed.serial_number.bit_length() + 8) // 8, "big")
    assert cert["SerialNumber"] == serial.hex().upper()
    assert [str(e) for e in cert["EnhancedKeyUsageList"].items] == [
        "Server Authentication (1.3.6.1.5.5.7.3.1)",
        "Client Authentication (1.3.6.1.5.5.7.3.2)",
    ]
    assert list(cert["DnsNameList"].items) == list(cert["CertificateDomains"].items)
    assert cert["SubjectName"]["Name"] == cert["Subject"]
    assert cert["IssuerName"]["Name"] == cert["Issuer"]
    assert cert["SubjectName"]["RawData"] == parsed.subject.public_bytes()
    assert (cert["SignatureAlgorithm"]["FriendlyName"], cert["SignatureAlgorithm"]["Value"]) == (
        "sha256RSA",
        "1.2.840.113549.1.1.11",
    )
    ski = parsed.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert cert["KeyIdentifier"] == ski.hex().upper()
    assert cert.wire_properties()[0].keys() == {"RawData"}  # the wire: as Exchange sends it


def test_serial_number_keeps_the_leading_zero_byte(lab):
    for cert in lab.ok("EDGE01", "Get-ExchangeCertificate"):
        parsed = x509.load_der_x509_certificate(cert["RawData"])
        der = parsed.public_bytes(serialization.Encoding.DER)
        assert thumbprint(parsed) == cert["Thumbprint"] and der == cert["RawData"]
        assert int(cert["SerialNumber"], 16) == parsed.serial_number
        assert len(cert["SerialNumber"]) % 2 == 0
        if parsed.serial_number.bit_length() % 8 == 0:
            assert cert["SerialNumber"].startswith("00")


def test_test_edge_synchronization_statuses_are_the_documented_enum(lab):
    (status,) = lab.ok(
        "EX01", "Test-EdgeSynchronization", TargetServer="EDGE01", FullCompareMode=None
    )
    assert (str(status["SyncStatus"]), status["SyncStatus"].value) == ("Normal", 1)
    assert str(status["TransportConfigStatus"]["SyncStatus"]) == "Synchronized"
    # without -ExcludeRecipientTest the recipients are compared too
    assert str(status["RecipientStatus"]["SyncStatus"]) == "Synchronized"


# --- F21 and F22 -------------------------------------------------------------------------------


def test_f21_a_certificate_a_send_connector_names_cannot_be_removed(lab):
    thumb = hybrid_thumbprint(lab)
    message = lab.fails("EDGE01", "Remove-ExchangeCertificate", thumb, Confirm=False)
    assert message == (
        "A special Rpc error occurs on server EDGE01: "
        f"These certificates are tagged with following Send Connectors : {HYBRID}. Removing and "
        "replacing certificates from Send Connector would break the mail flow. If you still want "
        "to proceed then replace or remove these certificates from Send Connector and then try "
        "this command."
    )
    assert thumb in thumbprints(lab, "EDGE01")
    assert thumb in thumbprints(lab, "EX01")
    assert "tagged with following Send Connectors" in lab.fails(
        "EX01", "Remove-ExchangeCertificate", thumb, Confirm=False
    )


def test_f22_a_new_mailbox_default_breaks_edgesync_from_that_mailbox(lab):
    (new,) = lab.ok("EX01", "New-ExchangeCertificate", SubjectName="CN=EX01", Force=True)
    (status,) = lab.ok("EX01", "Test-EdgeSynchronization", TargetServer="EDGE01")
    assert str(status["SyncStatus"]) == "Failed"
    assert status["FailureDetail"] == (
        f"{DECRYPT} using the private key of the default Exchange certificate with exception Bad "
        f"Data. The certificate's thumbprint is {new['Thumbprint']} and its subject is CN=EX01. "
        "Use either Enable-ExchangeCertificate or New-ExchangeCertificate to set the proper "
        "Exchange default certificate and re-subscribe the Edge Transport server "
        "edge01.contoso.com again."
    )
    results = lab.ok("EX01", "Start-EdgeSynchronization", TargetServer="EDGE01")
    assert {str(r["Result"]) for r in results} == {"CouldNotConnect"}


def test_f22_scenario_and_its_two_fixes(tmp_path):
    lab = Lab(lab_copy("mailbox-default-replaced", tmp_path / "lab"))
    (status,) = lab.ok("EX01", "Test-EdgeSynchronization", TargetServer="EDGE01")
    assert str(status["SyncStatus"]) == "Failed" and status["FailureDetail"].startswith(DECRYPT)
    # fix 1: the previous default (the self-signed CN=EX01) made the default again
    (previous,) = [c for c in lab.ok("EX01", "Get-ExchangeCertificate") if c["IsSelfSigned"]]
    current = lab.store.read().server("EX01").internal_transport_thumbprint
    lab.ok(
        "EX01", "Enable-ExchangeCertificate", previous["Thumbprint"], Services="SMTP", Force=True
    )
    (status,) = lab.ok("EX01", "Test-EdgeSynchronization", TargetServer="EDGE01")
    assert str(status["SyncStatus"]) == "Normal"
    # fix 2: keep the new default and subscribe the Edge again
    lab.ok("EX01", "Enable-ExchangeCertificate", current, Services="SMTP", Force=True)
    (status,) = lab.ok("EX01", "Test-EdgeSynchronization", TargetServer="EDGE01")
    assert str(status["SyncStatus"]) == "Failed"
    lab.ok("EDGE01", "New-EdgeSubscription", FileName=r"C:\temp\sub.xml", Force=True)
    (data,) = lab.ok("EDGE01", "Get-Content", Path=r"C:\temp\sub.xml", Encoding="Byte", ReadCount=0)
    lab.ok(
        "EX01",
        "New-EdgeSubscription",
        FileData=data,
        Site="Default-First-Site-Name",
        CreateInboundSendConnector=False,
        CreateInternetSendConnector=False,
    )
    (status,) = lab.ok("EX01", "Test-EdgeSynchronization", TargetServer="EDGE01")
    assert str(status["SyncStatus"]) == "Normal"
