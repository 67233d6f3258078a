"""SMTP receive rules (F11, F15, probes) and hybrid connector rules (F16, F17)."""

from __future__ import annotations

import pytest

from edgebook.findings import Severity
from tests.support.orgs import EDGES, HYBRID, clean_world, of, pki, public_leaf, smtp_probe, thumb


def test_served_certificate_differs_from_the_selected_one():
    world = clean_world()
    old = public_leaf(cn="old.contoso.com")
    world.smtp_probes["EDGE1"] = smtp_probe("EDGE1", old, [pki().ica])
    (finding,) = of(world.evaluate(), "smtp-cert-mismatch")
    assert (finding.server, finding.severity) == ("EDGE1", Severity.ERROR)
    assert finding.evidence["served"] == thumb(old)
    assert finding.evidence["expected"] == [thumb(pki().public)]
    assert "is no longer installed" in finding.message
    assert "Restart-Service MSExchangeTransport" in finding.message


def test_served_default_certificate_when_the_fqdn_selects_the_public_one():
    world = clean_world()
    world.smtp_probes["EDGE2"] = smtp_probe("EDGE2", pki().defaults["EDGE2"])
    (finding,) = of(world.evaluate(), "smtp-cert-mismatch")
    assert finding.server == "EDGE2" and "is installed" in finding.message


def test_served_certificate_selected_by_a_receive_tls_certificate_name():
    world = clean_world()
    default = pki().defaults["EDGE1"]
    world.receive("EDGE1")["TlsCertificateName"] = (
        "<I>CN=EDGE1<S>CN=EDGE1"  # the default certificate, by name
    )
    world.smtp_probes["EDGE1"] = smtp_probe("EDGE1", default)
    findings = world.evaluate()
    assert of(findings, "smtp-cert-mismatch") == []
    assert of(findings, "tls-name-stale") == []


def test_certificate_selected_by_fqdn_without_smtp():
    world = clean_world()
    world.edges["EDGE1"]["certificates"][1]["Services"] = "None"
    (finding,) = of(world.evaluate(), "smtp-not-enabled")
    assert (finding.server, finding.severity) == ("EDGE1", Severity.ERROR)
    assert f"Enable-ExchangeCertificate -Thumbprint {thumb(pki().public)} -Services SMTP" in (
        finding.message
    )
    assert "answer No" in finding.message


def test_certificate_selected_by_name_without_smtp_is_a_warning():
    world = clean_world()
    world.edges["EDGE2"]["certificates"][1]["Services"] = "IIS"
    world.receive("EDGE2")["TlsCertificateName"] = (
        "<I>CN=Contoso Issuing CA 1<S>CN=mail.contoso.com, O=Contoso, C=US"
    )
    (finding,) = of(world.evaluate(), "smtp-not-enabled")
    assert (finding.server, finding.severity) == ("EDGE2", Severity.WARNING)
    assert finding.evidence["by"] == "TlsCertificateName"


def test_receive_fqdn_no_certificate_covers():
    world = clean_world()
    world.settings["hybrid"] = False
    world.receive("EDGE1")["Fqdn"] = "mx.fabrikam.com"
    (finding,) = of(world.evaluate(), "receive-fqdn-no-cert")
    assert finding.server == "EDGE1" and finding.evidence["fqdn"] == "mx.fabrikam.com"


def test_starttls_not_offered():
    world = clean_world()
    world.smtp_probes["EDGE2"] = smtp_probe(
        "EDGE2", None, starttls_offered=False, error="STARTTLS not offered"
    )
    findings = world.evaluate()
    (finding,) = of(findings, "starttls-not-offered")
    assert finding.server == "EDGE2" and finding.severity == Severity.ERROR
    assert of(findings, "probe-failed") == []


def test_smtp_probe_that_could_not_connect():
    world = clean_world()
    world.smtp_probes["EDGE1"] = smtp_probe("EDGE1", None, banner=None, error="timed out")
    (finding,) = of(world.evaluate(), "probe-failed")
    assert (finding.server, finding.severity) == ("EDGE1", Severity.WARNING)
    assert finding.evidence["error"] == "timed out"


@pytest.mark.parametrize(
    ("prop", "value", "fix"),
    [
        ("TlsDomain", "", "-TlsDomain mail.protection.outlook.com"),
        ("TlsAuthLevel", "EncryptionOnly", "-TlsAuthLevel DomainValidation"),
        ("RequireTLS", False, "-RequireTLS $true"),
        ("CloudServicesMailEnabled", False, "-CloudServicesMailEnabled $true"),
        ("Fqdn", "edge1.contoso.local", "-Fqdn mail.contoso.com"),
        ("Fqdn", None, "-Fqdn mail.contoso.com"),
    ],
)
def test_hybrid_send_connector_settings(prop, value, fix):
    world = clean_world()
    world.send(HYBRID)[prop] = value
    (finding,) = of(world.evaluate(), "hybrid-send-connector")
    assert finding.severity == Severity.ERROR
    assert list(finding.evidence["problems"]) == [prop]
    assert f"Set-SendConnector -Identity '{HYBRID}' {fix}" in finding.message


def test_hybrid_send_connector_missing():
    world = clean_world()
    world.send_connectors.remove(world.send(HYBRID))
    for edge in EDGES:
        del world.edges[edge]["send_connectors"][0]
    (finding,) = of(world.evaluate(), "hybrid-send-connector")
    assert "rerun the Hybrid Configuration Wizard" in finding.message


def test_hybrid_rules_are_silent_without_hybrid():
    world = clean_world()
    world.settings["hybrid"] = False
    world.send(HYBRID)["CloudServicesMailEnabled"] = False
    world.receive("EDGE1")["TlsDomainCapabilities"] = []
    findings = world.evaluate()
    assert of(findings, "hybrid-send-connector") == []
    assert of(findings, "hybrid-receive-connector") == []


def test_hybrid_receive_connector_without_capabilities():
    world = clean_world()
    world.receive("EDGE1")["TlsDomainCapabilities"] = []
    (finding,) = of(world.evaluate(), "hybrid-receive-connector")
    assert finding.server == "EDGE1"
    assert list(finding.evidence["problems"]) == ["TlsDomainCapabilities"]
    assert (
        "Set-ReceiveConnector -Identity 'EDGE1\\Default internal receive connector EDGE1' "
        "-TlsDomainCapabilities mail.protection.outlook.com:AcceptCloudServicesMail "
        "-Fqdn mail.contoso.com" in finding.message
    )


def test_oorg_protocol_is_accepted_only_when_configured():
    world = clean_world()
    world.receive("EDGE2")["TlsDomainCapabilities"] = [
        "mail.protection.outlook.com:AcceptOorgProtocol"
    ]
    assert of(world.evaluate(), "hybrid-receive-connector")
    world.settings["tls_domain_capabilities"] = (
        "mail.protection.outlook.com:AcceptCloudServicesMail",
        "mail.protection.outlook.com:AcceptOorgProtocol",
    )
    assert of(world.evaluate(), "hybrid-receive-connector") == []


def test_hybrid_receive_connector_fqdn_not_covered_by_the_public_certificate():
    world = clean_world()
    world.receive("EDGE2")["Fqdn"] = "edge2.contoso.com"  # only the self-signed default has it
    (finding,) = of(world.evaluate(), "hybrid-receive-connector")
    assert finding.evidence["problems"] == {"Fqdn": ["edge2.contoso.com", "mail.contoso.com"]}


def test_hybrid_receive_connector_missing():
    world = clean_world()
    world.edges["EDGE1"]["receive_connectors"][0]["Name"] = "Custom"
    found = of(world.evaluate(), "hybrid-receive-connector")
    assert [f.server for f in found] == ["EDGE1"]
    assert "has no receive connector" in found[0].message
