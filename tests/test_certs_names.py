"""Windows DN rendering (CertNameToStr, X500 | reverse), TlsCertificateName and thumbprints."""

from __future__ import annotations

import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from edgebook.certs import (
    CertificateError,
    names,
    parse_tls_certificate_name,
    parse_windows_name,
    thumbprint,
    tls_certificate_name,
    tls_name_matches,
    windows_name,
)
from edgebook.certs.names import TLS_NAME_MAX, issuer_name, subject_name
from tests.support.certs import (
    DIGICERT_G2,
    LETS_ENCRYPT_R11,
    SEED_SUBJECT,
    make_ca,
    make_leaf,
    name,
)

# --- a tiny DER writer, to build names cryptography refuses to build ----------------------


def _tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + content


def _oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.insert(0, 0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(chunk)
    return _tlv(0x06, bytes(body))


def _atv(dotted: str, tag: int, value: bytes) -> bytes:
    return _tlv(0x30, _oid(dotted) + _tlv(tag, value))


def _dn(*rdns: list[bytes]) -> bytes:
    """A Name from RDNs in ASN.1 order; each RDN is a list of encoded attributes (kept as is)."""
    return _tlv(0x30, b"".join(_tlv(0x31, b"".join(rdn)) for rdn in rdns))


UTF8, PRINTABLE, IA5, BMP = 0x0C, 0x13, 0x16, 0x1E
CN, OU = "2.5.4.3", "2.5.4.11"


def _cn(value: str, tag: int = UTF8) -> str:
    encoded = value.encode("utf-16-be") if tag == BMP else value.encode("utf-8")
    return windows_name(_dn([_atv(CN, tag, encoded)]))


# --- real-world names ---------------------------------------------------------------------


def test_seed_subject_renders_as_windows_shows_it():
    assert windows_name(name(*SEED_SUBJECT)) == (
        "CN=hybrid.msxfaq.de, OU=IT, O=msxfaq, L=hoevelhof, S=North Rhine-Westphalia, C=DE"
    )


def test_digicert_global_ca_g2():
    assert windows_name(name(*DIGICERT_G2)) == "CN=DigiCert Global CA G2, O=DigiCert Inc, C=US"


def test_lets_encrypt_r11_apostrophe_is_not_quoted():
    assert windows_name(name(*LETS_ENCRYPT_R11)) == "CN=R11, O=Let's Encrypt, C=US"


def test_ev_subject_with_unknown_oids_falls_back_to_oid_prefix():
    # www.microsoft.com's EV subject (DER from the .NET runtime's tests).
    encoded = bytes.fromhex(
        "3082010F31133011060B2B0601040182373C02010313025553311B3019060B2B"
        "0601040182373C0201020C0A57617368696E67746F6E311D301B060355040F13"
        "1450726976617465204F7267616E697A6174696F6E3112301006035504051309"
        "363030343133343835310B3009060355040613025553310E300C06035504110C"
        "0539383035323113301106035504080C0A57617368696E67746F6E3110300E06"
        "035504070C075265646D6F6E643118301606035504090C0F31204D6963726F73"
        "6F667420576179311E301C060355040A0C154D6963726F736F667420436F7270"
        "6F726174696F6E310E300C060355040B0C054D53434F4D311A30180603550403"
        "0C117777772E6D6963726F736F66742E636F6D"
    )
    assert windows_name(encoded) == (
        "CN=www.microsoft.com, OU=MSCOM, O=Microsoft Corporation, STREET=1 Microsoft Way, "
        "L=Redmond, S=Washington, PostalCode=98052, C=US, SERIALNUMBER=600413485, "
        "OID.2.5.4.15=Private Organization, OID.1.3.6.1.4.1.311.60.2.1.2=Washington, "
        "OID.1.3.6.1.4.1.311.60.2.1.3=US"
    )


# --- structure ----------------------------------------------------------------------------


def test_rdns_are_reversed_and_joined_with_comma_space():
    assert windows_name(name((NameOID.COUNTRY_NAME, "US"), (NameOID.COMMON_NAME, "a"))) == (
        "CN=a, C=US"
    )


def test_multi_valued_rdn_keeps_stored_order_joined_with_plus():
    rdn = x509.RelativeDistinguishedName(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "a"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "b"),
        ]
    )
    dn = x509.Name(
        [x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "DE")]), rdn]
    )
    assert windows_name(dn) == "CN=a + OU=b, C=DE"


def test_multi_valued_rdn_not_der_sorted_keeps_stored_order():
    # Windows accepts SETs that are not DER-sorted and prints them as stored.
    encoded = bytes.fromhex("301C311A300B060355040B13047A7A7A7A300B060355040B130461616161")
    assert windows_name(encoded) == "OU=zzzz + OU=aaaa"


def test_empty_name_renders_empty():
    assert windows_name(x509.Name([])) == ""


@pytest.mark.parametrize(
    ("oid", "key"),
    [
        (NameOID.COMMON_NAME, "CN"),
        (NameOID.LOCALITY_NAME, "L"),
        (NameOID.ORGANIZATION_NAME, "O"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "OU"),
        (NameOID.EMAIL_ADDRESS, "E"),
        (NameOID.STATE_OR_PROVINCE_NAME, "S"),
        (NameOID.STREET_ADDRESS, "STREET"),
        (NameOID.TITLE, "T"),
        (NameOID.GIVEN_NAME, "G"),
        (NameOID.INITIALS, "I"),
        (NameOID.SURNAME, "SN"),
        (NameOID.DOMAIN_COMPONENT, "DC"),
        (NameOID.SERIAL_NUMBER, "SERIALNUMBER"),
        (x509.ObjectIdentifier("2.5.4.13"), "Description"),
        (NameOID.POSTAL_CODE, "PostalCode"),
        (x509.ObjectIdentifier("2.5.4.18"), "POBox"),
        (x509.ObjectIdentifier("2.5.4.20"), "Phone"),
        (NameOID.DN_QUALIFIER, "dnQualifier"),
        (NameOID.BUSINESS_CATEGORY, "OID.2.5.4.15"),
        (NameOID.USER_ID, "OID.0.9.2342.19200300.100.1.1"),
        (NameOID.PSEUDONYM, "OID.2.5.4.65"),
    ],
)
def test_x500_key_names(oid, key):
    assert windows_name(name((oid, "v"))) == f"{key}=v"


def test_country_key():
    assert windows_name(name((NameOID.COUNTRY_NAME, "DE"))) == "C=DE"


def test_email_attribute_is_e():
    dn = name((NameOID.COMMON_NAME, "edge"), (NameOID.EMAIL_ADDRESS, "hostmaster@contoso.com"))
    assert windows_name(dn) == "E=hostmaster@contoso.com, CN=edge"


# --- quoting ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        ("Common Name", "CN=Common Name"),
        ("Common,Name", 'CN="Common,Name"'),
        ("Common+Name", 'CN="Common+Name"'),
        ("Common=Name", 'CN="Common=Name"'),
        ("Common\nName", 'CN="Common\nName"'),
        ("Common<Name", 'CN="Common<Name"'),
        ("Common>Name", 'CN="Common>Name"'),
        ("Common#Name", 'CN="Common#Name"'),
        ("Common;Name", 'CN="Common;Name"'),
        ('Common"Name', 'CN="Common""Name"'),
        ('"Common Name', 'CN="""Common Name"'),
        ('Common Name"', 'CN="Common Name"""'),
        (" Common Name", 'CN=" Common Name"'),
        ("Common Name ", 'CN="Common Name "'),
        ("\tCommon Name", 'CN="\tCommon Name"'),
        ("Common Name\r", 'CN="Common Name\r"'),
        ("Common\rName", "CN=Common\rName"),  # CR inside is not a trigger
        ("Common  Name", "CN=Common  Name"),  # consecutive spaces are not quoted
        ("Common\u2002Name\u2002", "CN=Common\u2002Name\u2002"),  # en space is no trigger
        ("#00", 'CN="#00"'),  # a leading '#' would read as hex: quoted
        ("Müller & Söhne (Ä)", "CN=Müller & Söhne (Ä)"),
        ("a/b\\c'd", "CN=a/b\\c'd"),  # no backslash escapes
    ],
)
def test_quoting_rules(value, rendered):
    assert _cn(value) == rendered


def test_empty_value_is_quoted():
    assert _cn("", PRINTABLE) == 'CN=""'


def test_quoting_in_multi_valued_rdn():
    encoded = _dn([_atv(CN, UTF8, b"a,b"), _atv(OU, UTF8, b"c")])
    assert windows_name(encoded) == 'CN="a,b" + OU=c'


# --- string types -------------------------------------------------------------------------


def test_bmp_string_unicode():
    assert _cn("日本語", BMP) == "CN=日本語"


def test_bmp_string_quoting_applies_too():
    assert _cn("a<b", BMP) == 'CN="a<b"'


def test_utf8_string_unicode():
    assert _cn("Zertifikatsstelle München") == "CN=Zertifikatsstelle München"


def test_t61_valid_utf8_is_read_as_utf8():
    assert windows_name(bytes.fromhex("300D310B300906035504061402C2A2")) == "C=\u00a2"


def test_t61_invalid_utf8_falls_back_to_latin1():
    assert windows_name(bytes.fromhex("300E310C300A06035504071403C2A2F8")) == "L=\u00c2\u00a2\u00f8"


def test_t61_name_from_dotnet_issue_25195():
    encoded = bytes.fromhex(
        "308186310b3009060355040613024a50310f300d060355040813064d69796167"
        "69311830160603550407130f53656e64616920497a756d692d6b753117301506"
        "0355040a140e47726170654369747920696e632e311a3018060355040b141154"
        "6f6f6c7320446576656c6f706d656e74311730150603550403140e4772617065"
        "4369747920696e632e"
    )
    assert windows_name(encoded) == (
        "CN=GrapeCity inc., OU=Tools Development, O=GrapeCity inc., "
        "L=Sendai Izumi-ku, S=Miyagi, C=JP"
    )


def test_trailing_nul_characters_are_dropped():
    assert windows_name(_dn([_atv(CN, IA5, b"host\x00\x00")])) == "CN=host"


def test_octet_string_is_unwrapped_once_and_printed_as_hex():
    assert windows_name(_dn([_atv(CN, 0x04, bytes.fromhex("3000"))])) == "CN=#3000"


def test_non_string_value_is_printed_as_hex_of_its_encoding_unquoted():
    encoded = _tlv(0x30, _tlv(0x31, _tlv(0x30, _oid("2.5.4.8") + bytes.fromhex("0101FF"))))
    assert windows_name(encoded) == "S=#0101FF"


def test_tpm_attribute_names():
    encoded = _dn([_atv("2.23.133.2.1", UTF8, b"id:564D5700")])
    assert windows_name(encoded) == "TPMManufacturer=id:564D5700"


def test_country_name_cryptography_refuses_still_renders_from_der():
    # cryptography will not build C=Germany; Windows shows it as stored.
    assert windows_name(_dn([_atv("2.5.4.6", PRINTABLE, b"Germany")])) == "C=Germany"


def test_malformed_der_is_a_certificate_error():
    with pytest.raises(CertificateError, match="distinguished name"):
        windows_name(bytes.fromhex("3017311530130603550403130C436F6D6D6F6E204E616D65"))


# --- certificates, TlsCertificateName, thumbprint -----------------------------------------


@pytest.fixture(scope="module")
def hybrid_cert():
    ca = make_ca(DIGICERT_G2)
    return make_leaf(ca, SEED_SUBJECT, ["hybrid.msxfaq.de"]).cert


def test_tls_certificate_name_of_seed_certificate(hybrid_cert):
    assert tls_certificate_name(hybrid_cert) == (
        "<I>CN=DigiCert Global CA G2, O=DigiCert Inc, C=US"
        "<S>CN=hybrid.msxfaq.de, OU=IT, O=msxfaq, L=hoevelhof, S=North Rhine-Westphalia, C=DE"
    )


def test_subject_and_issuer_names_read_from_the_certificate_bytes(hybrid_cert):
    assert issuer_name(hybrid_cert) == windows_name(hybrid_cert.issuer)
    assert subject_name(hybrid_cert) == windows_name(hybrid_cert.subject)


def test_thumbprint_is_sha1_upper_hex(hybrid_cert):
    value = thumbprint(hybrid_cert)
    assert value == hashlib.sha1(hybrid_cert.public_bytes(Encoding.DER)).hexdigest().upper()
    assert len(value) == 40
    assert value == value.upper()


def test_tls_name_limit_constant():
    assert TLS_NAME_MAX == 256


@pytest.mark.parametrize(
    "text",
    [
        "<I>CN=R11, O=Let's Encrypt, C=US<S>CN=mail.contoso.com",
        "<i>CN=R11, O=Let's Encrypt, C=US<s>CN=mail.contoso.com",
        "  <I> CN=R11, O=Let's Encrypt, C=US <S> CN=mail.contoso.com  ",
    ],
)
def test_parse_tls_certificate_name_tags_and_whitespace(text):
    assert parse_tls_certificate_name(text) == (
        "CN=R11, O=Let's Encrypt, C=US",
        "CN=mail.contoso.com",
    )


def test_parse_tls_certificate_name_ignores_tags_inside_quoted_values():
    assert parse_tls_certificate_name('<I>O="a<S>b"<S>CN=x') == ('O="a<S>b"', "CN=x")
    assert parse_tls_certificate_name('<I>O="a""<S>""b"<S>CN="<I>"') == (
        'O="a""<S>""b"',
        'CN="<I>"',
    )
    with pytest.raises(CertificateError, match="exactly one <S> tag"):
        parse_tls_certificate_name('<I>O="a<S>CN=x')  # the quote never closes


def test_parse_tls_certificate_name_is_cached_on_the_text() -> None:
    text = "<I>CN=R11, O=Let's Encrypt, C=US<S>CN=cached.contoso.com"
    names._parse_tls_certificate_name.cache_clear()
    first = parse_tls_certificate_name(text)
    assert parse_tls_certificate_name(text) == first == ("CN=R11, O=Let's Encrypt, C=US", first[1])
    assert names._parse_tls_certificate_name.cache_info()[:2] == (1, 1)
    for _ in range(2):  # errors are raised every time, not cached
        with pytest.raises(CertificateError, match="TlsCertificateName"):
            parse_tls_certificate_name("<I>CN=a")
        with pytest.raises(CertificateError, match="TlsCertificateName"):
            parse_tls_certificate_name(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "CN=a",
        "<S>CN=a<I>CN=b",
        "<I>CN=a",
        "<I><S>CN=a",
        "<I>CN=a<S>",
        "<I>CN=a<S>CN=b<S>CN=c",
        "<I>CN=a<I>CN=b<S>CN=c",
    ],
)
def test_parse_tls_certificate_name_rejects_bad_syntax(text):
    with pytest.raises(CertificateError, match="TlsCertificateName"):
        parse_tls_certificate_name(text)


def test_names_are_rendered_once_per_der(hybrid_cert):
    names._windows_name.cache_clear()
    first = (subject_name(hybrid_cert), issuer_name(hybrid_cert))
    assert names._windows_name.cache_info()[:2] == (0, 2)
    assert (subject_name(hybrid_cert), issuer_name(hybrid_cert)) == first
    assert windows_name(hybrid_cert.subject) == first[0]  # the same DER, re-encoded
    assert names._windows_name.cache_info()[:2] == (3, 2)
    with pytest.raises(CertificateError):  # errors are raised every time, not cached
        windows_name(b"\x30\x03\x31\x01")
    with pytest.raises(CertificateError):
        windows_name(b"\x30\x03\x31\x01")


def test_tls_name_round_trip_and_matching(hybrid_cert):
    text = tls_certificate_name(hybrid_cert)
    assert parse_tls_certificate_name(text) == (issuer_name(hybrid_cert), subject_name(hybrid_cert))
    assert tls_name_matches(text.replace("<I>", "<i>").upper(), hybrid_cert)
    assert not tls_name_matches("<I>CN=R11, O=Let's Encrypt, C=US<S>CN=x", hybrid_cert)


# --- parsing Windows-style names (CSR subjects) -------------------------------------------


def test_parse_windows_name_round_trips_the_seed_subject():
    text = "CN=hybrid.msxfaq.de, OU=IT, O=msxfaq, L=hoevelhof, S=North Rhine-Westphalia, C=DE"
    parsed = parse_windows_name(text)
    assert parsed == name(*SEED_SUBJECT)
    assert windows_name(parsed) == text


def test_parse_windows_name_quotes_aliases_and_oids():
    parsed = parse_windows_name(
        'cn="Contoso, Ltd ""HQ""" ; ST=Bayern, Email=a@b.de, OID.2.5.4.15=x'
    )
    assert windows_name(parsed) == 'CN="Contoso, Ltd ""HQ""", S=Bayern, E=a@b.de, OID.2.5.4.15=x'
    assert parsed.rdns[0].get_attributes_for_oid(NameOID.BUSINESS_CATEGORY)[0].value == "x"


def test_parse_windows_name_multi_valued_and_trailing_separator():
    parsed = parse_windows_name("CN=a + OU=b, C=DE,")
    assert windows_name(parsed) == "CN=a + OU=b, C=DE"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("XX=a", "unknown attribute"),
        ("CN", "KEY=value"),
        ('CN="open', "unterminated"),
        ("CN=#0403", "starts with '#'"),
        ('CN=a"b', "stray quote"),
        ('CN="a" b', "unexpected"),
        ("C=Germany", "cannot build"),
    ],
)
def test_parse_windows_name_errors(text, message):
    with pytest.raises(CertificateError, match=message):
        parse_windows_name(text)
