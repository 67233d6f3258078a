"""Certificate facts Exchange did not send (None: unknown) fire no false finding; instead
cert-facts-unknown says which checks were not made (issue #13)."""

from __future__ import annotations

from edgebook.findings import Severity
from edgebook.rules.usage import receive_selection
from tests.support.orgs import (
    EDGES,
    HYBRID,
    MAILBOX,
    cert_record,
    clean_world,
    of,
    pki,
    problems,
    public_leaf,
    second_ca,
    thumb,
)

VIEW = ("Services", "Status", "HasPrivateKey", "PrivateKeyExportable")


def _forget(record: dict, *names: str) -> dict:
    """The record as if these projected properties had not arrived."""
    for property_name in names or VIEW:
        record[property_name] = None
    return record


def _every_certificate(world):
    for records in world.edges.values():
        yield from records["certificates"]
    yield from world.mailbox["certificates"]


def test_nothing_but_unknowns_when_exchange_sends_no_view_at_all():
    world = clean_world()
    for record in _every_certificate(world):
        _forget(record)
    findings = problems(world.evaluate())
    assert {f.slug for f in findings} == {"cert-facts-unknown"}, findings
    assert len(findings) == 6  # two certificates on each Edge, two on the Mailbox server
    assert all(f.evidence["unknown"] == list(VIEW) for f in findings)
    assert {f.server for f in findings} == {*EDGES, MAILBOX}


def test_unknown_services_do_not_make_the_selected_certificate_not_enabled():
    world = clean_world()
    _forget(world.edges["EDGE1"]["certificates"][1], "Services")  # the public certificate
    org, edges = world.facts()
    selection = receive_selection(edges[0], edges[0].receive_connectors[0], org)
    assert selection.eligible == () and selection.unusable == ()
    assert [c.thumbprint for c in selection.unknown] == [thumb(pki().public)]
    findings = problems(world.evaluate())
    assert [(f.slug, f.server) for f in findings] == [("cert-facts-unknown", "EDGE1")]
    (finding,) = findings
    assert finding.evidence["unknown"] == ["Services"]
    assert "enabled for SMTP" in finding.message and "Select-Object" in finding.message


def test_known_not_enabled_is_still_reported():
    world = clean_world()
    world.edges["EDGE1"]["certificates"][1]["Services"] = "IIS"
    (finding,) = of(world.evaluate(), "smtp-not-enabled")
    assert finding.server == "EDGE1" and finding.evidence["services"] == ["IIS"]


def test_a_served_certificate_with_unknown_services_is_no_mismatch():
    world = clean_world()
    renewed = public_leaf(second_ca(), not_before_offset=-0.5)  # newer: transport prefers it
    world.edges["EDGE1"]["certificates"].append(cert_record(renewed, Services="SMTP"))
    _forget(world.edges["EDGE1"]["certificates"][1], "Services")
    assert of(world.evaluate(), "smtp-cert-mismatch") == []
    world.edges["EDGE1"]["certificates"][1]["Services"] = "None"  # known: not for SMTP
    (finding,) = of(world.evaluate(), "smtp-cert-mismatch")
    assert finding.evidence["served"] == thumb(pki().public)


def test_an_expired_certificate_with_unknown_services_is_not_called_unused():
    world = clean_world()
    old = public_leaf(cn="old.contoso.com", days_valid=10, not_before_offset=-20)
    world.edges["EDGE2"]["certificates"].append(_forget(cert_record(old), "Services"))
    findings = world.evaluate()
    assert of(findings, "cert-expired") == []
    (unknown,) = of(findings, "cert-facts-unknown")
    assert unknown.evidence["thumbprint"] == thumb(old)
    world.edges["EDGE2"]["certificates"][-1]["Services"] = "None"
    (expired,) = of(world.evaluate(), "cert-expired")
    assert expired.severity == Severity.INFO and "nothing uses it" in expired.message


def test_unknown_exportability_of_the_mailbox_copy_is_no_key_warning():
    world = clean_world()
    for edge in EDGES:
        world.edges[edge]["certificates"][1]["PrivateKeyExportable"] = False
    world.mailbox["certificates"][1]["PrivateKeyExportable"] = None  # the public certificate
    findings = world.evaluate()
    assert of(findings, "key-not-exportable") == []
    (unknown,) = of(findings, "cert-facts-unknown")
    assert (unknown.server, unknown.evidence["unknown"]) == (MAILBOX, ["PrivateKeyExportable"])
    world.mailbox["certificates"][1]["PrivateKeyExportable"] = False
    found = of(world.evaluate(), "key-not-exportable")
    assert {(f.server, f.severity) for f in found} == {(e, Severity.WARNING) for e in EDGES}


def test_unknown_status_and_key_fire_no_chain_or_key_finding():
    world = clean_world()
    for edge in EDGES:
        _forget(world.edges[edge]["certificates"][1], "Status", "HasPrivateKey")
    findings = world.evaluate()
    assert {f.slug for f in problems(findings)} == {"cert-facts-unknown"}
    world.edges["EDGE1"]["certificates"][1]["HasPrivateKey"] = False
    assert of(world.evaluate(), "private-key-missing", "EDGE1")


def test_a_certificate_that_may_be_in_use_can_be_the_one_the_edges_share():
    world = clean_world()
    world.send(HYBRID)["TlsCertificateName"] = None  # nothing designates it by name
    renewed = public_leaf(second_ca())
    world.edges["EDGE2"]["certificates"].append(cert_record(renewed, Services="SMTP"))
    _forget(world.edges["EDGE2"]["certificates"][1], "Services")  # the shared one
    assert of(world.evaluate(), "edges-differ") == []
    world.edges["EDGE2"]["certificates"][1]["Services"] = "None"
    (finding,) = of(world.evaluate(), "edges-differ")
    assert finding.severity == Severity.ERROR


def test_hybrid_receive_fqdn_counts_a_certificate_that_may_be_in_use():
    world = clean_world()
    world.send(HYBRID)["TlsCertificateName"] = None
    _forget(world.edges["EDGE1"]["certificates"][1], "Services")
    assert of(world.evaluate(), "hybrid-receive-connector") == []
    world.edges["EDGE1"]["certificates"][1]["Services"] = "None"
    (finding,) = of(world.evaluate(), "hybrid-receive-connector")
    assert "Fqdn" in finding.evidence["problems"]
