"""Connector rules: F3 stale TlsCertificateName, F4 too long, F9 missing on Mailbox, F10."""

from __future__ import annotations

from edgebook import certs
from edgebook.findings import Severity
from tests.support.orgs import (
    EDGES,
    HYBRID,
    INBOUND,
    INTERNET,
    cert_record,
    clean_world,
    of,
    pki,
    public_leaf,
    second_ca,
    smtp_probe,
    thumb,
    tls_name,
)


def _renew_with_new_issuer(world):
    """Both Edges get the renewed certificate from another CA; the connector keeps the old
    name (the seed's incident)."""
    renewed = public_leaf(second_ca())
    for edge in EDGES:
        world.edges[edge]["certificates"][1] = cert_record(renewed)
        world.smtp_probes[edge] = smtp_probe(edge, renewed, [second_ca()])
    return renewed


def test_send_connector_name_stale_after_issuer_change():
    world = clean_world()
    renewed = _renew_with_new_issuer(world)
    found = of(world.evaluate(), "tls-name-stale")
    assert {f.server for f in found} == set(EDGES)
    finding = found[0]
    assert finding.severity == Severity.ERROR
    assert finding.evidence["proposed"] == tls_name(renewed)
    assert finding.evidence["proposed_thumbprint"] == thumb(renewed)
    assert f"Set-SendConnector -Identity '{HYBRID}' -TlsCertificateName '{tls_name(renewed)}'" in (
        finding.message
    )
    assert "Start-EdgeSynchronization" in finding.message


def test_receive_connector_name_stale():
    world = clean_world()
    world.receive("EDGE2")["TlsCertificateName"] = (
        "<I>CN=Gone CA<S>CN=mail.contoso.com, O=Contoso, C=US"
    )
    (finding,) = of(world.evaluate(), "tls-name-stale")
    assert finding.server == "EDGE2" and finding.evidence["kind"] == "receive"
    assert "Set-ReceiveConnector -Identity 'EDGE2\\Default internal receive connector EDGE2'" in (
        finding.message
    )
    assert finding.evidence["proposed"] == tls_name(pki().public)


def test_invalid_name_syntax_is_stale():
    world = clean_world()
    world.receive("EDGE1")["TlsCertificateName"] = "CN=mail.contoso.com"
    (finding,) = of(world.evaluate(), "tls-name-stale")
    assert "is not of the form" in finding.message


def test_name_differing_only_in_case_still_matches():
    world = clean_world()
    world.send(HYBRID)["TlsCertificateName"] = tls_name(pki().public).upper()
    for edge in EDGES:
        world.edges[edge]["send_connectors"][0]["TlsCertificateName"] = tls_name(
            pki().public
        ).lower()
    assert of(world.evaluate(), "tls-name-stale") == []


def test_only_an_expired_match_without_replacement_is_left_to_cert_expired():
    world = clean_world()
    expired = public_leaf(days_valid=10, not_before_offset=-20)
    world.edges["EDGE1"]["certificates"][1] = cert_record(expired)
    findings = world.evaluate()
    assert of(findings, "tls-name-stale") == []
    assert of(findings, "cert-expired", "EDGE1")


def test_expired_match_with_a_renewed_certificate_is_stale():
    world = clean_world()
    expired = public_leaf(days_valid=10, not_before_offset=-20)
    renewed = public_leaf(second_ca())
    world.edges["EDGE1"]["certificates"][1:] = [cert_record(expired), cert_record(renewed)]
    (finding,) = of(world.evaluate(), "tls-name-stale")
    assert finding.evidence["matching_installed"][0]["thumbprint"] == thumb(expired)
    assert finding.evidence["proposed"] == tls_name(renewed)
    assert "only expired certificates match" in finding.message


def test_replicated_copy_differing_from_the_org_is_checked_too():
    world = clean_world()
    world.edges["EDGE1"]["send_connectors"][0]["TlsCertificateName"] = "<I>CN=Old CA<S>CN=x"
    (finding,) = of(world.evaluate(), "tls-name-stale")
    assert finding.server == "EDGE1" and finding.evidence["tls_certificate_name"].startswith(
        "<I>CN=Old CA"
    )


def test_too_long_name_on_the_send_connector():
    world = clean_world()
    long_name = "<I>CN=" + "A" * 200 + "<S>CN=" + "B" * 60
    assert len(long_name) > certs.TLS_NAME_MAX
    world.send(HYBRID)["TlsCertificateName"] = long_name
    findings = world.evaluate()
    (finding,) = of(findings, "tls-name-too-long")
    assert finding.severity == Severity.ERROR and finding.evidence["length"] == len(long_name)
    assert of(findings, "tls-name-stale") == []  # not replicated: staleness is not the point


def test_too_long_name_on_a_receive_connector_is_a_warning():
    world = clean_world()
    world.receive("EDGE1")["TlsCertificateName"] = "<I>CN=" + "A" * 300 + "<S>CN=x"
    (finding,) = of(world.evaluate(), "tls-name-too-long")
    assert finding.severity == Severity.WARNING and finding.server == "EDGE1"


def test_hybrid_certificate_missing_on_every_mailbox():
    world = clean_world()
    del world.mailbox["certificates"][1]
    (finding,) = of(world.evaluate(), "tls-name-cert-missing-on-mailbox")
    assert finding.severity == Severity.WARNING
    assert finding.evidence["tls_certificate_name"] == tls_name(pki().public)


def test_the_proposed_replacement_must_be_on_a_mailbox_too():
    world = clean_world()
    renewed = _renew_with_new_issuer(world)
    found = of(world.evaluate(), "tls-name-cert-missing-on-mailbox")
    assert [f.evidence["tls_certificate_name"] for f in found] == [tls_name(renewed)]
    world.mailbox["certificates"].append(cert_record(renewed, Services="None"))
    assert of(world.evaluate(), "tls-name-cert-missing-on-mailbox") == []


def test_missing_on_mailbox_only_matters_with_hybrid():
    world = clean_world()
    world.settings["hybrid"] = False
    del world.mailbox["certificates"][1]
    assert of(world.evaluate(), "tls-name-cert-missing-on-mailbox") == []


def test_edge_missing_from_a_send_connector_the_other_edge_is_in():
    world = clean_world()
    world.send(INTERNET)["SourceTransportServers"] = ["EDGE1"]
    (finding,) = of(world.evaluate(), "edge-not-in-send-connector")
    assert (finding.server, finding.severity) == ("EDGE2", Severity.WARNING)
    assert "-SourceTransportServers @{Add='EDGE2'}" in finding.message


def test_edge_missing_from_the_inbound_connector_is_an_error():
    world = clean_world()
    world.send(INBOUND)["SourceTransportServers"] = ["edge1.contoso.com"]
    (finding,) = of(world.evaluate(), "edge-not-in-send-connector")
    assert (finding.server, finding.severity) == ("EDGE2", Severity.ERROR)
    assert f"Set-SendConnector -Identity '{INBOUND}'" in finding.message


def test_no_inbound_connector_at_all():
    world = clean_world()
    world.send_connectors.remove(world.send(INBOUND))
    found = of(world.evaluate(), "edge-not-in-send-connector")
    assert {f.server for f in found} == set(EDGES)
    assert all("-CreateInboundSendConnector $true" in f.message for f in found)


def test_edge_of_another_site_need_not_be_in_the_connector():
    world = clean_world()
    world.subscriptions[1]["Site"] = "Branch"
    world.send(INTERNET)["SourceTransportServers"] = ["EDGE1"]
    world.send(HYBRID)["SourceTransportServers"] = ["EDGE1"]
    assert of(world.evaluate(), "edge-not-in-send-connector") == []
