"""WSMan sessions share one SSLContext per certificate settings (edgebook.exchange.https_adapter),
and validate and authenticate exactly as before: real HTTPS servers on loopback, real files."""

from __future__ import annotations

import datetime as dt
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from pypsrp._pool_manager import DisableNewConnectionsContext, NewConnectionDisabled

from edgebook.config import WinRMEndpoint
from edgebook.exchange import https_adapter
from edgebook.exchange.counting import CountingTransport, ShellStats
from edgebook.exchange.wsman_connection import build_wsman
from edgebook.lab.org import pki
from edgebook.secrets import Credential

NOT_BEFORE = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
NOT_AFTER = NOT_BEFORE + dt.timedelta(days=1)
KEY_PASSWORD = "key-pw"
BASIC = Credential("u", "p")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass(frozen=True)
class Pki:
    """Two unrelated CAs, server certificates of the first and a client certificate."""

    ca: pki.KeyPair
    other_ca: pki.KeyPair
    server: pki.KeyPair  # for 127.0.0.1
    misnamed: pki.KeyPair  # for edge01.contoso.test only
    client: pki.KeyPair


@pytest.fixture(scope="module")
def certs() -> Pki:
    ca = pki.make_ca(_name("Test CA"), NOT_BEFORE, NOT_AFTER)
    return Pki(
        ca,
        pki.make_ca(_name("Other CA"), NOT_BEFORE, NOT_AFTER),
        pki.issue(_name("127.0.0.1"), [], NOT_BEFORE, NOT_AFTER, ca, ip_addresses=["127.0.0.1"]),
        pki.issue(_name("edge01"), ["edge01.contoso.test"], NOT_BEFORE, NOT_AFTER, ca),
        pki.issue(_name("svc-edgebook"), [], NOT_BEFORE, NOT_AFTER, ca),
    )


@pytest.fixture(autouse=True)
def builds(monkeypatch: pytest.MonkeyPatch) -> list[ssl.SSLContext]:
    """An empty context cache for each test, and every context built, in order."""
    monkeypatch.setattr(https_adapter, "_contexts", {})
    built: list[ssl.SSLContext] = []
    build = https_adapter._build_context

    def recording(settings: https_adapter.TlsSettings) -> ssl.SSLContext:
        built.append(build(settings))
        return built[-1]

    monkeypatch.setattr(https_adapter, "_build_context", recording)
    return built


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as WinRM

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        peer = self.connection.getpeercert()
        subject = dict(item[0] for item in peer["subject"]) if peer else {}
        body = f"<ok client='{subject.get('commonName', '')}'/>".encode()
        assert isinstance(self.server, _Server)
        self.server.authorizations.append(self.headers.get("Authorization"))
        self.send_response(200)
        self.send_header("Content-Type", "application/soap+xml;charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    authorizations: list[str | None]

    def handle_error(self, *_args: Any) -> None:  # refused handshakes are the point
        pass


Serve = Callable[..., "_Server"]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """serve(pair, client_ca=None) starts an HTTPS server with that certificate."""
    servers: list[_Server] = []

    def start(pair: pki.KeyPair, client_ca: pki.KeyPair | None = None) -> _Server:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert_file, key_file = tmp_path / "server.pem", tmp_path / "server.key"
        cert_file.write_bytes(pki.pem(pair[0]))
        key_file.write_bytes(pki.key_pem(pair[1]))
        context.load_cert_chain(cert_file, key_file)
        if client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cadata=pki.pem(client_ca[0]).decode())
        server = _Server(("127.0.0.1", 0), _Handler)
        server.authorizations = []
        server.socket = context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _write(path: Path, *pairs: pki.KeyPair) -> Path:
    path.write_bytes(b"".join(pki.pem(pair[0]) for pair in pairs))
    return path


def _endpoint(server: _Server, auth: str = "basic", **settings: Any) -> WinRMEndpoint:
    port = server.server_address[1]
    return WinRMEndpoint("127.0.0.1", port, "wsman", "https", auth, "x", **settings)


def _send(winrm: WinRMEndpoint, credential: Credential | None = BASIC) -> bytes:
    """One request through a new session, as ExchangeShell sends it (CountingTransport)."""
    wsman = build_wsman("EDGE01", winrm, credential, operation_timeout=5, connection_timeout=5)
    transport = CountingTransport(wsman.transport, ShellStats("EDGE01"), lambda: None)
    try:
        return transport.send(b"<request/>")
    finally:
        transport.close()


def test_sessions_with_the_same_settings_share_one_context(certs, serve, builds, tmp_path):
    winrm = _endpoint(serve(certs.server), ca_file=_write(tmp_path / "ca.pem", certs.ca))
    assert _send(winrm) == _send(winrm) == b"<ok client=''/>"
    assert len(builds) == 1


def test_a_ca_file_it_does_not_sign_or_a_wrong_host_name_is_refused(certs, serve, tmp_path):
    other = _endpoint(serve(certs.server), ca_file=_write(tmp_path / "other.pem", certs.other_ca))
    with pytest.raises(requests.exceptions.SSLError, match="certificate verify failed"):
        _send(other)
    misnamed = _endpoint(serve(certs.misnamed), ca_file=_write(tmp_path / "ca.pem", certs.ca))
    with pytest.raises(requests.exceptions.SSLError, match="IP address mismatch"):
        _send(misnamed)
    with pytest.raises(requests.exceptions.SSLError, match="IP address mismatch"):
        _send(misnamed)  # the shared context checks the name again
    assert _send(_endpoint(serve(certs.misnamed), verify_tls=False)) == b"<ok client=''/>"


def test_a_changed_ca_file_gets_a_new_context(certs, serve, builds, tmp_path):
    winrm = _endpoint(serve(certs.server), ca_file=_write(tmp_path / "ca.pem", certs.ca))
    _send(winrm)
    _write(tmp_path / "ca.pem", certs.other_ca)  # same path, other content
    with pytest.raises(requests.exceptions.SSLError, match="certificate verify failed"):
        _send(winrm)
    _write(tmp_path / "ca.pem", certs.ca)
    _send(winrm)
    assert len(builds) == 3
    assert len(https_adapter._contexts) == 1  # the replaced contexts are gone


def test_another_ca_file_or_client_certificate_gets_its_own_context(
    certs, serve, builds, tmp_path, monkeypatch
):
    server = serve(certs.server, client_ca=certs.ca)
    monkeypatch.setenv("EDGEBOOK_TEST_KEY_PW", KEY_PASSWORD)
    first, second = _client_files(certs, tmp_path / "a"), _client_files(certs, tmp_path / "b")
    ca = _write(tmp_path / "ca.pem", certs.ca)
    copy = _write(tmp_path / "copy.pem", certs.ca)  # the same content under another name
    for winrm in (
        _endpoint(server, ca_file=ca, **first),
        _endpoint(server, ca_file=copy, **first),
        _endpoint(server, ca_file=ca, **second),
        _endpoint(server, ca_file=ca, **first),
    ):
        assert _send(winrm, None) == b"<ok client='svc-edgebook'/>"
    assert len(builds) == 3


def _client_files(certs: Pki, folder: Path) -> dict[str, Any]:
    folder.mkdir()
    key = certs.client[1].private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(KEY_PASSWORD.encode()),
    )
    (folder / "client.key").write_bytes(key)
    return {
        "auth": "certificate",
        "certificate_pem": _write(folder / "client.pem", certs.client),
        "certificate_key_pem": folder / "client.key",
        "certificate_key_password": "env:EDGEBOOK_TEST_KEY_PW",
    }


def test_client_certificate_authentication_with_an_encrypted_key(
    certs, serve, tmp_path, monkeypatch
):
    server = serve(certs.server, client_ca=certs.ca)
    ca = _write(tmp_path / "ca.pem", certs.ca)
    winrm = _endpoint(server, ca_file=ca, **_client_files(certs, tmp_path / "client"))
    monkeypatch.setenv("EDGEBOOK_TEST_KEY_PW", KEY_PASSWORD)
    assert _send(winrm, None) == b"<ok client='svc-edgebook'/>"
    mutual = "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"
    monkeypatch.setenv("EDGEBOOK_TEST_KEY_PW", "wrong")
    with pytest.raises(requests.exceptions.SSLError, match="PEM lib"):  # as urllib3 says it
        _send(winrm, None)
    without_password = _endpoint(
        server,
        ca_file=ca,
        auth="certificate",
        certificate_pem=winrm.certificate_pem,
        certificate_key_pem=winrm.certificate_key_pem,
    )
    with pytest.raises(requests.exceptions.SSLError, match="encrypted, password is required"):
        _send(without_password, None)
    with pytest.raises(requests.exceptions.ConnectionError):  # the server wants a certificate
        _send(_endpoint(server, ca_file=ca))
    assert server.authorizations == [mutual]  # the refused sessions sent no request


def test_a_file_changed_while_loading_is_not_cached(certs, serve, builds, tmp_path, monkeypatch):
    ca = _write(tmp_path / "ca.pem", certs.ca)
    winrm = _endpoint(serve(certs.server), ca_file=ca)
    recording = https_adapter._build_context

    def build_then_change(settings: https_adapter.TlsSettings) -> ssl.SSLContext:
        context = recording(settings)
        ca.write_bytes(ca.read_bytes() + b"\n")
        return context

    monkeypatch.setattr(https_adapter, "_build_context", build_then_change)
    _send(winrm)
    assert https_adapter._contexts == {}
    monkeypatch.setattr(https_adapter, "_build_context", recording)
    _send(winrm)
    _send(winrm)
    assert len(builds) == 2


def test_pypsrps_no_new_connection_context_is_kept(certs, serve, tmp_path):
    winrm = _endpoint(serve(certs.server), ca_file=_write(tmp_path / "ca.pem", certs.ca))
    wsman = build_wsman("EDGE01", winrm, BASIC, operation_timeout=5, connection_timeout=5)
    transport = CountingTransport(wsman.transport, ShellStats("EDGE01"), lambda: None)
    with DisableNewConnectionsContext(), pytest.raises(NewConnectionDisabled):
        transport.send(b"<request/>")
    transport.send(b"<request/>")
    with DisableNewConnectionsContext():  # the open connection carries on
        assert transport.send(b"<request/>") == b"<ok client=''/>"
    transport.close()


def test_a_ca_folder_keeps_urllib3s_own_context():
    folder = https_adapter.SharedContextConnection("h", 1, ca_cert_dir="/etc/ssl/certs")
    shared = https_adapter.SharedContextConnection("h", 1, ca_certs="/etc/ssl/ca.pem")
    assert folder._tls is None and folder.ca_cert_dir == "/etc/ssl/certs"
    assert shared._tls is not None and shared._tls.ca_certs == "/etc/ssl/ca.pem"
    assert shared.ca_certs is None  # not loaded again by urllib3 into the shared context


def test_a_key_log_file_named_later_gets_a_new_context(certs, serve, builds, tmp_path, monkeypatch):
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)
    winrm = _endpoint(serve(certs.server), ca_file=_write(tmp_path / "ca.pem", certs.ca))
    _send(winrm)
    monkeypatch.setenv("SSLKEYLOGFILE", str(tmp_path / "keys.log"))
    _send(winrm)
    assert len(builds) == 2
    assert "CLIENT_" in (tmp_path / "keys.log").read_text()  # urllib3's key log, as before


def test_the_key_password_stays_out_of_the_settings_repr() -> None:
    """The cache key holds the client key's password: a repr (a log line, a traceback's
    locals) must not show it."""
    settings = https_adapter.TlsSettings(
        *(None,) * 10,
        key_password="S3cret-key-passw0rd",
    )
    assert "S3cret" not in repr(settings)
    assert settings.key_password == "S3cret-key-passw0rd"
