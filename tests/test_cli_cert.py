"""`edgebook cert ...` end to end through edgebook.cli.main, including every bad input."""

from __future__ import annotations

import io
import json
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

import edgebook.cli as cli
import edgebook.commands.cert as cert_command
from tests.support.certs import (
    CLIENT_AUTH,
    DIGICERT_G2,
    SEED_SUBJECT,
    make_ca,
    make_leaf,
    name,
    write_pem,
    write_pfx,
)

FQDN = "hybrid.msxfaq.de"
TLS_NAME = (
    "<I>CN=DigiCert Global CA G2, O=DigiCert Inc, C=US"
    "<S>CN=hybrid.msxfaq.de, OU=IT, O=msxfaq, L=hoevelhof, S=North Rhine-Westphalia, C=DE"
)


@pytest.fixture(autouse=True)
def only_cert_group(monkeypatch):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("cert",))


@pytest.fixture(scope="module")
def pki():
    root = make_ca(name((NameOID.COMMON_NAME, "Test Root")))
    ica = make_ca(DIGICERT_G2, issuer=root)
    leaf = make_leaf(ica, SEED_SUBJECT, [FQDN])
    return root, ica, leaf


@pytest.fixture
def files(tmp_path, pki, monkeypatch):
    root, ica, leaf = pki
    monkeypatch.setenv("PFX_PW", "pfx-secret")
    return {
        "pfx": write_pfx(tmp_path / "edge.pfx", leaf, [ica, root], "pfx-secret"),
        "leaf": write_pem(tmp_path / "leaf.pem", leaf.cert),
        "ica": write_pem(tmp_path / "ica.pem", ica.cert),
        "root": write_pem(tmp_path / "root.pem", root.cert),
        "dir": tmp_path,
    }


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("edgebook: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


# --- show ---------------------------------------------------------------------------------


def test_show_json_for_a_pfx_lists_leaf_then_chain(capsys, files):
    code, out, _ = run(capsys, "cert", "show", files["pfx"], "--password-env", "PFX_PW", "--json")
    assert code == 0
    view = json.loads(out)
    assert view["subject"].startswith("CN=hybrid.msxfaq.de")
    assert view["has_private_key"] is True
    assert view["tls_certificate_name"] == TLS_NAME
    assert [c["subject"] for c in view["chain"]] == [
        "CN=DigiCert Global CA G2, O=DigiCert Inc, C=US",
        "CN=Test Root",
    ]


def test_show_human(capsys, files):
    code, out, _ = run(capsys, "cert", "show", files["leaf"])
    assert code == 0
    assert "Issuer:              CN=DigiCert Global CA G2, O=DigiCert Inc, C=US" in out
    assert "Private key:         no" in out
    assert f"TlsCertificateName:  {TLS_NAME}" in out


def test_show_pfx_without_password(capsys, files):
    assert_user_error(*run(capsys, "cert", "show", files["pfx"]), "edge.pfx", "--password-env")


def test_show_pfx_wrong_password(capsys, files, monkeypatch):
    monkeypatch.setenv("BAD_PW", "nope")
    code, out, err = run(capsys, "cert", "show", files["pfx"], "--password-env", "BAD_PW")
    assert_user_error(code, out, err, "wrong password")


def test_show_unset_password_variable(capsys, files, monkeypatch):
    monkeypatch.delenv("UNSET_PW", raising=False)
    monkeypatch.setattr("sys.stdin", FakeTty())
    code, out, err = run(capsys, "cert", "show", files["pfx"], "--password-env", "UNSET_PW")
    assert_user_error(code, out, err, "UNSET_PW is not set")


def test_show_missing_file(capsys, files):
    assert_user_error(*run(capsys, "cert", "show", files["dir"] / "nope.pem"), "does not exist")


def test_show_not_a_certificate(capsys, files):
    (files["dir"] / "x.txt").write_text("hello")
    assert_user_error(*run(capsys, "cert", "show", files["dir"] / "x.txt"), "not a certificate")


# --- tls-name -----------------------------------------------------------------------------


def test_tls_name_prints_exactly_the_string(capsys, files):
    code, out, err = run(capsys, "cert", "tls-name", files["pfx"], "--password-env", "PFX_PW")
    assert (code, out, err) == (0, TLS_NAME + "\n", "")


def test_tls_name_truncated_file(capsys, files):
    data = files["leaf"].read_bytes()
    (files["dir"] / "cut.pem").write_bytes(data[:100])
    assert_user_error(*run(capsys, "cert", "tls-name", files["dir"] / "cut.pem"), "truncated")


# --- check --------------------------------------------------------------------------------


def test_check_clean_exits_0(capsys, files):
    argv = ["cert", "check", files["leaf"], "--fqdn", FQDN]
    code, out, _ = run(capsys, *argv, "--chain", files["ica"], "--roots", files["root"])
    assert code == 0
    assert "No findings." in out


def test_check_warnings_only_exits_1(capsys, files):
    code, out, _ = run(
        capsys, "cert", "check", files["leaf"], "--fqdn", FQDN, "--roots", files["root"]
    )
    assert code == 1
    assert "WARNING  chain-incomplete" in out


def test_check_errors_exit_2_with_json(capsys, files):
    argv = ["cert", "check", files["pfx"], "--password-env", "PFX_PW", "--fqdn", "edge.contoso.com"]
    code, out, _ = run(capsys, *argv, "--roots", files["root"], "--json")
    assert code == 2
    report = json.loads(out)
    assert report["verdict"] == "error"
    assert [f["slug"] for f in report["findings"]] == ["san-missing-fqdn"]
    assert report["findings"][0]["evidence"]["fqdn"] == "edge.contoso.com"


def test_check_days_window(capsys, files, pki):
    short = make_leaf(pki[1], SEED_SUBJECT, [FQDN], days_valid=20)
    path = write_pem(files["dir"] / "short.pem", short.cert, pki[1].cert)
    base = ["cert", "check", path, "--fqdn", FQDN, "--roots", files["root"]]
    assert run(capsys, *base)[0] == 1
    assert run(capsys, *base, "--days", "7")[0] == 0


def test_check_info_only_exits_0(capsys, files):
    selfsigned = make_leaf(
        None,
        name((NameOID.COMMON_NAME, "EDGE01")),
        ["edge01"],
        eku=[CLIENT_AUTH, x509.oid.ExtendedKeyUsageOID.SERVER_AUTH],
    )
    path = write_pem(files["dir"] / "self.pem", selfsigned.cert)
    code, out, _ = run(capsys, "cert", "check", path, "--fqdn", "edge01")
    assert code == 0
    assert "INFO     self-signed" in out


@pytest.mark.parametrize("days", ["-1", "soon"])
def test_check_bad_days(capsys, files, days):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["cert", "check", str(files["leaf"]), "--fqdn", FQDN, "--days", days])
    assert exit_info.value.code == 2
    assert "--days" in capsys.readouterr().err


def test_check_requires_fqdn(capsys, files):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["cert", "check", str(files["leaf"])])
    assert exit_info.value.code == 2
    assert "--fqdn" in capsys.readouterr().err


def test_check_invalid_fqdn(capsys, files):
    code, out, err = run(capsys, "cert", "check", files["leaf"], "--fqdn", "bad name")
    assert_user_error(code, out, err, "invalid FQDN")


def test_check_missing_roots_file(capsys, files):
    argv = ["cert", "check", files["leaf"], "--fqdn", FQDN, "--roots", files["dir"] / "r.pem"]
    assert_user_error(*run(capsys, *argv), "r.pem: the certificate file does not exist")


# --- csr ----------------------------------------------------------------------------------


def _csr_argv(files, *extra):
    return [
        "cert",
        "csr",
        "--subject",
        "CN=hybrid.msxfaq.de, O=msxfaq, C=DE",
        "--dns",
        FQDN,
        "--dns",
        "mail.msxfaq.de",
        "--key-type",
        "p256",
        "--key-out",
        files["dir"] / "new.key",
        "--passphrase-env",
        "KEY_PW",
        "--out",
        files["dir"] / "new.csr",
        *extra,
    ]


def test_csr_writes_encrypted_key_and_request(capsys, files, monkeypatch):
    monkeypatch.setenv("KEY_PW", "k3y-secret")
    code, out, _ = run(capsys, *_csr_argv(files))
    assert code == 0
    key_path, csr_path = files["dir"] / "new.key", files["dir"] / "new.csr"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(key_path.read_bytes(), b"k3y-secret")
    csr = x509.load_pem_x509_csr(csr_path.read_bytes())
    assert csr.public_key() == key.public_key()
    assert "k3y-secret" not in out


def test_csr_unset_variable_without_tty(capsys, files, monkeypatch):
    monkeypatch.delenv("KEY_PW", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO())
    assert_user_error(*run(capsys, *_csr_argv(files)), "KEY_PW is not set")
    assert not (files["dir"] / "new.key").exists()


def test_csr_prompts_twice_on_a_tty(capsys, files, monkeypatch):
    monkeypatch.delenv("KEY_PW", raising=False)
    monkeypatch.setattr("sys.stdin", FakeTty())
    answers = iter(["typed-secret", "typed-secret"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert run(capsys, *_csr_argv(files))[0] == 0
    data = (files["dir"] / "new.key").read_bytes()
    assert serialization.load_pem_private_key(data, b"typed-secret")


def test_csr_prompt_mismatch(capsys, files, monkeypatch):
    monkeypatch.delenv("KEY_PW", raising=False)
    monkeypatch.setattr("sys.stdin", FakeTty())
    answers = iter(["one", "two"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert_user_error(*run(capsys, *_csr_argv(files)), "differ")


def test_csr_empty_variable(capsys, files, monkeypatch):
    monkeypatch.setenv("KEY_PW", "")
    assert_user_error(*run(capsys, *_csr_argv(files)), "KEY_PW is empty")


def test_csr_never_overwrites(capsys, files, monkeypatch):
    monkeypatch.setenv("KEY_PW", "pw")
    (files["dir"] / "new.csr").write_text("old")
    assert_user_error(*run(capsys, *_csr_argv(files)), "new.csr: already exists")
    assert not (files["dir"] / "new.key").exists()


def test_csr_bad_subject(capsys, files, monkeypatch):
    monkeypatch.setenv("KEY_PW", "pw")
    argv = _csr_argv(files)
    argv[argv.index("--subject") + 1] = "XX=oops"
    assert_user_error(*run(capsys, *argv), "unknown attribute 'XX'")
    assert not (files["dir"] / "new.key").exists()


def test_csr_bad_key_type(capsys, files):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([str(a) for a in _csr_argv(files, "--key-type", "dsa1024")])
    assert exit_info.value.code == 2
    assert "--key-type" in capsys.readouterr().err


# --- pfx ----------------------------------------------------------------------------------


@pytest.fixture
def key_file(files, pki, monkeypatch):
    monkeypatch.setenv("KEY_PW", "k3y")
    monkeypatch.setenv("OUT_PW", "0ut")
    data = pki[2].key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"k3y"),
    )
    path = files["dir"] / "leaf.key"
    path.write_bytes(data)
    return path


def _pfx_argv(files, key_file, *extra):
    return [
        "cert",
        "pfx",
        "--key",
        key_file,
        "--cert",
        files["leaf"],
        "--key-passphrase-env",
        "KEY_PW",
        "--passphrase-env",
        "OUT_PW",
        "--out",
        files["dir"] / "out.pfx",
        *extra,
    ]


def test_pfx_assembles_key_cert_and_chain(capsys, files, key_file, pki):
    root, ica, _ = pki
    chain = write_pem(files["dir"] / "chain.pem", root.cert, ica.cert)
    code, out, _ = run(capsys, *_pfx_argv(files, key_file, "--chain", chain))
    assert code == 0
    assert "chain certificates: 2" in out
    assert "0ut" not in out
    out_path = files["dir"] / "out.pfx"
    assert stat.S_IMODE(out_path.stat().st_mode) == 0o600
    code, shown, _ = run(capsys, "cert", "show", out_path, "--password-env", "OUT_PW", "--json")
    view = json.loads(shown)
    assert view["has_private_key"] is True
    assert [c["subject"] for c in view["chain"]] == [
        "CN=DigiCert Global CA G2, O=DigiCert Inc, C=US",
        "CN=Test Root",
    ]


def test_pfx_wrong_key_passphrase(capsys, files, key_file, monkeypatch):
    monkeypatch.setenv("KEY_PW", "wrong")
    assert_user_error(*run(capsys, *_pfx_argv(files, key_file)), "wrong password")


def test_pfx_key_does_not_match(capsys, files, key_file):
    argv = _pfx_argv(files, key_file)
    argv[argv.index("--cert") + 1] = files["ica"]
    assert_user_error(*run(capsys, *argv), "no certificate in it belongs to the key")


def test_pfx_never_overwrites(capsys, files, key_file):
    (files["dir"] / "out.pfx").write_bytes(b"old")
    assert_user_error(*run(capsys, *_pfx_argv(files, key_file)), "already exists")
    assert (files["dir"] / "out.pfx").read_bytes() == b"old"


def test_pfx_unset_output_passphrase(capsys, files, key_file, monkeypatch):
    monkeypatch.delenv("OUT_PW")
    monkeypatch.setattr("sys.stdin", io.StringIO())
    assert_user_error(*run(capsys, *_pfx_argv(files, key_file)), "OUT_PW is not set")


def test_pfx_unrelated_chain(capsys, files, key_file):
    stranger = make_ca(name((NameOID.COMMON_NAME, "Stranger")))
    chain = write_pem(files["dir"] / "chain.pem", stranger.cert)
    argv = _pfx_argv(files, key_file, "--chain", chain)
    assert_user_error(*run(capsys, *argv), "CN=Stranger did not issue")


def test_pfx_missing_key_file(capsys, files, key_file):
    argv = _pfx_argv(files, key_file)
    argv[argv.index("--key") + 1] = files["dir"] / "none.key"
    assert_user_error(*run(capsys, *argv), "none.key: the key file does not exist")


def test_csr_into_a_missing_folder_writes_no_key(capsys, files, monkeypatch):
    monkeypatch.setenv("KEY_PW", "pw")
    argv = _csr_argv(files)
    argv[argv.index("--out") + 1] = files["dir"] / "absent" / "new.csr"
    assert_user_error(*run(capsys, *argv), "the folder", "absent does not exist")
    assert not (files["dir"] / "new.key").exists()


def test_csr_failing_to_write_the_request_removes_the_key(capsys, files, monkeypatch):
    monkeypatch.setenv("KEY_PW", "pw")

    def full_disk(csr: object, path: object) -> None:
        raise cert_command.CertificateError(f"{path}: cannot be created (No space left)")

    monkeypatch.setattr(cert_command, "write_csr", full_disk)
    assert_user_error(*run(capsys, *_csr_argv(files)), "No space left")
    assert not (files["dir"] / "new.key").exists()


def test_csr_prompt_with_closed_input_is_one_line(capsys, files, monkeypatch):
    monkeypatch.delenv("KEY_PW", raising=False)
    monkeypatch.setattr("sys.stdin", FakeTty())

    def closed(prompt: str = "") -> str:
        raise EOFError

    monkeypatch.setattr("getpass.getpass", closed)
    assert_user_error(*run(capsys, *_csr_argv(files)), "input ended")
    assert not (files["dir"] / "new.key").exists()


def test_pfx_into_a_missing_folder(capsys, files, key_file):
    argv = _pfx_argv(files, key_file)
    argv[argv.index("--out") + 1] = files["dir"] / "absent" / "out.pfx"
    assert_user_error(*run(capsys, *argv), "absent does not exist")
