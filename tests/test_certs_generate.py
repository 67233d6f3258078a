"""CSR generation, encrypted key files, and PFX assembly."""

from __future__ import annotations

import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, x25519
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edgebook.certs import (
    CertificateError,
    build_pfx,
    generate_csr,
    load_certificates,
    windows_name,
    write_csr,
    write_pfx,
    write_private_key,
)
from tests.support.certs import DIGICERT_G2, SEED_SUBJECT, make_ca, make_leaf, name

SUBJECT = "CN=hybrid.msxfaq.de, OU=IT, O=msxfaq, L=hoevelhof, S=North Rhine-Westphalia, C=DE"


@pytest.fixture(scope="module")
def pki():
    root = make_ca(name((NameOID.COMMON_NAME, "Test Root")))
    ica = make_ca(DIGICERT_G2, issuer=root)
    leaf = make_leaf(ica, SEED_SUBJECT, ["hybrid.msxfaq.de"])
    return root, ica, leaf


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    ("key_type", "kind", "size"),
    [
        ("rsa2048", rsa.RSAPrivateKey, 2048),
        ("rsa3072", rsa.RSAPrivateKey, 3072),
        ("p256", ec.EllipticCurvePrivateKey, 256),
        ("p384", ec.EllipticCurvePrivateKey, 384),
    ],
)
def test_generate_csr_key_types(key_type, kind, size):
    csr, key = generate_csr(SUBJECT, ["hybrid.msxfaq.de"], key_type)
    assert isinstance(key, kind)
    assert key.key_size == size
    assert csr.is_signature_valid


def test_generate_csr_rsa4096():
    _, key = generate_csr("CN=a", ["a.contoso.com"], "rsa4096")
    assert key.key_size == 4096


def test_generate_csr_subject_san_and_eku():
    csr, key = generate_csr(
        SUBJECT, ["hybrid.msxfaq.de", "*.MSXFAQ.de", "hybrid.msxfaq.de", "münchen.de"], "p256"
    )
    assert windows_name(csr.subject) == SUBJECT
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [
        "hybrid.msxfaq.de",
        "*.msxfaq.de",
        "xn--mnchen-3ya.de",
    ]
    eku = csr.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert csr.public_key() == key.public_key()


def test_generate_csr_rejects_unknown_key_type():
    with pytest.raises(CertificateError, match="unknown key type 'rsa1024'"):
        generate_csr(SUBJECT, ["a.b.c"], "rsa1024")


@pytest.mark.parametrize(
    "dns",
    [
        "",
        "a b.com",
        "mail.*.com",
        "*",
        "a..b",
        "a" * 64 + ".com",
        "xn--zz.com",
        "my_host.com",
        "-edge.contoso.com",
        ".".join(["a" * 60] * 5),
    ],
)
def test_generate_csr_rejects_bad_dns_names(dns):
    with pytest.raises(CertificateError, match="invalid DNS name"):
        generate_csr(SUBJECT, [dns], "p256")


def test_generate_csr_needs_a_dns_name():
    with pytest.raises(CertificateError, match="no DNS name"):
        generate_csr(SUBJECT, [], "p256")


def test_generate_csr_rejects_a_bad_subject():
    with pytest.raises(CertificateError, match="unknown attribute"):
        generate_csr("FOO=bar", ["a.b.c"], "p256")


def test_write_private_key_is_encrypted_and_0600(tmp_path):
    _, key = generate_csr(SUBJECT, ["a.b.c"], "p256")
    path = write_private_key(key, tmp_path / "k.pem", "s3cret")
    data = path.read_bytes()
    assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert _mode(path) == 0o600
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(data, None)
    loaded = serialization.load_pem_private_key(data, b"s3cret")
    assert loaded.public_key() == key.public_key()


def test_write_private_key_never_overwrites(tmp_path):
    _, key = generate_csr(SUBJECT, ["a.b.c"], "p256")
    target = tmp_path / "k.pem"
    target.write_text("keep me")
    with pytest.raises(CertificateError, match=r"k\.pem: already exists"):
        write_private_key(key, target, "s3cret")
    assert target.read_text() == "keep me"


def test_write_private_key_refuses_an_empty_passphrase(tmp_path):
    _, key = generate_csr(SUBJECT, ["a.b.c"], "p256")
    with pytest.raises(CertificateError, match="empty passphrase"):
        write_private_key(key, tmp_path / "k.pem", "")
    assert not (tmp_path / "k.pem").exists()


def test_write_private_key_into_a_missing_folder(tmp_path):
    _, key = generate_csr(SUBJECT, ["a.b.c"], "p256")
    with pytest.raises(CertificateError, match="does not exist"):
        write_private_key(key, tmp_path / "no" / "k.pem", "pw")


def test_write_csr_and_never_overwrite(tmp_path):
    csr, _ = generate_csr(SUBJECT, ["a.b.c"], "p256")
    path = write_csr(csr, tmp_path / "r.csr")
    assert x509.load_pem_x509_csr(path.read_bytes()) == csr
    with pytest.raises(CertificateError, match="already exists"):
        write_csr(csr, path)


def test_build_pfx_orders_the_chain_leaf_to_root(tmp_path, pki):
    root, ica, leaf = pki
    data = build_pfx(leaf.key, leaf.cert, [root.cert, ica.cert], "pw", "Edge 2025")
    loaded = pkcs12.load_pkcs12(data, b"pw")
    assert loaded.cert.certificate == leaf.cert
    assert loaded.cert.friendly_name == b"Edge 2025"
    assert [c.certificate for c in loaded.additional_certs] == [ica.cert, root.cert]
    bundle = load_certificates(write_pfx(data, tmp_path / "e.pfx"), "pw")
    assert bundle.leaf == leaf.cert
    assert _mode(tmp_path / "e.pfx") == 0o600


def test_build_pfx_uses_windows_compatible_encryption_by_default(pki):
    _, ica, leaf = pki
    data = build_pfx(leaf.key, leaf.cert, [ica.cert], "pw")
    # pbeWithSHAAnd3-KeyTripleDES-CBC (1.2.840.113549.1.12.1.3) for Windows Server 2016.
    assert bytes.fromhex("2a864886f70d010c0103") in data
    modern = build_pfx(leaf.key, leaf.cert, [ica.cert], "pw", aes256=True)
    assert bytes.fromhex("2a864886f70d010c0103") not in modern
    assert pkcs12.load_pkcs12(modern, b"pw").cert.certificate == leaf.cert


def test_build_pfx_refuses_a_foreign_key(pki):
    root, _, leaf = pki
    with pytest.raises(CertificateError, match="does not belong"):
        build_pfx(root.key, leaf.cert, [], "pw")


def test_build_pfx_refuses_a_key_type_pkcs12_cannot_hold(pki):
    _, ica, _ = pki
    key = x25519.X25519PrivateKey.generate()
    leaf = make_leaf(ica, name((NameOID.COMMON_NAME, "edge1.contoso.com")), key=key)
    with pytest.raises(CertificateError, match="private key is X25519, which a PFX cannot hold"):
        build_pfx(key, leaf.cert, [ica.cert], "pw")


def test_build_pfx_refuses_unrelated_chain_certificates(pki):
    _, ica, leaf = pki
    stranger = make_ca(name((NameOID.COMMON_NAME, "Stranger")))
    with pytest.raises(CertificateError, match="CN=Stranger did not issue"):
        build_pfx(leaf.key, leaf.cert, [ica.cert, stranger.cert], "pw")


def test_build_pfx_refuses_an_empty_passphrase(pki):
    _, _, leaf = pki
    with pytest.raises(CertificateError, match="empty passphrase"):
        build_pfx(leaf.key, leaf.cert, [], "")


def test_write_pfx_never_overwrites(tmp_path, pki):
    _, _, leaf = pki
    data = build_pfx(leaf.key, leaf.cert, [], "pw")
    write_pfx(data, tmp_path / "e.pfx")
    with pytest.raises(CertificateError, match="already exists"):
        write_pfx(data, tmp_path / "e.pfx")
