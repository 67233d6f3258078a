"""The lab's WinRM endpoint and TLS listeners probed by independent clients (pypsrp, ssl,
smtplib, raw sockets) against what Microsoft documents and real servers answer."""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator

import pytest
from cryptography.x509.oid import NameOID
from pypsrp.exceptions import WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import NAMESPACES, SelectorSet, WSMan

from edgebook.lab.net.listeners import LdapsListener, SmtpListener
from edgebook.lab.winrm import httpserver, soap
from edgebook.lab.winrm.endpoint_tls import EndpointTls
from edgebook.lab.winrm.httpserver import serve
from edgebook.lab.winrm.inprocess import connect_in_process
from edgebook.lab.winrm.wsman import WSManEndpoint
from tests.support.certs import key_pem, make_ca, make_leaf, name, pem
from tests.support.fake_backend import PASSWORD, USERNAME, FakeBackend

FQDN = "edge.contoso.test"
SHELL_URI = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"
RECEIVE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive"
KB_500 = 500 * 1024  # WinRM's MaxEnvelopeSizekb default


def edge() -> WSManEndpoint:
    return WSManEndpoint(FakeBackend(), "EDGE01", path="wsman")


def no_verify(*, minimum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if minimum is not None:
        context.minimum_version = minimum
    return context


# --- TLS versions: Exchange 2019 on Windows Server 2019 serves TLS 1.2 ---------------------------


@pytest.fixture(scope="module")
def material() -> tuple[bytes, bytes]:
    ca = make_ca(name((NameOID.COMMON_NAME, "Lab Root")))
    leaf = make_leaf(ca, name((NameOID.COMMON_NAME, FQDN)), [FQDN])
    return pem(leaf.cert) + pem(ca.cert), key_pem(leaf.key)


Handshake = Callable[[ssl.SSLContext], str]


@pytest.fixture(params=["wsman", "smtp", "ldaps"])
def handshake(
    request: pytest.FixtureRequest, material: tuple[bytes, bytes], tls: EndpointTls
) -> Iterator[Handshake]:
    """A TLS handshake with one of the lab's ports; it returns the negotiated version."""
    if request.param == "wsman":
        server = serve(edge(), tls=tls.server_context())
        port, stop = server.port, server.stop
    elif request.param == "smtp":
        smtp = SmtpListener(lambda: material, lambda *_: None, fqdn=FQDN)
        smtp.start()
        port, stop = smtp.port, smtp.stop
    else:
        ldaps = LdapsListener(lambda: material, dns_host_name=FQDN)
        ldaps.start()
        port, stop = ldaps.port, ldaps.stop

    def direct(context: ssl.SSLContext) -> str:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw) as sock,
        ):
            return str(sock.version())

    def starttls(context: ssl.SSLContext) -> str:
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
            client.starttls(context=context)
            assert isinstance(client.sock, ssl.SSLSocket)
            return str(client.sock.version())

    yield starttls if request.param == "smtp" else direct
    stop()


def test_every_tls_port_negotiates_tls_1_2(handshake: Handshake) -> None:
    assert handshake(no_verify()) == "TLSv1.2"


def test_a_client_that_insists_on_tls_1_3_fails_as_against_exchange_2019(
    handshake: Handshake,
) -> None:
    with pytest.raises(ssl.SSLError):
        handshake(no_verify(minimum=ssl.TLSVersion.TLSv1_3))


# --- WSMan faults --------------------------------------------------------------------------------


def receive(wsman: WSMan, shell_id: str, command_id: str) -> None:
    rsp = NAMESPACES["rsp"]
    body = ET.Element(f"{{{rsp}}}Receive")
    stream = ET.SubElement(body, f"{{{rsp}}}DesiredStream", CommandId=command_id)
    stream.text = "stdout"
    selectors = SelectorSet()
    selectors.add_option("ShellId", shell_id)
    wsman.invoke(RECEIVE, SHELL_URI, body, selector_set=selectors, timeout=1)


def test_an_unknown_command_id_gets_winrms_fault_text() -> None:
    with (
        connect_in_process(edge(), USERNAME, PASSWORD) as wsman,
        RunspacePool(wsman) as pool,
        pytest.raises(WSManFaultError) as caught,
    ):
        receive(wsman, str(pool.shell.id), str(uuid.uuid4()).upper())
    assert caught.value.code == 2150858843
    assert caught.value.reason.startswith(
        "The Windows Remote Shell received a request to perform an operation on a command "
        "identifier that does not exist. Either the command has completed execution"
    )


def test_a_max_envelope_size_under_8192_is_an_encoding_limit_fault() -> None:
    """MS-WSMV 3.1.4.1.7: the server MUST return wsman:EncodingLimit."""
    with connect_in_process(edge(), USERNAME, PASSWORD) as wsman:
        wsman.update_max_payload_size(4096)
        with pytest.raises(WSManFaultError) as caught:
            RunspacePool(wsman).open()
    assert caught.value.code == 2150858823
    assert "MaxEnvelopeSize (4096) is less than 8192" in str(caught.value.reason)


def test_a_request_larger_than_max_envelope_sizekb_is_refused() -> None:
    """A client that raises its own MaxEnvelopeSize past the server's 500 KB (WinRM's default
    MaxEnvelopeSizekb) fails as against Windows: "the request size exceeded the configured
    MaxEnvelopeSize quota"."""
    backend = FakeBackend()
    endpoint = WSManEndpoint(backend, "EDGE01", path="wsman")
    with connect_in_process(endpoint, USERNAME, PASSWORD) as wsman:
        wsman.update_max_payload_size(2 * KB_500)
        with RunspacePool(wsman) as pool:
            ps = PowerShell(pool)
            ps.add_cmdlet("Import-Thing").add_parameter("FileData", bytes(700_000))
            with pytest.raises(WSManFaultError) as caught:
                ps.invoke()
    assert caught.value.code == 2150858825
    assert "exceeded the configured MaxEnvelopeSize quota" in str(caught.value.reason)
    assert backend.calls == []


def test_replies_stay_within_max_envelope_sizekb_whatever_the_client_allows() -> None:
    """MS-WSMV 3.1.4.1.7: a MaxEnvelopeSize over MaxEnvelopeSizekb counts as MaxEnvelopeSizekb."""
    endpoint = edge()
    sizes: list[int] = []
    with connect_in_process(endpoint, USERNAME, PASSWORD) as wsman:
        transport = wsman.transport
        send = transport.send

        def measured(message: bytes, **kwargs: object) -> bytes:
            reply = send(message, **kwargs)  # type: ignore[arg-type]
            sizes.append(len(reply))
            return reply

        transport.send = measured  # type: ignore[method-assign]
        wsman.update_max_payload_size(4 * KB_500)
        with RunspacePool(wsman) as pool:
            ps = PowerShell(pool)
            ps.add_cmdlet("Big").add_parameter("Size", 1_200_000)
            [blob] = ps.invoke()
    assert len(blob) == 1_200_000 // 256 * 256
    assert max(sizes) <= KB_500


def test_an_operation_timeout_over_max_timeoutms_ends_at_max_timeoutms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """MS-WSMV 3.1.4.1.6: a longer OperationTimeout counts as MaxTimeoutms (60 s; shortened)."""
    monkeypatch.setattr(soap, "MAX_TIMEOUT_S", 0.3)
    with (
        connect_in_process(edge(), USERNAME, PASSWORD) as wsman,
        RunspacePool(wsman) as pool,
    ):
        started = time.monotonic()
        with pytest.raises(WSManFaultError) as caught:
            pool._receive(timeout=5)  # nothing to send: the Receive waits it out
        waited = time.monotonic() - started
    assert caught.value.code == 2150858793
    assert 0.2 < waited < 2


def test_an_edge_administrator_reads_winrms_max_envelope_sizekb() -> None:
    """pypsrp's update_max_payload_size() reads winrm/config, as it does on a Windows server."""
    with connect_in_process(edge(), USERNAME, PASSWORD) as wsman:
        wsman.update_max_payload_size()
        assert wsman.max_envelope_size == KB_500
        with RunspacePool(wsman) as pool:  # and the pool works within it
            assert PowerShell(pool).add_cmdlet("Echo").invoke()


def test_the_mailbox_endpoint_serves_shells_only() -> None:
    mailbox = WSManEndpoint(FakeBackend(), "MBX01", path="PowerShell")
    with (
        connect_in_process(mailbox, USERNAME, PASSWORD) as wsman,
        pytest.raises(WSManFaultError) as caught,
    ):
        wsman.get_server_config()
    assert caught.value.code == 2150858811  # not "the shell None was not found"
    assert "(http://schemas.microsoft.com/wbem/wsman/1/config) was not found" in str(
        caught.value.reason
    )


# --- kept-alive WSMan connections --------------------------------------------------------------


def test_an_idle_connection_is_closed_like_http_sys(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP.sys closes a connection idle for IdleConnectionTimeout (120 s; shortened here)."""
    monkeypatch.setattr(httpserver, "IDLE_CONNECTION_TIMEOUT_S", 0.3)
    server = serve(edge())
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"POST /wsman HTTP/1.1\r\nHost: lab\r\nContent-Length: 0\r\n\r\n")
            started = time.monotonic()
            received = b""
            while chunk := sock.recv(65536):  # the 401, then the end of the connection
                received += chunk
            idle = time.monotonic() - started
        assert received.startswith(b"HTTP/1.1 401 ")
        assert 0.2 < idle < 3
    finally:
        server.stop()
