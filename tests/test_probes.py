"""SMTP STARTTLS and LDAPS probes against the lab listeners, closed ports and silent ports."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import select
import signal
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from edgebook import certs, probe_verification, probes
from edgebook.errors import EdgebookError
from edgebook.lab.net.listeners import LdapsListener, SmtpListener
from edgebook.probe_verification import hostname_error
from edgebook.probes import ProbeTarget, ldaps_certificate, smtp_certificate
from tests.support.certs import Issued, key_pem, make_ca, make_leaf, name, pem

FQDN = "edge.contoso.test"


@dataclass
class Lab:
    ica: Issued
    leaf: Issued
    root_file: Path
    other_root_file: Path
    smtp: SmtpListener
    ldaps: LdapsListener
    state: dict[str, object]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    folder = tmp_path_factory.mktemp("probes")
    root = make_ca(name((NameOID.COMMON_NAME, "Lab Root")))
    ica = make_ca(name((NameOID.COMMON_NAME, "Lab Issuing CA G2")), issuer=root)
    subject = name((NameOID.ORGANIZATION_NAME, "Contoso"), (NameOID.COMMON_NAME, FQDN))
    leaf = make_leaf(ica, subject, [FQDN], days_valid=30)
    other = make_ca(name((NameOID.COMMON_NAME, "Other Root")))
    (folder / "root.pem").write_bytes(pem(root.cert))
    (folder / "other.pem").write_bytes(pem(other.cert))
    state: dict[str, object] = {
        "material": (pem(leaf.cert) + pem(ica.cert), key_pem(leaf.key)),
        "running": True,
    }
    smtp = SmtpListener(
        lambda: state["material"],  # type: ignore[arg-type, return-value]
        lambda *message: None,
        fqdn=FQDN,
        running=lambda: bool(state["running"]),
    )
    ldaps = LdapsListener(lambda: state["material"])  # type: ignore[arg-type, return-value]
    smtp.start()
    ldaps.start()
    yield Lab(ica, leaf, folder / "root.pem", folder / "other.pem", smtp, ldaps, state)
    smtp.stop()
    ldaps.stop()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_ports() -> Iterator[list[int]]:
    """Ports that accept connections (kernel backlog) and never say a word."""
    socks = []
    for _ in range(4):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        socks.append(sock)
    yield [sock.getsockname()[1] for sock in socks]
    for sock in socks:
        sock.close()


def test_smtp_probe_collects_the_chain_as_sent_and_verifies_it(lab: Lab) -> None:
    result = smtp_certificate(
        "127.0.0.1", lab.smtp.port, 5, server_name=FQDN, ca_file=lab.root_file
    )
    assert result.ok, result.error
    assert result.error is None
    assert result.leaf == lab.leaf.cert
    assert result.chain == [lab.leaf.cert, lab.ica.cert]
    assert result.thumbprint == lab.leaf.cert.fingerprint(hashes.SHA1()).hex().upper()
    assert (result.verified, result.verify_error) == (True, None)
    assert result.starttls_offered
    assert result.banner is not None
    assert result.banner.startswith(f"220 {FQDN} Microsoft ESMTP MAIL Service ready at ")
    assert result.ehlo[0] == f"250-{FQDN} Hello [127.0.0.1]"
    assert "250-STARTTLS" in result.ehlo
    assert result.tls_version in {"TLSv1.2", "TLSv1.3"}
    assert result.cipher
    assert 0 < result.elapsed_s < 5


def test_to_dict_is_json_ready_with_pem_and_names(lab: Lab) -> None:
    result = smtp_certificate("127.0.0.1", lab.smtp.port, 5, server_name=FQDN)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["kind"] == "smtp"
    assert data["target"] == f"127.0.0.1:{lab.smtp.port}"
    assert data["thumbprint"] == result.thumbprint
    assert [c["thumbprint"] for c in data["chain"]] == [
        certs.thumbprint(lab.leaf.cert),
        certs.thumbprint(lab.ica.cert),
    ]
    assert x509.load_pem_x509_certificate(data["leaf"]["pem"].encode()) == lab.leaf.cert
    assert data["leaf"]["subject"] == certs.subject_name(lab.leaf.cert)
    assert FQDN in data["leaf"]["subject"] and "Contoso" in data["leaf"]["subject"]
    assert data["leaf"]["issuer"] == certs.subject_name(lab.ica.cert)
    assert data["leaf"]["dns_names"] == [FQDN]
    assert data["starttls_offered"] is True
    assert data["verified"] is False  # the lab root is not in the system store
    assert data["verify_error"] == (
        f"unable to get local issuer certificate (at {certs.subject_name(lab.ica.cert)})"
    )


def test_verification_fails_against_another_ca_and_on_a_wrong_name(lab: Lab) -> None:
    untrusted = smtp_certificate(
        "127.0.0.1", lab.smtp.port, 5, server_name=FQDN, ca_file=lab.other_root_file
    )
    assert untrusted.ok and untrusted.leaf == lab.leaf.cert  # collected all the same
    assert untrusted.verified is False
    assert "unable to get local issuer certificate" in (untrusted.verify_error or "")
    mismatch = ldaps_certificate(
        "127.0.0.1", lab.ldaps.port, 5, server_name="mail.contoso.test", ca_file=lab.root_file
    )
    assert mismatch.ok and mismatch.verified is False
    assert mismatch.verify_error == (
        f"hostname mismatch: the certificate is not valid for mail.contoso.test (it names {FQDN})"
    )
    later = ldaps_certificate(
        "127.0.0.1",
        lab.ldaps.port,
        5,
        server_name=FQDN,
        ca_file=lab.root_file,
        verify_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=60),
    )
    assert later.verified is False
    assert "certificate has expired" in (later.verify_error or "")


def test_trust_stores_are_shared_per_ca_content_and_moment(lab: Lab, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(lab.root_file.read_bytes())

    def ldaps(verify_at: dt.datetime | None = None) -> probes.TlsProbe:
        return ldaps_certificate(
            "127.0.0.1", lab.ldaps.port, 5, server_name=FQDN, ca_file=ca_file, verify_at=verify_at
        )

    probe_verification._built_store.cache_clear()
    probes._client_context.cache_clear()
    assert [ldaps().verified, ldaps().verified] == [True, True]
    assert probes._client_context.cache_info()[:2] == (1, 1)  # one TLS context for both
    assert probe_verification._built_store.cache_info()[:2] == (1, 1)  # one store, reused
    later = ldaps(dt.datetime.now(dt.UTC) + dt.timedelta(days=60))
    assert "certificate has expired" in (later.verify_error or "")
    assert ldaps().verified  # the later moment stayed in its own store
    ca_file.write_bytes(lab.other_root_file.read_bytes())  # same path, other CA
    assert "unable to get local issuer" in (ldaps().verify_error or "")
    assert probe_verification._built_store.cache_info()[:2] == (2, 3)


def test_a_ca_file_is_read_again_only_when_it_changes(tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(b"first")
    probe_verification._content_digest.cache_clear()
    first = [probe_verification._digest(str(ca_file)) for _ in range(3)]
    assert probe_verification._content_digest.cache_info()[:2] == (2, 1)  # read once
    ca_file.write_bytes(b"other")  # same size, same path, a later modification time
    later = ca_file.stat().st_mtime_ns + 1_000_000_000
    os.utime(ca_file, ns=(later, later))  # the clock's tick can be coarser than two writes
    assert probe_verification._digest(str(ca_file)) != first[0]
    ca_file.unlink()
    with pytest.raises(EdgebookError, match=f"cannot read the CA file {ca_file}"):
        probe_verification._digest(str(ca_file))


def test_ldaps_probe_collects_and_verifies(lab: Lab) -> None:
    result = ldaps_certificate(
        "127.0.0.1", lab.ldaps.port, 5, server_name=FQDN, ca_file=lab.root_file
    )
    assert result.ok and result.verified, (result.error, result.verify_error)
    assert result.chain == [lab.leaf.cert, lab.ica.cert]
    assert result.to_dict()["kind"] == "ldaps"


def test_smtp_without_starttls_and_stopped_service_are_errors_not_exceptions(lab: Lab) -> None:
    lab.state["material"], material = None, lab.state["material"]
    try:
        no_tls = smtp_certificate("127.0.0.1", lab.smtp.port, 5)
        lab.state["running"] = False
        stopped = smtp_certificate("127.0.0.1", lab.smtp.port, 5)
        ldaps_down = ldaps_certificate("127.0.0.1", lab.ldaps.port, 5)
    finally:
        lab.state["material"], lab.state["running"] = material, True
    assert (no_tls.ok, no_tls.error, no_tls.starttls_offered) == (
        False,
        "STARTTLS not offered",
        False,
    )
    assert no_tls.ehlo and no_tls.banner and no_tls.leaf is None and no_tls.thumbprint is None
    assert stopped.error == "server refused the session: 421 4.3.2 Service not available"
    assert ldaps_down.ok is False
    assert ldaps_down.error in {  # the server hangs up at once: EOF or RST, timing decides
        "TLS handshake failed: connection closed by server",
        "TLS handshake failed: connection reset by server",
    }


def test_refused_port_is_reported(closed_port: int) -> None:
    for result in (
        smtp_certificate("127.0.0.1", closed_port, 2),
        ldaps_certificate("127.0.0.1", closed_port, 2),
    ):
        assert (result.ok, result.error) == (False, "connection refused")
        assert result.to_dict()["leaf"] is None


@pytest.mark.parametrize(
    ("probe", "stage"),
    [
        (smtp_certificate, "waiting for the SMTP banner"),
        (ldaps_certificate, "during the TLS handshake"),
    ],
)
def test_silent_port_times_out_within_the_budget(
    silent_ports: list[int], probe: object, stage: str
) -> None:
    started = time.monotonic()
    result = probe("127.0.0.1", silent_ports[0], 1.0)  # type: ignore[operator]
    took = time.monotonic() - started
    assert result.error == f"timed out after 1.0 s ({stage})"
    assert 0.9 <= took <= 1.5
    assert 0.9 <= result.elapsed_s <= 1.5


def test_timeout_bounds_the_whole_probe_not_each_step() -> None:
    """A server that answers every line just before the step timeout would run for ever."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def drip() -> None:
        conn, _ = server.accept()
        with conn, contextlib.suppress(OSError):  # the probe hangs up after its timeout
            for _ in range(20):
                time.sleep(0.3)
                conn.sendall(b"220-still there\r\n")

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    started = time.monotonic()
    result = smtp_certificate("127.0.0.1", server.getsockname()[1], 1.0)
    assert time.monotonic() - started <= 1.5
    assert result.error == "timed out after 1.0 s (waiting for the SMTP banner)"
    server.close()
    thread.join()


def test_probe_many_runs_concurrently_and_keeps_the_order(
    lab: Lab, silent_ports: list[int], closed_port: int
) -> None:
    targets = [
        *(ProbeTarget("smtp", "127.0.0.1", port) for port in silent_ports),
        ProbeTarget("ldaps", "127.0.0.1", lab.ldaps.port, server_name=FQDN, ca_file=lab.root_file),
        *(ProbeTarget("ldaps", "127.0.0.1", port) for port in silent_ports),
        ProbeTarget("smtp", "127.0.0.1", closed_port),
    ]
    started = time.monotonic()
    results = probes.probe_many(targets, timeout=1.0)
    assert time.monotonic() - started <= 2.0  # not 8 s
    assert [r.target for r in results] == [f"{t.host}:{t.port}" for t in targets]
    assert [r.kind for r in results] == [t.kind for t in targets]
    assert results[4].verified
    assert results[-1].error == "connection refused"
    assert all((r.error or "").startswith("timed out after 1.0 s") for r in results[:4])


def test_a_fleets_probes_all_wait_at_once(silent_ports: list[int]) -> None:
    """Probes wait on the network: 40 targets (a 20-Edge fleet) do not queue behind 16 workers."""
    targets = [ProbeTarget("smtp", "127.0.0.1", silent_ports[i % 4]) for i in range(40)]
    started = time.monotonic()
    results = probes.probe_many(targets, timeout=0.5)
    assert time.monotonic() - started < 1.2  # 16 workers: three waves, 1.5 s
    assert all((r.error or "").startswith("timed out after 0.5 s") for r in results)


def test_probe_many_builds_each_trust_store_once_per_call(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(lab.root_file.read_bytes())
    built: list[tuple[object, object]] = []

    def counted(ca: object, at: object) -> object:
        built.append((ca, at))
        return probe_verification.trust_store(ca, at)  # type: ignore[arg-type]

    monkeypatch.setattr(probes, "trust_store", counted)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=60)
    now = ProbeTarget("ldaps", "127.0.0.1", lab.ldaps.port, server_name=FQDN, ca_file=ca_file)
    expired = ProbeTarget(
        "smtp", "127.0.0.1", lab.smtp.port, server_name=FQDN, ca_file=ca_file, verify_at=later
    )
    results = probes.probe_many([now, expired, now, expired, now], timeout=5)
    assert built == [(ca_file, None), (ca_file, later)]  # one store per CA file and moment
    assert [r.verified for r in results] == [True, False, True, False, True]
    assert all("certificate has expired" in (r.verify_error or "") for r in results[1::2])
    ca_file.write_bytes(lab.other_root_file.read_bytes())  # the next call reads it again
    again = probes.probe_many([now], timeout=5)[0]
    assert "unable to get local issuer" in (again.verify_error or "")
    assert len(built) == 3


def test_probe_many_raises_a_user_error_before_any_probe_starts(
    tmp_path: Path, silent_ports: list[int]
) -> None:
    silent = ProbeTarget("smtp", "127.0.0.1", silent_ports[0])
    bad_ca = ProbeTarget("ldaps", "127.0.0.1", 1, ca_file=tmp_path / "missing.pem")
    bad_kind = ProbeTarget("imap", "127.0.0.1", 993)  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(EdgebookError, match=r"missing\.pem does not exist"):
        probes.probe_many([silent, bad_ca, bad_kind], timeout=5)
    with pytest.raises(EdgebookError, match="is not smtp or ldaps"):
        probes.probe_many([silent, bad_kind, bad_ca], timeout=5)
    assert time.monotonic() - started < 1  # the silent port's 5 s were never waited for


def test_probe_many_keeps_its_threads_for_the_next_call(
    silent_ports: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new thread's first handshake pays OpenSSL's per-thread set-up: calls share workers."""
    targets = [ProbeTarget("smtp", "127.0.0.1", port) for port in silent_ports]
    probes.probe_many(targets, timeout=0.2)  # all four at once: four workers at least
    time.sleep(0.1)  # they are idle again
    existing = set(threading.enumerate())
    used: set[threading.Thread] = set()
    run = probes._run

    def recorded(target: ProbeTarget, timeout: float, store: object) -> probes.TlsProbe:
        used.add(threading.current_thread())
        return run(target, timeout, store)  # type: ignore[arg-type]

    monkeypatch.setattr(probes, "_run", recorded)
    probes.probe_many(targets, timeout=0.2)
    assert len(used) == 4 and used <= existing


def test_a_forked_child_probes_on_threads_of_its_own(closed_port: int) -> None:
    """The parent's workers do not exist in a forked child: its probes must not wait for them."""
    target = ProbeTarget("smtp", "127.0.0.1", closed_port)
    probes.probe_many([target], timeout=1)  # the parent has workers now
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child reports through the pipe)
        os.write(write_end, (probes.probe_many([target], timeout=1)[0].error or "").encode())
        os._exit(0)
    os.close(write_end)
    try:
        ready = select.select([read_end], [], [], 10)[0]
        said = os.read(read_end, 1000).decode() if ready else None
    finally:
        os.close(read_end)
        if not ready:
            os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
    assert said == "connection refused"


def test_bad_ca_file_and_kind_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(EdgebookError, match=r"missing\.pem does not exist"):
        smtp_certificate("127.0.0.1", 1, 1, ca_file=tmp_path / "missing.pem")
    (tmp_path / "empty.pem").write_text("no certificates here\n")
    with pytest.raises(EdgebookError, match="holds no PEM certificate"):
        ldaps_certificate("127.0.0.1", 1, 1, ca_file=tmp_path / "empty.pem")
    with pytest.raises(EdgebookError, match="is not smtp or ldaps"):
        probes.probe(ProbeTarget("imap", "127.0.0.1", 993))  # type: ignore[arg-type]


def test_hostname_rules(lab: Lab) -> None:
    wildcard = make_leaf(lab.ica, name((NameOID.COMMON_NAME, "x")), ["*.contoso.test"]).cert
    assert hostname_error(wildcard, "Edge.Contoso.Test.") is None
    assert hostname_error(wildcard, "a.b.contoso.test") is not None
    assert hostname_error(wildcard, "contoso.test") is not None
    assert hostname_error(lab.leaf.cert, FQDN) is None
    assert hostname_error(lab.leaf.cert, "127.0.0.1") is not None
    bare = make_leaf(lab.ica, name((NameOID.COMMON_NAME, FQDN))).cert
    assert "no subjectAltName" in (hostname_error(bare, FQDN) or "")


def test_verify_at_respects_time_zones(lab: Lab) -> None:
    end = lab.leaf.cert.not_valid_after_utc
    east, west = dt.timezone(dt.timedelta(hours=14)), dt.timezone(dt.timedelta(hours=-12))
    results = [
        ldaps_certificate(
            "127.0.0.1", lab.ldaps.port, 5, server_name=FQDN, ca_file=lab.root_file, verify_at=at
        )
        for at in (
            (end - dt.timedelta(hours=1)).astimezone(east),
            (end + dt.timedelta(hours=1)).astimezone(west),
        )
    ]
    assert [r.verified for r in results] == [True, False]
    assert "certificate has expired" in (results[1].verify_error or "")


def test_probe_targets_default_to_the_exchange_ports() -> None:
    results = probes.probe_many(
        [ProbeTarget("smtp", "127.0.0.1"), ProbeTarget("ldaps", "::1")], timeout=1.0
    )
    assert [r.target for r in results] == ["127.0.0.1:25", "[::1]:50636"]
    assert [type(r) for r in results] == [probes.SmtpProbe, probes.LdapsProbe]


def _serve_once(talk: object) -> tuple[socket.socket, threading.Thread]:
    """A one-connection server running talk(conn) in a thread."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def run() -> None:
        conn, _ = server.accept()
        with conn, contextlib.suppress(OSError):  # the probe hangs up first
            talk(conn)  # type: ignore[operator]

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return server, thread


def _endless_banner(conn: socket.socket) -> None:
    while True:
        conn.sendall(b"220-" + b"A" * 1000 + b"\r\n")


def _endless_ehlo(conn: socket.socket) -> None:
    conn.sendall(b"220 hello\r\n")
    conn.recv(100)
    while True:
        conn.sendall(b"250-" + b"B" * 1000 + b"\r\n")


@pytest.mark.parametrize(("talk", "stage"), [(_endless_banner, "banner"), (_endless_ehlo, "EHLO")])
def test_endless_multiline_reply_is_cut_off_quickly(talk: object, stage: str) -> None:
    """A server that never ends a multi-line reply must not fill memory until the timeout."""
    server, thread = _serve_once(talk)
    started = time.monotonic()
    result = smtp_certificate("127.0.0.1", server.getsockname()[1], 5.0)
    assert time.monotonic() - started < 2.0
    assert result.error is not None
    assert result.error.startswith("not an SMTP server: a reply of more than 65536 bytes")
    assert stage in result.error
    server.close()
    thread.join()


def test_bracketed_ipv6_literal_is_probed() -> None:
    server = socket.socket(socket.AF_INET6)
    try:
        server.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    server.listen(1)
    port = server.getsockname()[1]

    def talk() -> None:
        conn, _ = server.accept()
        with conn, contextlib.suppress(OSError):
            conn.sendall(b"220 hello\r\n")
            conn.recv(100)
            conn.sendall(b"250-edge\r\n250 SIZE\r\n")
            conn.recv(100)

    thread = threading.Thread(target=talk, daemon=True)
    thread.start()
    result = smtp_certificate("[::1]", port, 2.0)
    assert result.target == f"[::1]:{port}"
    assert result.error == "STARTTLS not offered"
    server.close()
    thread.join()


def test_the_smtp_probe_waits_for_the_221_past_tls13_session_tickets(lab: Lab) -> None:
    """RFC 5321: the client SHOULD wait for QUIT's reply. Over TLS 1.3 the server's session
    tickets arrive first; with 0.2 s per turn the probe takes five turns (QUIT's included)."""
    material = lab.state["material"]
    listener = SmtpListener(lambda: material, lambda *_: None, fqdn=FQDN, latency_s=0.2)  # type: ignore[arg-type, return-value]
    with listener:
        result = smtp_certificate("127.0.0.1", listener.port, 5)
    assert result.ok, result.error
    assert result.elapsed_s >= 5 * 0.2


def test_a_server_silent_after_quit_costs_the_quit_wait_only(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(probes, "QUIT_WAIT_S", 0.4)
    material = lab.state["material"]
    assert isinstance(material, tuple)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    folder = lab.root_file.parent
    (folder / "silent.pem").write_bytes(material[0] + material[1])
    context.load_cert_chain(folder / "silent.pem")
    heard: list[bytes] = []

    def talk(conn: socket.socket) -> None:
        conn.sendall(b"220 silent\r\n")
        conn.recv(100)  # EHLO
        conn.sendall(b"250-silent\r\n250 STARTTLS\r\n")
        conn.recv(100)  # STARTTLS
        conn.sendall(b"220 go ahead\r\n")
        with context.wrap_socket(conn, server_side=True) as tls:
            heard.append(tls.recv(100))  # QUIT, never answered
            time.sleep(1.5)

    server, thread = _serve_once(talk)
    started = time.monotonic()
    result = smtp_certificate("127.0.0.1", server.getsockname()[1], 5)
    elapsed = time.monotonic() - started
    server.close()
    thread.join()
    assert result.ok, result.error
    assert heard == [b"QUIT\r\n"]
    assert 0.4 <= elapsed < 1.2
