"""Certificate rules: in-use checks via edgebook.certs, F1, F2, F5, F6, F14, F18."""

from __future__ import annotations

import functools

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from edgebook.findings import Severity
from tests.support.certs import CLIENT_AUTH, make_ca, name
from tests.support.orgs import (
    EDGES,
    MAILBOX,
    PUBLIC_FQDN,
    cert_record,
    clean_world,
    of,
    pki,
    public_leaf,
    second_ca,
    smtp_probe,
    thumb,
)


def _replace_public(world, issued, edges=EDGES, **overrides):
    for edge in edges:
        world.edges[edge]["certificates"][1] = cert_record(issued, **overrides)
        world.smtp_probes[edge] = smtp_probe(edge, issued, [pki().ica])


def test_expired_certificate_in_use_is_an_error_once():
    world = clean_world()
    expired = public_leaf(days_valid=10, not_before_offset=-20)
    _replace_public(world, expired, edges=["EDGE1"])
    found = of(world.evaluate(), "cert-expired")
    assert len(found) == 1
    (finding,) = found
    assert finding.server == "EDGE1" and finding.severity == Severity.ERROR
    assert finding.evidence["thumbprint"] == thumb(expired)
    assert finding.evidence["usage"]["smtp"] is True
    assert thumb(expired) in finding.message


def test_expired_certificate_nothing_uses_is_info_with_removal():
    world = clean_world()
    old = public_leaf(cn="old.contoso.com", days_valid=10, not_before_offset=-20)
    world.edges["EDGE2"]["certificates"].append(cert_record(old, Services="None"))
    (finding,) = of(world.evaluate(), "cert-expired")
    assert finding.severity == Severity.INFO and finding.server == "EDGE2"
    assert f"Remove-ExchangeCertificate -Thumbprint {thumb(old)}" in finding.message


def test_expiring_certificate_in_use_is_a_warning():
    world = clean_world()
    _replace_public(world, public_leaf(days_valid=11, not_before_offset=-1))
    found = of(world.evaluate(), "cert-expiring")
    assert {f.server for f in found} == set(EDGES)
    assert all(f.severity == Severity.WARNING for f in found)


def test_expiring_certificate_nothing_uses_is_not_reported():
    world = clean_world()
    spare = public_leaf(cn="spare.contoso.com", days_valid=11, not_before_offset=-1)
    world.edges["EDGE1"]["certificates"].append(cert_record(spare, Services="None"))
    assert of(world.evaluate(), "cert-expiring") == []


def test_expected_fqdn_missing_from_the_public_certificate_only():
    world = clean_world()
    world.settings["expected_fqdns"] = (PUBLIC_FQDN, "autodiscover.contoso.com")
    found = of(world.evaluate(), "san-missing-fqdn")
    assert {f.server for f in found} == set(EDGES)
    assert {f.evidence["thumbprint"] for f in found} == {thumb(pki().public)}
    assert all(f.evidence["fqdn"] == "autodiscover.contoso.com" for f in found)


@functools.lru_cache(maxsize=1)
def _rsa_ca():
    return make_ca(
        name((NameOID.COMMON_NAME, "Contoso RSA CA")), issuer=pki().root, key_type="rsa2048"
    )


@pytest.mark.parametrize(
    ("slug", "make"),
    [
        ("weak-key", lambda: public_leaf(_rsa_ca(), key_type="rsa1024")),
        ("weak-signature", lambda: public_leaf(_rsa_ca(), hash_algorithm=hashes.SHA1())),
        ("eku-missing-server-auth", lambda: public_leaf(eku=(CLIENT_AUTH,))),
    ],
)
def test_certificate_quality_findings_come_from_edgebook_certs(slug, make):
    world = clean_world()
    issued = make()
    world.edges["EDGE1"]["certificates"][1] = cert_record(issued)
    (finding,) = of(world.evaluate(), slug)
    assert finding.server == "EDGE1" and finding.evidence["thumbprint"] == thumb(issued)


def test_chain_incomplete_when_the_served_chain_lacks_the_intermediate():
    world = clean_world()
    world.smtp_probes["EDGE1"] = smtp_probe("EDGE1", pki().public, [])
    (finding,) = of(world.evaluate(), "chain-incomplete")
    assert finding.server == "EDGE1"
    assert finding.evidence["missing_issuer"] == "CN=Contoso Issuing CA 1"


def test_no_chain_judgement_for_a_certificate_not_served():
    world = clean_world()
    world.smtp_probes = dict.fromkeys(EDGES)  # the store's chain is not read
    world.settings["roots"] = ()  # nothing would be trusted
    assert of(world.evaluate(), "chain-incomplete") == []


@pytest.mark.parametrize(
    ("status", "slug", "severity"),
    [
        ("Untrusted", "chain-incomplete", Severity.ERROR),
        ("Invalid", "chain-incomplete", Severity.ERROR),
        ("Revoked", "cert-revoked", Severity.ERROR),
        ("RevocationCheckFailure", "cert-revocation-unknown", Severity.WARNING),
    ],
)
def test_exchange_status_is_reported(status, slug, severity):
    world = clean_world()
    world.edges["EDGE2"]["certificates"][1]["Status"] = status
    (finding,) = of(world.evaluate(), slug)
    assert (finding.server, finding.severity) == ("EDGE2", severity)
    assert finding.evidence["status"] == status


def test_duplicate_subject_with_a_new_issuer():
    world = clean_world()
    renewed = public_leaf(second_ca())
    world.edges["EDGE1"]["certificates"].append(cert_record(renewed, Services="None"))
    (finding,) = of(world.evaluate(), "duplicate-subject")
    assert finding.severity == Severity.ERROR and finding.server == "EDGE1"
    assert finding.evidence["same_issuer"] is False
    assert {c["thumbprint"] for c in finding.evidence["certificates"]} == {
        thumb(pki().public),
        thumb(renewed),
    }
    assert "Remove-ExchangeCertificate -Thumbprint" in finding.message


def test_duplicate_subject_with_the_same_issuer():
    world = clean_world()
    world.edges["EDGE2"]["certificates"].append(cert_record(public_leaf(days_valid=700)))
    (finding,) = of(world.evaluate(), "duplicate-subject")
    assert finding.evidence["same_issuer"] is True
    assert "same issuer" in finding.message


def test_no_duplicate_subject_in_the_clean_world():
    assert of(clean_world().evaluate(), "duplicate-subject") == []


def test_edge_default_is_a_mailbox_internal_certificate():
    world = clean_world()
    edge_default = thumb(pki().defaults["EDGE1"])
    world.mailbox["transport_service"]["InternalTransportCertificateThumbprint"] = edge_default
    (finding,) = of(world.evaluate(), "edge-hub-clash")
    assert (finding.severity, finding.server) == (Severity.ERROR, "EDGE1")
    assert finding.evidence == {"default_thumbprint": edge_default, "mailbox": "MBX1"}


def test_edge_default_installed_on_a_mailbox_is_a_warning():
    world = clean_world()
    world.mailbox["certificates"].append(cert_record(pki().defaults["EDGE2"], Services="None"))
    (finding,) = of(world.evaluate(), "edge-hub-clash")
    assert (finding.severity, finding.server) == (Severity.WARNING, "EDGE2")


def test_default_certificate_missing_from_the_store():
    world = clean_world()
    del world.edges["EDGE1"]["certificates"][0]
    world.ldaps_probes["EDGE1"] = None
    (finding,) = of(world.evaluate(), "default-cert-missing")
    assert finding.server == "EDGE1" and finding.severity == Severity.ERROR
    assert "is not in its store" in finding.message


def test_default_certificate_not_configured():
    world = clean_world()
    world.edges["EDGE2"]["transport_service"] = {"Name": "EDGE2"}
    (finding,) = of(world.evaluate(), "default-cert-missing")
    assert finding.server == "EDGE2" and "none is configured" in finding.message


def test_default_certificate_unknown_when_transport_service_not_read():
    world = clean_world()
    world.edges["EDGE2"]["transport_service"] = None
    assert of(world.evaluate(), "default-cert-missing") == []


def test_public_key_not_exportable_anywhere_is_a_warning():
    world = clean_world()
    world.edges["EDGE1"]["certificates"][1]["PrivateKeyExportable"] = False
    world.mailbox["certificates"][1]["PrivateKeyExportable"] = False
    (finding,) = of(world.evaluate(), "key-not-exportable")
    assert finding.server == "EDGE1" and finding.severity == Severity.WARNING
    assert finding.evidence["thumbprint"] == thumb(pki().public)


def test_public_key_not_exportable_on_the_edge_is_fine_with_an_exportable_copy():
    world = clean_world()
    world.edges["EDGE1"]["certificates"][1]["PrivateKeyExportable"] = False
    (finding,) = of(world.evaluate(), "key-not-exportable")
    assert finding.severity == Severity.INFO
    assert finding.evidence["exportable_on"] == MAILBOX


def test_edges_with_different_public_certificates():
    world = clean_world()
    other = public_leaf(second_ca())
    _replace_public(world, other, edges=["EDGE2"])
    (finding,) = of(world.evaluate(), "edges-differ")
    assert finding.severity == Severity.ERROR
    assert set(finding.evidence["certificates"]) == set(EDGES)


def test_edges_differ_is_only_info_without_hybrid():
    world = clean_world()
    world.settings["hybrid"] = False
    _replace_public(world, public_leaf(second_ca()), edges=["EDGE2"])
    (finding,) = of(world.evaluate(), "edges-differ")
    assert finding.severity == Severity.INFO
