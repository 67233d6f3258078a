"""Bad inputs for `edgebook cert show|tls-name|check|csr|pfx` (pki/ files: see corpus)."""

from __future__ import annotations

import pytest

from tests.bad_inputs.corpus import FIFO, FOLDER, SECRET_ENV, Case, run_case

TRUNCATED_BOMB = b"-----BEGIN CERTIFICATE-----\nMIIB\n" * 5000


def _with(argv: list[str], extra: tuple[str, ...]) -> list[str]:
    """argv with each option of extra (option, value, ...) replaced or added."""
    for option, value in zip(extra[::2], extra[1::2], strict=True):
        if option in argv:
            argv[argv.index(option) + 1] = value
        else:
            argv += [option, value]
    return argv


def show(id: str, file: object, *says: str, argv: tuple = ()) -> Case:
    return Case(id, ("cert", "show", "f.pem", *argv), 2, says, {"f.pem": file})


def csr(id: str, *extra: str, says: tuple, files: dict | None = None, usage=False) -> Case:
    argv = ["cert", "csr", "--subject", "CN=mail.contoso.com", "--dns", "mail.contoso.com"]
    argv += ["--key-out", "new.key", "--out", "new.csr", "--passphrase-env", SECRET_ENV]
    return Case(id, tuple(_with(argv, extra)), 2, says, files or {}, usage=usage)


def pfx(id: str, *extra: str, says: tuple, files: dict | None = None) -> Case:
    argv = ["cert", "pfx", "--key", "pki/leaf.key", "--cert", "pki/leaf.pem", "--out", "o.pfx"]
    argv += ["--key-passphrase-env", SECRET_ENV, "--passphrase-env", SECRET_ENV]
    return Case(id, tuple(_with(argv, extra)), 2, says, files or {})


CASES = [
    Case("show-missing", ("cert", "show", "nope.pem"), 2, ("nope.pem", "does not exist")),
    show("show-folder", FOLDER, "is a folder", "give the path of the file"),
    show("show-fifo", FIFO, "not a regular file"),
    show("show-empty", b"", "the file is empty", "export the certificate again"),
    show("show-blank", b"\n\n  \n", "the file is empty"),
    show("show-text", b"hello, certificate\n", "not a certificate", "expected PEM, DER"),
    show("show-begin-bomb", TRUNCATED_BOMB, "no END line", "copy it again"),
    show("show-huge", b"0" * (5 * 1024 * 1024), "more than the 4.0 MiB"),
    show(
        "show-csr",
        b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        "no certificate in this PEM file",
        "submit the request to your CA",
    ),
    show(
        "show-damaged-pem",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "damaged or truncated",
        "export the certificate again",
    ),
    show(
        "show-key-only",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "damaged",
    ),
    show("show-truncated-der", b"\x30\x82\x04\x00" + b"\x00" * 40, "truncated (44 of 1028 bytes)"),
    Case(
        "show-pfx-no-password",
        ("cert", "show", "pki/leaf.pfx"),
        2,
        ("protected by a password", "--password-env"),
    ),
    Case(
        "show-pfx-wrong-password",
        ("cert", "show", "pki/leaf.pfx", "--password-env", "WRONG"),
        2,
        ("wrong password", "check the password"),
    ),
    Case(
        "show-password-env-unset",
        ("cert", "show", "pki/leaf.pfx", "--password-env", "UNSET"),
        2,
        ("environment variable UNSET is not set",),
    ),
    Case(
        "tls-name-two-unrelated",
        ("cert", "tls-name", "pki/two.pem"),
        2,
        ("not one chain", "other.fabrikam.com", "give a file with only the certificate"),
    ),
    Case("tls-name-missing", ("cert", "tls-name", "x.cer"), 2, ("does not exist",)),
    Case(
        "tls-name-csr",
        ("cert", "tls-name", "pki/request.csr"),
        2,
        ("no certificate", "submit the request to your CA"),
    ),
    Case(
        "check-bad-fqdn",
        ("cert", "check", "pki/leaf.pem", "--fqdn", "bad name"),
        2,
        ("invalid FQDN 'bad name'", "give a host name"),
    ),
    Case(
        "check-negative-days",
        ("cert", "check", "pki/leaf.pem", "--fqdn", "a.b", "--days", "-1"),
        2,
        ("--days must not be negative",),
        usage=True,
    ),
    Case(
        "check-days-text",
        ("cert", "check", "pki/leaf.pem", "--fqdn", "a.b", "--days", "x"),
        2,
        ("--days wants a whole number",),
        usage=True,
    ),
    Case(
        "check-roots-missing",
        ("cert", "check", "pki/leaf.pem", "--fqdn", "a.b", "--roots", "r.pem"),
        2,
        ("r.pem", "does not exist"),
    ),
    Case(
        "check-chain-text",
        ("cert", "check", "pki/leaf.pem", "--fqdn", "a.b", "--chain", "c.txt"),
        2,
        ("not a certificate",),
        {"c.txt": "chain\n"},
    ),
    Case("check-no-fqdn", ("cert", "check", "pki/leaf.pem"), 2, ("--fqdn",), usage=True),
    csr("csr-bad-dns", "--dns", "bad name", says=("invalid DNS name 'bad name'",)),
    csr("csr-unicode-dns", "--dns", "☃.contoso.com", says=("invalid DNS name",)),
    csr("csr-dns-wildcard-middle", "--dns", "a.*.contoso.com", says=("a wildcard only as",)),
    csr("csr-key-exists", "--key-out", "pki/leaf.key", says=("already exists",)),
    csr("csr-out-exists", "--out", "pki/request.csr", says=("already exists",)),
    csr(
        "csr-missing-folder",
        "--out",
        "nowhere/new.csr",
        says=("the folder nowhere", "does not exist"),
    ),
    csr("csr-same-file", "--out", "new.key", says=("must be different files",)),
    csr("csr-passphrase-unset", "--passphrase-env", "UNSET", says=("UNSET is not set",)),
    csr("csr-subject", "--subject", "no equals sign", says=("no equals sign",)),
    csr("csr-key-type", "--key-type", "rsa512", says=("invalid choice: 'rsa512'",), usage=True),
    pfx("pfx-key-missing", "--key", "none.key", says=("none.key: the key file does not exist",)),
    pfx(
        "pfx-not-its-key",
        "--cert",
        "pki/other.pem",
        says=("no certificate in it belongs to the key",),
    ),
    pfx("pfx-out-exists", "--out", "pki/leaf.pfx", says=("already exists",)),
    pfx(
        "pfx-wrong-key-passphrase",
        "--key-passphrase-env",
        "WRONG",
        says=("wrong password for the private key",),
    ),
    pfx("pfx-chain-text", "--chain", "pki/request.csr", says=("no certificate",)),
    pfx("pfx-cert-der-key", "--key", "pki/leaf.der", says=("not a private key",)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_cert_inputs(case: Case, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WRONG", "not-the-passphrase")
    monkeypatch.delenv("UNSET", raising=False)
    run_case(case, tmp_path, monkeypatch, capsys)
