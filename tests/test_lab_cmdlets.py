"""Cmdlets: PowerShell binding and errors, snap-in and endpoint rules, Exchange-shaped output."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from edgebook.exchange import wire_types as T
from edgebook.exchange.secure import SecureText
from edgebook.lab.cmdlets.faults import set_fault, set_service_failure
from edgebook.lab.cmdlets.utility import DISPLAY_HINT_TYPE
from edgebook.lab.org import mailflow, pki
from edgebook.lab.org.listener_state import served_certificate
from edgebook.lab.org.store import clock
from edgebook.lab.winrm.objects import ExEnum
from edgebook.lab.winrm.protocol import CommandCall, Session
from tests.support.lab import PASSWORD, Lab, lab_copy


@pytest.fixture
def lab(tmp_path) -> Lab:
    return Lab(lab_copy("healthy", tmp_path / "lab"))


def test_edge_needs_the_snapin_for_exchange_cmdlets(lab):
    session = Session("EDGE01", "Microsoft.PowerShell")
    get = [CommandCall("Get-ExchangeCertificate")]
    result = lab.backend.invoke(session, [get], [])
    assert result.terminating.message.startswith(
        "The term 'Get-ExchangeCertificate' is not recognized"
    )
    assert result.terminating.exception_type.endswith("CommandNotFoundException")
    add = [CommandCall("Add-PSSnapin", {"Name": T.EXCHANGE_SNAPIN})]
    result = lab.backend.invoke(session, [add, [CommandCall("Get-PSSnapin")], get], [])
    assert result.terminating is None
    names = [s["Name"] for s in result.output[:2]]
    assert names == ["Microsoft.PowerShell.Core", T.EXCHANGE_SNAPIN]
    assert len(result.output) == 4  # the core and Exchange snap-ins, two certificates
    again = lab.backend.invoke(session, [add], [])
    assert again.terminating is None
    assert "because it is already added" in again.errors[0].message


def test_mailbox_endpoint_runs_exchange_cmdlets_only_and_refuses_scripts(lab):
    assert lab.fails("EX01", "Get-Service").startswith("The term 'Get-Service' is not recognized")
    result = lab.backend.invoke(
        lab.session("EX01"), [[CommandCall("Get-Date | Out-String", is_script=True)]], []
    )
    assert result.terminating.fully_qualified_error_id == "ScriptsNotAllowed"
    assert "no-language mode" in result.terminating.message
    edge = lab.backend.invoke(lab.session("EDGE01"), [[CommandCall("dir", is_script=True)]], [])
    assert "runs cmdlets only" in edge.terminating.message


def test_parameter_binding_errors_are_powershells(lab):
    message = lab.fails("EDGE01", "Get-ExchangeCertificate", Colour="red")
    assert message == "A parameter cannot be found that matches parameter name 'Colour'."
    result = lab.run("EDGE01", "Get-ExchangeCertificate", Colour="red")
    assert result.terminating.fully_qualified_error_id.startswith("NamedParameterNotFound,")
    assert result.terminating.exception_type.endswith("ParameterBindingException")
    assert "is ambiguous" in lab.fails("EDGE01", "Set-ReceiveConnector", "x", Tls="a")
    assert "positional parameter cannot be found" in lab.fails("EDGE01", "Get-Queue", "a", "b")
    assert "missing mandatory parameters: Services" in lab.fails(
        "EDGE01", "Enable-ExchangeCertificate", "AB"
    )
    assert 'to type "System.Int32"' in lab.fails(
        "EDGE01", "Get-EventLog", "Application", Newest="x"
    )
    assert lab.ok("EDGE01", "Get-Queue", Ser="EDGE01")  # an unambiguous prefix binds


def test_error_action_controls_non_terminating_errors(lab):
    missing = "0" * 40
    result = lab.run("EDGE01", "Get-ExchangeCertificate", Thumbprint=missing)
    assert result.terminating is None and "was not found" in result.errors[0].message
    quiet = lab.run(
        "EDGE01", "Get-ExchangeCertificate", Thumbprint=missing, ErrorAction="SilentlyContinue"
    )
    assert quiet.terminating is None and not quiet.errors
    stop = lab.run("EDGE01", "Get-ExchangeCertificate", Thumbprint=missing, ErrorAction="Stop")
    assert "was not found" in stop.terminating.message


def test_certificate_objects_are_exchange_shaped(lab):
    certs = lab.ok("EDGE01", "Get-ExchangeCertificate")
    public = next(c for c in certs if not c["IsSelfSigned"])
    assert public.type_names[:2] == [T.EXCHANGE_CERTIFICATE, T.X509_CERTIFICATE2]
    assert public["Services"].type_name == T.ALLOWED_SERVICES and public["Services"].value == 16
    assert public["ServicesStringForm"] == "....S.."
    assert public["Status"].text == "Valid" and public["RootCAType"].text == "ThirdParty"
    assert public["Identity"] == f"edge01.contoso.com\\{public['Thumbprint']}"
    assert public["CertificateDomains"].items[0] == "hybrid.contoso.com"
    assert public["PublicKeySize"] == 2048 and isinstance(public["RawData"], bytes)
    assert public["NotAfter"].tzinfo is not None
    by_domain = lab.ok("EDGE01", "Get-ExchangeCertificate", DomainName=["hybrid.contoso.com"])
    assert [c["Thumbprint"] for c in by_domain] == [public["Thumbprint"]]
    (by_identity,) = lab.ok("EDGE01", "Get-ExchangeCertificate", Identity=public["Identity"])
    assert by_identity["Thumbprint"] == public["Thumbprint"]


def test_pipeline_and_statements_run_in_one_invocation(lab):
    (cert,) = lab.ok("EDGE01", "New-ExchangeCertificate", Services=["None"])
    get = CommandCall("Get-ExchangeCertificate", {"Thumbprint": cert["Thumbprint"]})
    result = lab.pipeline(
        "EDGE01",
        [get, CommandCall("Remove-ExchangeCertificate", {"Confirm": False})],
        [CommandCall("Get-ExchangeCertificate")],
    )
    assert result.terminating is None
    assert cert["Thumbprint"] not in [c["Thumbprint"] for c in result.output]


def test_whatif_changes_nothing(lab):
    (cert,) = lab.ok("EDGE01", "New-ExchangeCertificate", Services=["None"])
    lab.ok("EDGE01", "Remove-ExchangeCertificate", cert["Thumbprint"], WhatIf=True)
    assert lab.ok("EDGE01", "Get-ExchangeCertificate", cert["Thumbprint"])


def test_import_export_round_trip_and_errors(lab):
    (cert,) = lab.ok(
        "EX01", "New-ExchangeCertificate", Services=["None"], PrivateKeyExportable=True
    )
    (exported,) = lab.ok(
        "EX01",
        "Export-ExchangeCertificate",
        cert["Thumbprint"],
        BinaryEncoded=True,
        Password=SecureText("secret"),
    )
    data = exported["FileData"]
    assert "different password" in lab.fails(
        "EDGE01", "Import-ExchangeCertificate", FileData=data, Password=SecureText("wrong")
    )
    refused = lab.fails("EDGE01", "Import-ExchangeCertificate", FileData=data, Password="secret")
    assert "SecureString" in refused and "secret" not in refused  # PowerShell converts no text
    (imported,) = lab.ok(
        "EDGE01",
        "Import-ExchangeCertificate",
        FileData=data,
        Password=SecureText("secret"),
        FriendlyName="copy",
    )
    assert (
        imported["Thumbprint"] == cert["Thumbprint"] and imported["PrivateKeyExportable"] is False
    )
    assert imported["Services"].text == "None" and imported["FriendlyName"] == "copy"
    assert "already exists" in lab.fails(
        "EDGE01", "Import-ExchangeCertificate", FileData=data, Password=SecureText("secret")
    )


def test_generate_request_and_complete_it_with_a_pkcs7_response(lab):
    (text,) = lab.ok(  # the output is the request's Base64 text, as Exchange returns it
        "EDGE01",
        "New-ExchangeCertificate",
        GenerateRequest=True,
        SubjectName="CN=hybrid.contoso.com, O=Contoso Ltd, C=DE",
        DomainName=["hybrid.contoso.com"],
        PrivateKeyExportable=True,
    )
    assert text.startswith("-----BEGIN NEW CERTIFICATE REQUEST-----\r\n")
    certificates = lab.ok("EDGE01", "Get-ExchangeCertificate")
    (request,) = [c for c in certificates if c["Status"].text == "PendingRequest"]
    assert request["CertificateRequest"].startswith("-----BEGIN CERTIFICATE REQUEST-----")
    org = lab.store.read()
    ca = next(c for c in org.cas if c.parent is not None)
    csr = pki.x509.load_pem_x509_csr(text.encode())
    assert csr == pki.x509.load_pem_x509_csr(request["CertificateRequest"].encode())
    now = dt.datetime.now(dt.UTC)
    response = (
        pki.x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(pki.load(ca.der_b64).subject)
        .public_key(csr.public_key())
        .serial_number(pki.x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=90))
        .sign(pki.unseal(org.secret, ca.key_sealed), pki.hashes.SHA256())
    )
    p7b = pkcs7.serialize_certificates([response], serialization.Encoding.DER)
    (done,) = lab.ok("EDGE01", "Import-ExchangeCertificate", FileData=p7b)
    assert done["HasPrivateKey"] is True and done["Status"].text != "PendingRequest"
    assert done["PrivateKeyExportable"] is True  # the request's key, exportable as requested
    assert all(
        c["Status"].text != "PendingRequest" for c in lab.ok("EDGE01", "Get-ExchangeCertificate")
    )


def test_where_cmdlets_may_run(lab):
    assert "can't be run on this Edge" in lab.fails(
        "EDGE01", "Set-SendConnector", "Outbound to Office 365", RequireTLS=True
    )
    assert "only be run on a Mailbox server" in lab.fails("EDGE01", "Test-EdgeSynchronization")
    assert "only be run on a Mailbox server" in lab.fails("EDGE01", "Start-EdgeSynchronization")
    assert "only be used when running on an Edge" in lab.fails(
        "EX01", "New-EdgeSubscription", FileName="C:\\x.xml"
    )
    assert "only be used when running on a Mailbox" in lab.fails(
        "EDGE01", "New-EdgeSubscription", FileData=b"x", Site="S"
    )
    assert "isn't reachable" in lab.fails("EX01", "Get-ExchangeCertificate", Server="EDGE01")


def test_subscription_file_is_written_read_and_deleted(lab):
    path = r"C:\temp\EdgeSubscriptionInfo.xml"
    lab.ok("EDGE01", "New-EdgeSubscription", FileName=path, answers=["Yes"])
    assert "already exists" in lab.fails(
        "EDGE01", "New-EdgeSubscription", FileName=path, answers=["Yes"]
    )
    (text,) = lab.ok("EDGE01", "Get-Content", path, Raw=True)
    assert "<EdgeServerFQDN>edge01.contoso.com</EdgeServerFQDN>" in text
    assert "<Duration>1.00:00:00</Duration>" in text
    lab.ok("EDGE01", "Remove-Item", Path=path)
    result = lab.run("EDGE01", "Get-Content", path)
    assert "because it does not exist" in result.errors[0].message


def test_send_connector_multivalued_hashtable(lab):
    hybrid = "Outbound to Office 365"
    lab.ok("EX01", "Set-SendConnector", hybrid, SourceTransportServers={"Remove": "EDGE02"})
    (connector,) = lab.ok("EX01", "Get-SendConnector", hybrid)
    assert list(map(str, connector["SourceTransportServers"].items)) == ["EDGE01"]
    lab.ok("EX01", "Set-SendConnector", hybrid, SourceTransportServers={"Add": ["edge02"]})
    (connector,) = lab.ok("EX01", "Get-SendConnector", hybrid)
    assert list(map(str, connector["SourceTransportServers"].items)) == ["EDGE01", "EDGE02"]
    assert "couldn't be found" in lab.fails("EX01", "Set-SendConnector", "Nope", RequireTLS=True)


def test_suspended_transport_refuses_mail_and_drains(lab):
    with lab.store.transaction() as org:
        mailflow.new_queue(org.server("EDGE01"), "Outbound to Office 365", None).message_count = 3
    lab.ok("EDGE01", "Suspend-Service", "MSExchangeTransport")
    (service,) = lab.ok("EDGE01", "Get-Service", "MSExchangeTransport")
    assert service["Status"].text == "Paused" and service.type_names[0] == T.SERVICE_CONTROLLER
    with pytest.raises(mailflow.MailRefused), lab.store.transaction() as org:
        mailflow.submit_mail(org, "EDGE01", 1, ["a@contoso.com"], clock(org))
    assert lab.queue("EDGE01", "Outbound to Office 365")["MessageCount"] == 0
    assert served_certificate(lab.store.read(), "EDGE01", "smtp", lab.store.now()) is None
    lab.ok("EDGE01", "Resume-Service", "MSExchangeTransport")
    assert served_certificate(lab.store.read(), "EDGE01", "smtp", lab.store.now())


def test_adam_restart_needs_force_and_restarts_running_transport_not_paused(lab):
    """PowerShell's RestartServiceCommand starts again the dependents DoStopService stopped:
    only those that were running; a paused (drained) transport stops and stays stopped."""
    result = lab.run("EDGE01", "Restart-Service", "ADAM_MSExchange")
    assert "has dependent services" in result.errors[0].message
    restarted = lab.ok("EDGE01", "Restart-Service", "ADAM_MSExchange", Force=True, PassThru=True)
    assert [s["Name"] for s in restarted] == ["MSExchangeTransport", "ADAM_MSExchange"]
    states = {s["Name"]: s["Status"].text for s in lab.ok("EDGE01", "Get-Service")}
    assert states == {"MSExchangeTransport": "Running", "ADAM_MSExchange": "Running"}
    lab.ok("EDGE01", "Suspend-Service", "MSExchangeTransport")
    restarted = lab.ok("EDGE01", "Restart-Service", "ADAM_MSExchange", Force=True, PassThru=True)
    assert [s["Name"] for s in restarted] == ["ADAM_MSExchange"]
    states = {s["Name"]: s["Status"].text for s in lab.ok("EDGE01", "Get-Service")}
    assert states == {"MSExchangeTransport": "Stopped", "ADAM_MSExchange": "Running"}
    assert "Verify that the service is running" in lab.fails("EDGE01", "Get-Queue")


def test_faults(lab):
    set_fault(lab.store, "Get-TransportService", server="EDGE01", nth=2, message="RPC fault")
    assert lab.ok("EDGE01", "Get-TransportService")
    assert lab.fails("EDGE01", "Get-TransportService") == "RPC fault"
    assert lab.ok("EDGE01", "Get-TransportService")
    assert lab.ok("EX01", "Get-TransportService")
    set_service_failure(lab.store, "EDGE01", "MSExchangeTransport")
    result = lab.run("EDGE01", "Restart-Service", "MSExchangeTransport")
    assert "cannot be started" in result.errors[0].message


def test_authentication_and_counters(lab):
    assert lab.backend.authenticate("EDGE01", "EDGE01\\Administrator", PASSWORD)
    assert lab.backend.authenticate("EX01", "CONTOSO\\Administrator", PASSWORD)
    assert not lab.backend.authenticate("EX01", "EDGE01\\Administrator", PASSWORD)
    assert not lab.backend.authenticate("EDGE01", "EDGE01\\Administrator", "wrong")
    assert not lab.backend.authenticate("NOPE", "x", PASSWORD)
    assert lab.backend.credential("EDGE01") == ("EDGE01\\Administrator", PASSWORD)
    assert lab.backend.credential("NOPE") is None
    assert PASSWORD not in lab.store.state_path.read_text()
    lab.backend.count_request("EX01")
    lab.ok("EX01", "Get-EdgeSubscription")
    assert lab.store.counters()["EX01"] == {"requests": 1, "pipelines": 1}


def test_transport_service_and_event_log_queries(lab):
    edge_view = lab.ok("EDGE01", "Get-TransportService")
    assert [t["Name"] for t in edge_view] == ["EDGE01"]
    org_view = lab.ok("EX01", "Get-TransportService")
    assert [t["Name"] for t in org_view] == ["EX01", "EDGE01", "EDGE02"]
    assert (
        org_view[1]["InternalTransportCertificateThumbprint"]
        == edge_view[0]["InternalTransportCertificateThumbprint"]
    )
    start = lab.store.now().strftime("%m/%d/%Y %H:%M:%S")
    query = {"Source": ["MSExchangeTransport"], "After": start}
    assert lab.run("EDGE01", "Get-EventLog", "Application", **query).errors[0].message == (
        "No matches found"
    )
    default = edge_view[0]["InternalTransportCertificateThumbprint"]
    lab.store.advance(1)
    lab.ok("EDGE01", "Remove-Item", rf"Cert:\LocalMachine\My\{default}")
    lab.ok("EDGE01", "Restart-Service", "MSExchangeTransport")
    events = lab.ok("EDGE01", "Get-EventLog", "Application", **query)
    assert events and {e["EventID"] for e in events} == {12013}
    event = events[0]
    assert default in event["Message"] and event["EntryType"].text == "Error"
    assert event["InstanceId"] == 0xC0000000 | 12013


def test_get_date_is_the_lab_clock(lab):
    before = clock(lab.store.read())
    lab.store.advance(120)
    (wrapped,) = lab.run("EDGE01", "Get-Date").output
    assert wrapped.notes == {"DisplayHint": ExEnum(DISPLAY_HINT_TYPE, "DateTime", 2)}
    now = wrapped.value
    assert abs(now - clock(lab.store.read())) < dt.timedelta(seconds=5)
    assert now - before > dt.timedelta(minutes=119)


def test_select_object_projects_properties_into_selected_objects(lab):
    result = lab.pipeline(
        "EDGE01",
        [
            CommandCall("Get-Service", {"Name": ["MSExchangeTransport"]}),
            CommandCall("Select-Object", {"Property": ["name", "Status"]}),
        ],
    )
    (row,) = result.output
    assert row.type_names[:2] == [
        f"Selected.{T.SERVICE_CONTROLLER}",
        "System.Management.Automation.PSCustomObject",
    ]
    assert list(row.properties) == ["Name", "Status"]  # the object's own spelling
    assert row["Name"] == "MSExchangeTransport"
