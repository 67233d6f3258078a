"""Checks for the Edge role: one test (or more) per finding slug, plus the reusable pieces."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edgebook.certs import (
    TLS_NAME_MAX,
    CertificateError,
    check_certificate,
    days_left,
    describe,
    dns_names,
    is_self_signed,
    key_description,
    matches_fqdn,
    tls_certificate_name,
)
from edgebook.certs.chain import build_chain, directly_issued_by
from edgebook.certs.load import CertificateBundle
from edgebook.findings import Severity
from tests.support.certs import (
    CLIENT_AUTH,
    DIGICERT_G2,
    NOW,
    SEED_SUBJECT,
    SERVER_AUTH,
    make_ca,
    make_key,
    make_leaf,
    name,
)

FQDN = "hybrid.msxfaq.de"


@pytest.fixture(scope="module")
def pki():
    root = make_ca(name((NameOID.COMMON_NAME, "Test Root")))
    ica = make_ca(DIGICERT_G2, issuer=root)
    leaf = make_leaf(ica, SEED_SUBJECT, [FQDN, "*.msxfaq.de"])
    return root, ica, leaf


def _check(cert, pki, **kwargs):
    root, ica, _ = pki
    kwargs.setdefault("chain", [ica.cert])
    kwargs.setdefault("roots", [root.cert])
    return check_certificate(cert, **kwargs)


def _slugs(findings):
    return [f.slug for f in findings]


def _only(findings, slug):
    matching = [f for f in findings if f.slug == slug]
    assert len(matching) == 1, _slugs(findings)
    return matching[0]


def test_a_good_certificate_has_no_findings(pki):
    assert _check(pki[2].cert, pki, fqdns=[FQDN, "mail.msxfaq.de"]) == []


# --- validity -----------------------------------------------------------------------------


def test_expired(pki):
    cert = make_leaf(pki[1], SEED_SUBJECT, [FQDN], days_valid=10, not_before_offset=-20).cert
    finding = _only(_check(cert, pki), "cert-expired")
    assert finding.severity == Severity.ERROR
    assert "expired" in finding.message
    assert finding.evidence["not_after"].endswith("Z")


def test_expiring_within_the_default_window(pki):
    cert = make_leaf(pki[1], SEED_SUBJECT, [FQDN], days_valid=11, not_before_offset=-1).cert
    finding = _only(_check(cert, pki), "cert-expiring")
    assert finding.severity == Severity.WARNING
    assert finding.evidence["days_left"] == 9
    assert finding.evidence["warning_days"] == 30
    assert "renew" in finding.message


def test_expiring_window_is_configurable(pki):
    cert = make_leaf(pki[1], SEED_SUBJECT, [FQDN], days_valid=11, not_before_offset=-1).cert
    assert _check(cert, pki, warning_days=5) == []
    assert _slugs(_check(cert, pki, warning_days=10)) == ["cert-expiring"]


def test_not_yet_valid(pki):
    cert = make_leaf(pki[1], SEED_SUBJECT, [FQDN], not_before_offset=2).cert
    finding = _only(_check(cert, pki), "cert-not-yet-valid")
    assert finding.severity == Severity.ERROR


def test_now_is_honoured(pki):
    cert = pki[2].cert
    later = cert.not_valid_after_utc + dt.timedelta(days=1)
    assert "cert-expired" in _slugs(_check(cert, pki, now=later))
    assert days_left(cert, later) == -1


# --- names --------------------------------------------------------------------------------


def test_san_missing_fqdn(pki):
    finding = _only(_check(pki[2].cert, pki, fqdns=["edge.contoso.com"]), "san-missing-fqdn")
    assert finding.severity == Severity.ERROR
    assert finding.evidence["fqdn"] == "edge.contoso.com"
    assert finding.evidence["dns_names"] == [FQDN, "*.msxfaq.de"]


def test_fqdn_only_in_the_common_name_is_reported_with_a_hint(pki):
    cert = make_leaf(pki[1], SEED_SUBJECT, ["other.msxfaq.org"]).cert
    finding = _only(_check(cert, pki, fqdns=[FQDN]), "san-missing-fqdn")
    assert "subject CN" in finding.message


@pytest.mark.parametrize(
    ("pattern", "fqdn", "expected"),
    [
        ("mail.contoso.com", "mail.contoso.com", True),
        ("mail.contoso.com", "MAIL.Contoso.COM.", True),
        ("mail.contoso.com", "smtp.contoso.com", False),
        ("*.contoso.com", "mail.contoso.com", True),
        ("*.contoso.com", "contoso.com", False),
        ("*.contoso.com", "a.b.contoso.com", False),
        ("*.CONTOSO.com", "Mail.contoso.com", True),
        ("m*.contoso.com", "mail.contoso.com", False),
        ("mail.*.com", "mail.contoso.com", False),
        ("*.com", "contoso.com", False),
        ("*.*.contoso.com", "a.b.contoso.com", False),
        ("xn--mnchen-3ya.de", "münchen.de", True),
        ("*.xn--mnchen-3ya.de", "mail.münchen.de", True),
    ],
)
def test_matches_fqdn_rfc6125(pattern, fqdn, expected):
    assert matches_fqdn(pattern, fqdn) is expected


@pytest.mark.parametrize("fqdn", ["", "  ", "a b.com", "*.contoso.com", "a..b"])
def test_invalid_fqdn_is_a_certificate_error(fqdn):
    with pytest.raises(CertificateError, match="invalid FQDN"):
        matches_fqdn("mail.contoso.com", fqdn)


def test_dns_names(pki):
    assert dns_names(pki[2].cert) == [FQDN, "*.msxfaq.de"]
    assert dns_names(pki[1].cert) == []


# --- usage, key, signature ----------------------------------------------------------------


def test_eku_without_server_auth(pki):
    cert = make_leaf(pki[1], SEED_SUBJECT, [FQDN], eku=[CLIENT_AUTH]).cert
    finding = _only(_check(cert, pki), "eku-missing-server-auth")
    assert finding.severity == Severity.ERROR
    assert finding.evidence["eku"] == ["clientAuth"]


@pytest.mark.parametrize("eku", [None, [SERVER_AUTH], [ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE]])
def test_eku_absent_or_allowing_server_auth_is_fine(pki, eku):
    cert = make_leaf(pki[1], SEED_SUBJECT, [FQDN], eku=eku).cert
    assert "eku-missing-server-auth" not in _slugs(_check(cert, pki))


@pytest.mark.parametrize(
    ("key_type", "weak"),
    [("rsa1024", True), ("p192", True), ("rsa2048", False), ("p256", False), ("p384", False)],
)
def test_weak_key(pki, key_type, weak):
    cert = make_leaf(pki[1], SEED_SUBJECT, [FQDN], key_type=key_type).cert
    assert ("weak-key" in _slugs(_check(cert, pki))) is weak


def test_weak_key_evidence(pki):
    cert = make_leaf(pki[1], SEED_SUBJECT, [FQDN], key_type="rsa1024").cert
    finding = _only(_check(cert, pki), "weak-key")
    assert finding.evidence == {"key_type": "RSA", "key_size": 1024}
    assert finding.severity == Severity.ERROR


@pytest.mark.parametrize("algorithm", [hashes.SHA1(), hashes.MD5()])
def test_weak_signature(algorithm):
    root = make_ca(name((NameOID.COMMON_NAME, "RSA Root")), key_type="rsa2048")
    cert = make_leaf(root, SEED_SUBJECT, [FQDN], hash_algorithm=algorithm).cert
    findings = check_certificate(cert, roots=[root.cert])
    finding = _only(findings, "weak-signature")
    assert finding.evidence["signature_hash"] == algorithm.name
    # The signature itself still verifies, so the chain is complete.
    assert "chain-incomplete" not in _slugs(findings)


def test_key_description(pki):
    assert key_description(pki[2].cert) == "EC 256 (secp256r1)"
    rsa_cert = make_leaf(pki[1], SEED_SUBJECT, [FQDN], key_type="rsa2048").cert
    assert key_description(rsa_cert) == "RSA 2048"


# --- self-signed and chains ---------------------------------------------------------------


def test_self_signed_is_information_and_says_it_is_normal_for_the_default_cert():
    cert = make_leaf(
        None, name((NameOID.COMMON_NAME, "EDGE01")), ["EDGE01", "edge01.contoso.com"]
    ).cert
    findings = check_certificate(cert, fqdns=["edge01.contoso.com"], roots=[])
    finding = _only(findings, "self-signed")
    assert finding.severity == Severity.INFO
    assert "normal" in finding.message and "default" in finding.message
    assert "chain-incomplete" not in _slugs(findings)
    assert is_self_signed(cert)


def test_same_names_but_foreign_signature_is_not_self_signed():
    subject = name((NameOID.COMMON_NAME, "EDGE01"))
    signer = make_ca(subject)
    cert = make_leaf(signer, subject, ["edge01"]).cert  # issuer == subject, other key
    assert not is_self_signed(cert)


def test_chain_complete_with_intermediate_and_root(pki):
    assert "chain-incomplete" not in _slugs(_check(pki[2].cert, pki))


def test_chain_missing_intermediate(pki):
    finding = _only(_check(pki[2].cert, pki, chain=[]), "chain-incomplete")
    assert finding.severity == Severity.WARNING
    assert finding.evidence["missing_issuer"] == "CN=DigiCert Global CA G2, O=DigiCert Inc, C=US"
    assert "intermediate" in finding.message


def test_chain_with_an_impostor_intermediate_of_the_same_name(pki):
    root, _, leaf = pki
    impostor = make_ca(DIGICERT_G2, issuer=root)  # same name, different key
    finding = _only(_check(leaf.cert, pki, chain=[impostor.cert]), "chain-incomplete")
    assert finding.severity == Severity.ERROR
    assert finding.evidence["bad_signature"] == ["CN=DigiCert Global CA G2, O=DigiCert Inc, C=US"]
    assert "signature" in finding.message


def test_chain_to_an_untrusted_root(pki):
    root, ica, leaf = pki
    other_root = make_ca(name((NameOID.COMMON_NAME, "Other Root")))
    finding = _only(
        check_certificate(leaf.cert, chain=[ica.cert, root.cert], roots=[other_root.cert]),
        "chain-incomplete",
    )
    assert finding.evidence["path"][-1] == "CN=Test Root"
    assert "not in the supplied roots" in finding.message


def test_chain_uses_the_system_store_when_no_roots_are_given(pki):
    _, ica, leaf = pki
    finding = _only(check_certificate(leaf.cert, chain=[ica.cert]), "chain-incomplete")
    assert finding.evidence["trust_anchors"] == "the system trust store"


def test_build_chain_returns_the_verified_path(pki):
    root, ica, leaf = pki
    other = make_ca(name((NameOID.COMMON_NAME, "Other")))
    result = build_chain(leaf.cert, [other.cert, ica.cert], [root.cert])
    assert result.trusted
    assert result.path == [leaf.cert, ica.cert, root.cert]


# --- private key --------------------------------------------------------------------------


def test_private_key_matching_is_fine(pki):
    assert _check(pki[2].cert, pki, private_key=pki[2].key) == []


def test_private_key_mismatch(pki):
    finding = _only(_check(pki[2].cert, pki, private_key=make_key()), "private-key-mismatch")
    assert finding.severity == Severity.ERROR


def test_private_key_missing_only_when_expected(pki):
    assert _check(pki[2].cert, pki) == []
    finding = _only(_check(pki[2].cert, pki, has_private_key=False), "private-key-missing")
    assert finding.severity == Severity.ERROR
    assert _check(pki[2].cert, pki, has_private_key=True) == []


# --- TlsCertificateName length ------------------------------------------------------------


def test_tls_name_too_long(pki):
    subject = name(
        (NameOID.COUNTRY_NAME, "DE"),
        (NameOID.ORGANIZATION_NAME, "A very long organisation name for a test " * 5),
        (NameOID.COMMON_NAME, FQDN),
    )
    cert = make_leaf(pki[1], subject, [FQDN]).cert
    finding = _only(_check(cert, pki), "tls-name-too-long")
    assert finding.severity == Severity.WARNING
    assert finding.evidence["length"] > 256
    assert "KB4052493" in finding.message


def test_tls_name_at_the_limit_is_fine(pki):
    prefix = f"<I>CN=DigiCert Global CA G2, O=DigiCert Inc, C=US<S>CN={FQDN}, OU="
    unit = "u" * (TLS_NAME_MAX - len(prefix))
    subject = name((NameOID.ORGANIZATIONAL_UNIT_NAME, unit), (NameOID.COMMON_NAME, FQDN))
    exact = make_leaf(pki[1], subject, [FQDN]).cert
    assert len(tls_certificate_name(exact)) == TLS_NAME_MAX
    assert "tls-name-too-long" not in _slugs(_check(exact, pki))
    longer = name((NameOID.ORGANIZATIONAL_UNIT_NAME, unit + "u"), (NameOID.COMMON_NAME, FQDN))
    assert "tls-name-too-long" in _slugs(_check(make_leaf(pki[1], longer, [FQDN]).cert, pki))


# --- server label and describe ------------------------------------------------------------


def test_findings_carry_the_server(pki):
    cert = make_leaf(pki[1], SEED_SUBJECT, [FQDN], not_before_offset=2).cert
    assert {f.server for f in _check(cert, pki, server="EDGE01")} == {"EDGE01"}


def test_describe_bundle_has_every_show_key(pki):
    root, ica, leaf = pki
    view = describe(CertificateBundle(leaf.cert, [ica.cert, root.cert], leaf.key))
    assert set(view) == {
        "thumbprint",
        "subject",
        "issuer",
        "serial",
        "not_before",
        "not_after",
        "dns_names",
        "eku",
        "key_type",
        "key_size",
        "signature_hash",
        "self_signed",
        "has_private_key",
        "tls_certificate_name",
        "chain",
    }
    assert view["subject"].startswith("CN=hybrid.msxfaq.de, OU=IT")
    assert view["issuer"] == "CN=DigiCert Global CA G2, O=DigiCert Inc, C=US"
    assert view["eku"] == ["serverAuth", "clientAuth"]
    assert view["key_type"] == "EC" and view["key_size"] == 256
    assert view["signature_hash"] == "sha256"
    assert view["has_private_key"] is True
    assert view["serial"] == format(leaf.cert.serial_number, "X").rjust(len(view["serial"]), "0")
    assert [c["subject"] for c in view["chain"]] == [
        "CN=DigiCert Global CA G2, O=DigiCert Inc, C=US",
        "CN=Test Root",
    ]
    assert "has_private_key" not in view["chain"][0]
    assert view["chain"][1]["self_signed"] is True


def test_describe_times_are_iso_utc(pki):
    view = describe(pki[2].cert)
    parsed = dt.datetime.fromisoformat(view["not_before"].replace("Z", "+00:00"))
    assert parsed == pki[2].cert.not_valid_before_utc
    assert abs(parsed - (NOW - dt.timedelta(days=1))) < dt.timedelta(seconds=1)


def test_describe_serial_keeps_a_leading_zero_byte_for_high_bit_serials(pki):
    ca = pki[1]
    builder = (
        x509.CertificateBuilder()
        .subject_name(name((NameOID.COMMON_NAME, "s")))
        .issuer_name(ca.cert.subject)
        .public_key(make_key().public_key())
        .serial_number(0x80FF)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=1))
    )
    assert describe(builder.sign(ca.key, hashes.SHA256()))["serial"] == "0080FF"


def test_describe_rejects_other_types():
    with pytest.raises(TypeError):
        describe("not a certificate")


def test_issuance_is_verified_once_per_pair_and_stays_exact() -> None:
    ca = make_ca(name((NameOID.COMMON_NAME, "Cache Root")))
    other = make_ca(name((NameOID.COMMON_NAME, "Cache Root")))  # same name, another key
    leaf = make_leaf(ca, name((NameOID.COMMON_NAME, "cache.contoso.com")), ["cache.contoso.com"])
    directly_issued_by.cache_clear()
    assert [directly_issued_by(leaf.cert, ca.cert) for _ in range(3)] == [True] * 3
    assert directly_issued_by.cache_info()[:2] == (2, 1)  # verified once, then remembered
    copy = x509.load_der_x509_certificate(leaf.cert.public_bytes(Encoding.DER))
    assert directly_issued_by(copy, ca.cert)  # an equal certificate (same DER) hits too
    assert directly_issued_by.cache_info()[:2] == (3, 1)
    assert not directly_issued_by(leaf.cert, other.cert)  # same name, the other key refused
