"""The facts model: records as Exchange returns them in, typed facts and JSON out."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from edgebook.facts import (
    CertificateFact,
    EdgeFacts,
    EdgeSyncFact,
    EventFact,
    FactsError,
    HealthFact,
    OrgFacts,
    ReceiveConnectorFact,
    SendConnectorFact,
    SubscriptionFact,
    any_same_server,
    facts_to_dict,
    model,
    same_server,
)
from tests.support.orgs import (
    EDGES,
    MAILBOX,
    PUBLIC_FQDN,
    cert_record,
    clean_world,
    pki,
    thumb,
    tls_name,
)


def test_certificate_from_a_full_record():
    public = pki().public
    fact = CertificateFact.from_record(cert_record(public, Services="IMAP, POP, SMTP"))
    assert fact.thumbprint == thumb(public)
    assert fact.services == ("IMAP", "POP", "SMTP")
    assert fact.smtp
    assert fact.tls_certificate_name == tls_name(public)
    assert fact.cert == public.cert
    assert fact.domains == (PUBLIC_FQDN, "smtp.contoso.com")
    assert fact.is_self_signed is False
    assert fact.not_after == public.cert.not_valid_after_utc


@pytest.mark.parametrize(
    ("services", "expected"),
    [
        ("None", ()),
        ("", ()),
        (None, None),  # not projected: unknown, not "no services"
        (18, ("POP", "SMTP")),
        (["smtp", "Federation"], ("SMTP", "Federation")),
        ("IIS, SMTP", ("IIS", "SMTP")),
    ],
)
def test_services_in_every_form(services, expected):
    fact = CertificateFact.from_record({"Thumbprint": "AB", "Services": services})
    assert fact.services == expected
    assert fact.smtp == ("SMTP" in (expected or ()))
    assert ("Services" in fact.unknown()) == (expected is None)


def test_certificate_from_raw_data_alone_derives_the_rest():
    public = pki().public
    fact = CertificateFact.from_record({"RawData": cert_record(public)["RawData"]})
    assert fact.thumbprint == thumb(public)
    assert fact.subject == "CN=mail.contoso.com, O=Contoso, C=US"
    assert fact.issuer == "CN=Contoso Issuing CA 1"
    assert fact.domains == (PUBLIC_FQDN, "smtp.contoso.com")
    assert fact.not_before == public.cert.not_valid_before_utc
    assert fact.is_self_signed is False


def test_certificate_raw_data_as_base64_text_and_byte_list():
    der = cert_record(pki().public)["RawData"]
    as_text = CertificateFact.from_record({"RawData": base64.b64encode(der).decode()})
    as_list = CertificateFact.from_record({"RawData": list(der)})
    assert as_text.thumbprint == as_list.thumbprint == thumb(pki().public)


def test_certificate_with_thumbprint_only_tolerates_missing_properties():
    fact = CertificateFact.from_record({"Thumbprint": "ab cd ef"})
    assert fact.thumbprint == "ABCDEF"
    assert fact.cert is None and fact.not_after is None and fact.has_private_key is None
    assert fact.current(dt.datetime.now(dt.UTC))


def test_certificate_without_thumbprint_or_raw_data_is_refused():
    with pytest.raises(FactsError, match="neither Thumbprint nor RawData"):
        CertificateFact.from_record({"Subject": "CN=x"})


def test_unreadable_raw_data_names_the_certificate():
    with pytest.raises(FactsError, match=r"ABC.*not a DER certificate"):
        CertificateFact.from_record({"Thumbprint": "ABC", "RawData": b"garbage"})
    with pytest.raises(FactsError, match=r"ABC.*base64"):
        CertificateFact.from_record({"Thumbprint": "ABC", "RawData": "not base64!"})


def test_dates_naive_are_utc_and_iso_text_is_read():
    fact = CertificateFact.from_record(
        {
            "Thumbprint": "AB",
            "NotBefore": dt.datetime(2024, 1, 1, 12, 0),
            "NotAfter": "2025-01-01T00:00:00Z",
        }
    )
    assert fact.not_before == dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.UTC)
    assert fact.not_after == dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    assert not fact.current(dt.datetime(2025, 6, 1, tzinfo=dt.UTC))
    assert fact.current(dt.datetime(2024, 6, 1, tzinfo=dt.UTC))


def test_property_names_match_in_any_case():
    fact = CertificateFact.from_record({"thumbprint": "AB", "HASPRIVATEKEY": "True"})
    assert fact.thumbprint == "AB" and fact.has_private_key is True


def test_certificate_covers_with_wildcards_and_rejects_garbage():
    fact = CertificateFact.from_record(
        {"Thumbprint": "AB", "CertificateDomains": ["*.contoso.com"]}
    )
    assert fact.covers("mail.contoso.com")
    assert not fact.covers("a.b.contoso.com")
    assert not fact.covers("")
    assert not fact.covers("not a name")


def test_receive_connector_record():
    connector = ReceiveConnectorFact.from_record(
        {
            "Identity": "EDGE1\\Default internal receive connector EDGE1",
            "Bindings": ["0.0.0.0:25", "[::]:25"],
            "TlsCertificateName": {"CertificateIssuer": "CN=CA", "CertificateSubject": "CN=x"},
            "TlsDomainCapabilities": "mail.protection.outlook.com:AcceptCloudServicesMail",
            "Enabled": False,
        }
    )
    assert connector.name == "Default internal receive connector EDGE1"
    assert connector.tls_certificate_name == "<I>CN=CA<S>CN=x"
    assert connector.tls_domain_capabilities == (
        "mail.protection.outlook.com:AcceptCloudServicesMail",
    )
    assert connector.listens_on(25) and not connector.listens_on(587)
    assert connector.enabled is False


def test_send_connector_record_and_domains():
    connector = SendConnectorFact.from_record(
        {
            "Name": "Outbound to Office 365",
            "AddressSpaces": ["smtp:contoso.mail.onmicrosoft.com;1", "SMTP:--;1"],
            "RequireTLS": "True",
        }
    )
    assert connector.identity == "Outbound to Office 365"
    assert connector.domains == ("contoso.mail.onmicrosoft.com", "--")
    assert connector.require_tls is True
    assert connector.cloud_services_mail_enabled is None
    assert connector.enabled is True


def test_event_from_instance_id_and_health_alternative_names():
    event = EventFact.from_record({"InstanceId": 0xC0002EEE, "TimeWritten": "2024-01-01T00:00:00"})
    assert event.event_id == 12014
    assert event.time == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    health = HealthFact.from_record({"Name": "m", "HealthSet": "EdgeTransport", "State": "Online"})
    assert (health.health_set, health.state) == ("EdgeTransport", "Online")


def test_subscription_and_edgesync_records():
    subscription = SubscriptionFact.from_record(
        {"Name": "EDGE1", "Site": "S", "CreateUtc": "2024-01-01T00:00:00Z", "IsValid": False}
    )
    assert subscription.is_valid is False
    assert subscription.create_utc == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    row = EdgeSyncFact.from_record({"Name": "EDGE1", "SyncStatus": "Failed", "FailureDetail": "x"})
    assert (row.sync_status, row.failure_detail) == ("Failed", "x")


def test_edge_default_thumbprint_unknown_versus_not_configured():
    assert EdgeFacts.from_records("EDGE1").default_thumbprint is None
    empty = EdgeFacts.from_records("EDGE1", transport_service={"Name": "EDGE1"})
    assert empty.default_thumbprint == ""


def test_edge_from_records_builds_every_part():
    world = clean_world()
    org, edges = world.facts()
    edge = edges[0]
    assert edge.name == EDGES[0]
    assert edge.services == {"MSExchangeTransport": "Running", "ADAM_MSExchange": "Running"}
    assert edge.default_thumbprint == thumb(pki().defaults[EDGES[0]])
    assert edge.certificate(edge.default_thumbprint.lower()) is edge.certificates[0]
    assert edge.certificate(None) is None
    assert len(edge.send_connectors) == 3 and len(edge.queues) == 2
    assert edge.is_named("edge1") and edge.is_named("EDGE1.contoso.com")
    assert not edge.is_named("EDGE2")
    assert org.gathered and org.mailbox_servers[0].name == MAILBOX
    assert not OrgFacts().gathered


def test_same_server_matches_names_and_fqdns():
    assert same_server("edge1.contoso.com", "EDGE1")
    assert same_server("EDGE1", "edge1.contoso.com")
    assert not same_server("EDGE10", "EDGE1")
    assert not same_server("", "EDGE1")


@pytest.mark.parametrize(
    "references",
    [
        (),
        ("EDGE10", " ", ""),
        ("edge1.contoso.com",),
        ("EDGE2", " Edge1 "),
        ("edge1.",),
        ("contoso.com", "EDGE1.CONTOSO.COM."),
        ("edge2.contoso.com", "edge3"),
    ],
)
def test_any_same_server_is_same_server_of_each_reference(references):
    for candidates in [("EDGE1",), ("edge1.contoso.com",), ("EDGE1", "edge1.fabrikam.com"), ("",)]:
        expected = any(same_server(r, *candidates) for r in references)
        assert any_same_server(references, *candidates) is expected, (references, candidates)
    edge = EdgeFacts("EDGE1", "edge1.contoso.com")
    assert edge.named_in(references) is any(edge.is_named(r) for r in references)


def test_any_same_server_indexes_each_reference_list_once():
    model._server_index.cache_clear()
    sources = [f"EDGE{i:02d}" for i in range(1, 21)]
    assert [any_same_server(sources, f"edge{i:02d}.contoso.com") for i in (1, 20, 21)] == [
        True,
        True,
        False,
    ]
    assert model._server_index.cache_info()[:2] == (2, 1)


def test_facts_to_dict_is_json_without_bytes():
    org, edges = clean_world().facts()
    data = facts_to_dict(org, edges)
    text = json.dumps(data)  # raises on bytes or datetimes
    edge = data["edges"][0]
    public = edge["certificates"][1]
    assert public["tls_certificate_name"] == tls_name(pki().public)
    assert dt.datetime.fromisoformat(public["not_after"]) == pki().public.cert.not_valid_after_utc
    assert "RawData" not in text and "raw" not in public
    assert edge["smtp_probe"]["starttls_offered"] is True
    assert edge["ldaps_probe"]["thumbprint"] == thumb(pki().defaults[EDGES[0]])
    (root,) = data["org"]["settings"]["roots"]
    assert root["subject"] == "CN=Contoso Test Root, C=US"
    assert root["pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert data["org"]["subscriptions"][0]["name"] == EDGES[0]


def test_certificate_fact_reads_back_from_its_json():
    public = pki().public
    fact = CertificateFact.from_record(cert_record(public, Services="IMAP, POP, SMTP"))
    again = CertificateFact.from_dict(json.loads(json.dumps(fact.to_dict())))
    assert again == fact and again.cert == public.cert
    unknown = CertificateFact.from_record({"RawData": cert_record(public)["RawData"]})
    back = CertificateFact.from_dict(json.loads(json.dumps(unknown.to_dict())))
    assert back.services is None and back.unknown() == unknown.unknown()
    with pytest.raises(FactsError, match="not PEM"):
        CertificateFact.from_dict({**fact.to_dict(), "pem": "garbage"})
