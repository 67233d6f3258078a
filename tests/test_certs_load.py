"""Loading PEM, DER, PKCS#7 and PKCS#12, leaf selection, and the specific errors."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from edgebook.certs import CertificateError, load_certificates, load_private_key
from edgebook.certs.load import load_certificate_list, order_chain
from edgebook.errors import EdgebookError
from tests.support.certs import (
    DIGICERT_G2,
    SEED_SUBJECT,
    key_pem,
    make_ca,
    make_leaf,
    name,
    pem,
    write_der,
    write_p7b,
    write_pem,
    write_pfx,
)


@pytest.fixture(scope="module")
def pki():
    root = make_ca(name((NameOID.COMMON_NAME, "Test Root")))
    ica = make_ca(DIGICERT_G2, issuer=root)
    leaf = make_leaf(ica, SEED_SUBJECT, ["hybrid.msxfaq.de"])
    return root, ica, leaf


def test_certificate_error_is_an_edgebook_error():
    assert issubclass(CertificateError, EdgebookError)


def test_single_pem_certificate(tmp_path, pki):
    _, _, leaf = pki
    bundle = load_certificates(write_pem(tmp_path / "c.pem", leaf.cert))
    assert bundle.leaf == leaf.cert
    assert bundle.chain == []
    assert bundle.private_key is None
    assert bundle.source == tmp_path / "c.pem"


def test_pem_chain_in_any_order_picks_the_leaf_and_orders_the_chain(tmp_path, pki):
    root, ica, leaf = pki
    bundle = load_certificates(write_pem(tmp_path / "c.pem", root.cert, leaf.cert, ica.cert))
    assert bundle.leaf == leaf.cert
    assert bundle.chain == [ica.cert, root.cert]
    assert bundle.certificates == [leaf.cert, ica.cert, root.cert]


def test_pem_with_unencrypted_key_picks_the_keys_certificate(tmp_path, pki):
    _, ica, leaf = pki
    path = write_pem(tmp_path / "k.pem", ica.cert, leaf.cert, key=leaf.key)
    bundle = load_certificates(path)
    assert bundle.leaf == leaf.cert
    assert bundle.private_key is not None


def test_key_decides_the_leaf_even_for_a_ca_certificate(tmp_path, pki):
    _, ica, leaf = pki
    bundle = load_certificates(write_pem(tmp_path / "k.pem", leaf.cert, ica.cert, key=ica.key))
    assert bundle.leaf == ica.cert
    assert bundle.chain == [leaf.cert]


def test_pem_with_encrypted_key(tmp_path, pki):
    _, _, leaf = pki
    path = write_pem(tmp_path / "k.pem", leaf.cert, key=leaf.key, password="s3cret")
    assert load_certificates(path, "s3cret").private_key is not None


def test_encrypted_key_without_password(tmp_path, pki):
    _, _, leaf = pki
    path = write_pem(tmp_path / "k.pem", leaf.cert, key=leaf.key, password="s3cret")
    with pytest.raises(CertificateError, match=r"k\.pem.*encrypted.*password"):
        load_certificates(path)


def test_encrypted_key_with_wrong_password(tmp_path, pki):
    _, _, leaf = pki
    path = write_pem(tmp_path / "k.pem", leaf.cert, key=leaf.key, password="s3cret")
    with pytest.raises(CertificateError, match=r"k\.pem: wrong password"):
        load_certificates(path, "nope")


def test_password_for_an_unencrypted_key_is_ignored(tmp_path, pki):
    _, _, leaf = pki
    path = write_pem(tmp_path / "k.pem", leaf.cert, key=leaf.key)
    assert load_certificates(path, "unused").private_key is not None


def test_der_certificate(tmp_path, pki):
    _, _, leaf = pki
    assert load_certificates(write_der(tmp_path / "c.cer", leaf.cert)).leaf == leaf.cert


@pytest.mark.parametrize("as_pem", [False, True])
def test_pkcs7(tmp_path, pki, as_pem):
    root, ica, leaf = pki
    path = write_p7b(tmp_path / "c.p7b", [root.cert, ica.cert, leaf.cert], as_pem=as_pem)
    bundle = load_certificates(path)
    assert bundle.leaf == leaf.cert
    assert bundle.chain == [ica.cert, root.cert]


def test_pkcs12_with_password(tmp_path, pki):
    root, ica, leaf = pki
    bundle = load_certificates(write_pfx(tmp_path / "e.pfx", leaf, [ica, root], "pw"), "pw")
    assert bundle.leaf == leaf.cert
    assert bundle.chain == [ica.cert, root.cert]
    assert bundle.private_key is not None


def test_pkcs12_without_password(tmp_path, pki):
    _, _, leaf = pki
    assert load_certificates(write_pfx(tmp_path / "e.p12", leaf, [], None)).leaf == leaf.cert


def test_pkcs12_wrong_password(tmp_path, pki):
    _, _, leaf = pki
    path = write_pfx(tmp_path / "e.pfx", leaf, [], "pw")
    with pytest.raises(CertificateError, match=r"e\.pfx: wrong password"):
        load_certificates(path, "wrong")


def test_pkcs12_needs_a_password(tmp_path, pki):
    _, _, leaf = pki
    path = write_pfx(tmp_path / "e.pfx", leaf, [], "pw")
    with pytest.raises(CertificateError, match=r"e\.pfx: .*password.*--password-env"):
        load_certificates(path)


def test_missing_file(tmp_path):
    with pytest.raises(CertificateError, match=r"nope\.pem: the certificate file does not exist"):
        load_certificates(tmp_path / "nope.pem")


def test_directory(tmp_path):
    with pytest.raises(CertificateError, match="is a folder, not a certificate file"):
        load_certificates(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "e.pem").write_bytes(b"")
    with pytest.raises(CertificateError, match=r"e\.pem: the file is empty"):
        load_certificates(tmp_path / "e.pem")


def test_text_that_is_not_a_certificate(tmp_path):
    (tmp_path / "notes.txt").write_text("hello, this is not a certificate\n")
    with pytest.raises(CertificateError, match=r"notes\.txt: not a certificate: expected PEM"):
        load_certificates(tmp_path / "notes.txt")


def test_truncated_der(tmp_path, pki):
    _, _, leaf = pki
    data = leaf.cert.public_bytes(serialization.Encoding.DER)
    (tmp_path / "c.cer").write_bytes(data[: len(data) // 2])
    with pytest.raises(CertificateError, match=r"c\.cer: the file is truncated"):
        load_certificates(tmp_path / "c.cer")


def test_truncated_pfx(tmp_path, pki):
    _, _, leaf = pki
    data = write_pfx(tmp_path / "full.pfx", leaf, [], "pw").read_bytes()
    (tmp_path / "cut.pfx").write_bytes(data[:-100])
    with pytest.raises(CertificateError, match=r"cut\.pfx: the file is truncated"):
        load_certificates(tmp_path / "cut.pfx", "pw")


def test_truncated_pem(tmp_path, pki):
    _, _, leaf = pki
    text = pem(leaf.cert)
    (tmp_path / "c.pem").write_bytes(text[: len(text) // 2])
    with pytest.raises(CertificateError, match=r"c\.pem: a PEM block has no END line"):
        load_certificates(tmp_path / "c.pem")


def test_damaged_pem_body(tmp_path, pki):
    _, _, leaf = pki
    lines = pem(leaf.cert).splitlines(keepends=True)
    (tmp_path / "c.pem").write_bytes(lines[0] + lines[1][:20] + b"\n" + lines[-1])
    with pytest.raises(CertificateError, match=r"c\.pem: the CERTIFICATE block is damaged"):
        load_certificates(tmp_path / "c.pem")


def test_pem_with_only_a_request_explains_what_to_do(tmp_path):
    block = b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
    (tmp_path / "r.csr").write_bytes(block)
    with pytest.raises(CertificateError, match="submit the request to your CA"):
        load_certificates(tmp_path / "r.csr")


def test_pem_with_only_a_key(tmp_path, pki):
    _, _, leaf = pki
    (tmp_path / "k.pem").write_bytes(key_pem(leaf.key))
    with pytest.raises(
        CertificateError, match=r"no certificate in this PEM file \(found PRIVATE KEY"
    ):
        load_certificates(tmp_path / "k.pem")


def test_der_key_only(tmp_path, pki):
    _, _, leaf = pki
    data = leaf.key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "k.der").write_bytes(data)
    with pytest.raises(CertificateError, match="holds a private key but no certificate"):
        load_certificates(tmp_path / "k.der")


def test_two_keys_are_refused(tmp_path, pki):
    _, ica, leaf = pki
    (tmp_path / "k.pem").write_bytes(key_pem(leaf.key) + key_pem(ica.key) + pem(leaf.cert))
    with pytest.raises(CertificateError, match="more than one private key"):
        load_certificates(tmp_path / "k.pem")


def test_duplicates_are_removed(tmp_path, pki):
    _, ica, leaf = pki
    bundle = load_certificates(write_pem(tmp_path / "c.pem", leaf.cert, ica.cert, leaf.cert))
    assert bundle.chain == [ica.cert]


def test_certificate_list_keeps_file_order(tmp_path, pki):
    root, ica, _ = pki
    assert load_certificate_list(write_pem(tmp_path / "r.pem", root.cert, ica.cert)) == [
        root.cert,
        ica.cert,
    ]


def test_order_chain_puts_unrelated_certificates_last(pki):
    root, ica, leaf = pki
    other = make_ca(name((NameOID.COMMON_NAME, "Other")))
    assert order_chain(leaf.cert, [other.cert, root.cert, ica.cert]) == [
        ica.cert,
        root.cert,
        other.cert,
    ]


@pytest.mark.parametrize("encrypted", [False, True])
@pytest.mark.parametrize("encoding", ["pem", "der"])
def test_load_private_key(tmp_path, pki, encrypted, encoding):
    _, _, leaf = pki
    algorithm = (
        serialization.BestAvailableEncryption(b"pw") if encrypted else serialization.NoEncryption()
    )
    enc = serialization.Encoding.PEM if encoding == "pem" else serialization.Encoding.DER
    data = leaf.key.private_bytes(enc, serialization.PrivateFormat.PKCS8, algorithm)
    (tmp_path / "k").write_bytes(data)
    key = load_private_key(tmp_path / "k", "pw")
    assert key.public_key() == leaf.key.public_key()


@pytest.mark.parametrize("encoding", ["pem", "der"])
def test_load_private_key_wrong_passphrase(tmp_path, pki, encoding):
    _, _, leaf = pki
    enc = serialization.Encoding.PEM if encoding == "pem" else serialization.Encoding.DER
    data = leaf.key.private_bytes(
        enc, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
    )
    (tmp_path / "k").write_bytes(data)
    with pytest.raises(CertificateError, match="wrong"):
        load_private_key(tmp_path / "k", "nope")


def test_load_private_key_from_a_certificate_file(tmp_path, pki):
    _, _, leaf = pki
    with pytest.raises(CertificateError, match="no private key"):
        load_private_key(write_pem(tmp_path / "c.pem", leaf.cert), "pw")


def test_load_private_key_missing_file(tmp_path):
    with pytest.raises(CertificateError, match="does not exist"):
        load_private_key(tmp_path / "k.pem", "pw")
