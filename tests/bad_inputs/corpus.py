"""The bad-input corpus runner: one case = files, a command line, the exit code and message
expected; every case also proves no traceback, a bounded time, nothing written or changed in
its sandbox (inputs included), and no secret in stdout or stderr."""

from __future__ import annotations

import datetime as dt
import functools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from edgebook import cli

SECRET = "Hunter2-s3cr3t!"
SECRET_ENV = "EDGEBOOK_BAD_SECRET"
TIME_BOUND_S = 15.0
FIFO = object()  # a files value: make a named pipe there
FOLDER = object()  # a files value: make a folder there


@dataclass(frozen=True)
class Case:
    """One bad input: files (relative to the work folder; {w} in argv is that folder)."""

    id: str
    argv: tuple[str, ...]
    code: int
    says: tuple[str, ...]  # fragments of the message: the problem and what to do
    files: dict[str, object] = field(default_factory=dict)
    stream: str = "err"  # "out" for the monitoring plugin's status line
    usage: bool = False  # argparse prints its usage line before the message


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under root with its size, mtime and mode (a FIFO is not opened)."""
    found = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        found[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns, info.st_mode)
    return found


def materialise(work: Path, files: dict[str, object]) -> None:
    """Write the case's files (and the PKI files) into the work folder."""
    for name, data in {**pki_files(), **files}.items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is FIFO:
            os.mkfifo(path)
        elif isinstance(data, bytes):
            path.write_bytes(data)
        elif isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        elif data is FOLDER:
            path.mkdir()
        else:
            raise TypeError(f"{name}: bytes, str, FIFO or FOLDER, not {data!r}")


def run_case(case: Case, tmp_path: Path, monkeypatch, capsys) -> tuple[str, str]:
    """Run the case through edgebook.cli.main and check everything every case must hold."""
    sandbox = tmp_path / "sandbox"
    work = sandbox / "work"
    work.mkdir(parents=True)
    materialise(work, case.files)
    monkeypatch.chdir(work)
    monkeypatch.setenv(SECRET_ENV, SECRET)
    monkeypatch.setenv("EDGEBOOK_OUTPUTS", str(work / "outputs"))
    before = snapshot(sandbox)
    argv = [part.replace("{w}", str(work)) for part in case.argv]
    started = time.monotonic()
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code or 0)
    elapsed = time.monotonic() - started
    out, err = capsys.readouterr()
    assert code == case.code, (code, out, err)
    assert elapsed < TIME_BOUND_S, f"took {elapsed:.1f} s"
    for text in (out, err):
        assert "Traceback" not in text, text
        assert SECRET not in text, text
    text = out if case.stream == "out" else err
    lines = text.strip().splitlines()
    assert lines, f"no message on std{case.stream}"
    if not case.usage:
        assert len(lines) == 1, text
    message = lines[-1]
    prefix = "EDGEBOOK UNKNOWN" if case.stream == "out" else "edgebook"
    assert message.startswith(prefix), message
    for fragment in case.says:
        assert fragment.replace("{w}", str(work)) in message, (fragment, message)
    assert snapshot(sandbox) == before, "something was written or changed in the sandbox"
    return out, err


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, signer: ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), False)
        .sign(signer, hashes.SHA256())
    )


@functools.cache
def pki_files() -> dict[str, bytes]:
    """pki/: a CA, a leaf it issued with its encrypted key and PFX (passphrase SECRET), an
    unrelated self-signed certificate, DER copies and a CSR."""
    ca_key, leaf_key, other_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _certificate("Bad Inputs CA", ca_key, "Bad Inputs CA", ca_key)
    leaf = _certificate("mail.contoso.com", leaf_key, "Bad Inputs CA", ca_key)
    other = _certificate("other.fabrikam.com", other_key, "other.fabrikam.com", other_key)
    pem = serialization.Encoding.PEM
    encrypted = serialization.BestAvailableEncryption(SECRET.encode())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_name("mail.contoso.com"))
        .sign(leaf_key, hashes.SHA256())
    )
    return {
        "pki/ca.pem": ca.public_bytes(pem),
        "pki/ca.der": ca.public_bytes(serialization.Encoding.DER),
        "pki/leaf.pem": leaf.public_bytes(pem),
        "pki/leaf.der": leaf.public_bytes(serialization.Encoding.DER),
        "pki/other.pem": other.public_bytes(pem),
        "pki/two.pem": leaf.public_bytes(pem) + other.public_bytes(pem),
        "pki/leaf.key": leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, encrypted),
        "pki/leaf.pfx": pkcs12.serialize_key_and_certificates(
            b"leaf", leaf_key, leaf, [ca], encrypted
        ),
        "pki/request.csr": csr.public_bytes(pem),
    }
