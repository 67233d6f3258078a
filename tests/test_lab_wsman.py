"""The lab's WSMan/PSRP endpoint driven by the unmodified pypsrp client (sockets and in-process)."""

from __future__ import annotations

import base64
import http.client
import re
import socket
import ssl
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any, cast

import psrpcore
import pytest
import requests
from psrpcore.types import PSDateTime, PSList, deserialize
from pypsrp.complex_objects import GenericComplexObject
from pypsrp.exceptions import AuthenticationError, WinRMTransportError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import NAMESPACES, WSMan

from edgebook.exchange.wire_types import EXCHANGE_CERTIFICATE
from edgebook.lab.winrm.endpoint_tls import EndpointTls
from edgebook.lab.winrm.httpserver import serve
from edgebook.lab.winrm.inprocess import connect_in_process
from edgebook.lab.winrm.objects import MVP_STRING
from edgebook.lab.winrm.soap import parse_request
from edgebook.lab.winrm.wsman import WSManEndpoint
from tests.support.fake_backend import PASSWORD, USERNAME, FakeBackend

NO_LANGUAGE = (
    "The syntax is not supported by this runspace. This can occur if the runspace is in "
    "no-language mode."
)


def rich(obj: object) -> Any:
    """Re-parse a pypsrp object with psrpcore, as edgebook's shell does.

    Any: deserialised objects expose their PowerShell properties as dynamic attributes.
    """
    assert isinstance(obj, GenericComplexObject)
    assert obj._xml is not None, "pypsrp keeps the CLIXML of every object it deserialised"
    return deserialize(ET.fromstring(obj._xml), psrpcore.PSRemotingCrypto())


def mailbox(backend: FakeBackend) -> WSManEndpoint:
    return WSManEndpoint(backend, "MBX01", path="PowerShell")


def edge(backend: FakeBackend, *, latency_s: float = 0.0) -> WSManEndpoint:
    return WSManEndpoint(backend, "EDGE01", path="wsman", latency_s=latency_s)


def run(pool: RunspacePool, cmdlet: str, **parameters: object) -> PowerShell:
    ps = PowerShell(pool)
    ps.add_cmdlet(cmdlet)
    for name, value in parameters.items():
        ps.add_parameter(name, value)
    ps.invoke()
    return ps


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def https_lab(backend: FakeBackend, tls: EndpointTls) -> Iterator[tuple[WSManEndpoint, int, str]]:
    endpoint = edge(backend)
    server = serve(endpoint, tls=tls.server_context())
    yield endpoint, server.port, str(tls.ca_file)
    server.stop()


def https_wsman(port: int, ca: str, password: str = PASSWORD, path: str = "wsman") -> WSMan:
    return WSMan(
        "127.0.0.1",
        port=port,
        path=path,
        ssl=True,
        auth="basic",
        username=USERNAME,
        password=password,
        # pypsrp annotates bool, but passes it on as requests' verify: a CA bundle path works.
        cert_validation=cast(bool, ca),
        no_proxy=True,
    )


def test_https_basic_returns_exchange_shaped_objects(
    https_lab: tuple[WSManEndpoint, int, str],
) -> None:
    endpoint, port, ca = https_lab
    with https_wsman(port, ca) as wsman, RunspacePool(wsman) as pool:
        ps = run(pool, "Get-ExchangeCertificate", Thumbprint="FFEE")
        assert not ps.had_errors and len(ps.output) == 1
        plain = ps.output[0]
        assert plain.types == [EXCHANGE_CERTIFICATE, "System.Object"]
        cert = rich(plain)
    assert cert.PSTypeNames[0] == f"Deserialized.{EXCHANGE_CERTIFICATE}"
    assert cert.Thumbprint == "FFEE"
    assert isinstance(cert.NotAfter, PSDateTime)
    assert isinstance(cert.CertificateDomains, PSList)
    assert cert.CertificateDomains.PSTypeNames[0] == f"Deserialized.{MVP_STRING}"
    assert str(cert.Services) == "IMAP, POP, IIS, SMTP" and int(cert.Services) == 27
    assert endpoint.open_shells == 0  # the pool's Delete closed the shell


def test_https_wrong_password_is_refused(https_lab: tuple[WSManEndpoint, int, str]) -> None:
    _, port, ca = https_lab
    with (
        https_wsman(port, ca, password="wrong") as wsman,
        pytest.raises(AuthenticationError),
    ):
        RunspacePool(wsman).open()


def test_missing_credentials_get_a_basic_challenge(
    https_lab: tuple[WSManEndpoint, int, str],
) -> None:
    _, port, ca = https_lab
    response = requests.post(f"https://127.0.0.1:{port}/wsman", data=b"<x/>", verify=ca)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="WSMAN"'


def test_wrong_path_is_http_404(https_lab: tuple[WSManEndpoint, int, str]) -> None:
    _, port, ca = https_lab
    with (
        https_wsman(port, ca, path="PowerShell") as wsman,
        pytest.raises(WinRMTransportError) as caught,
    ):
        RunspacePool(wsman, configuration_name="Microsoft.Exchange").open()
    assert caught.value.code == 404


def test_plain_http_basic_without_encryption(backend: FakeBackend) -> None:
    endpoint = mailbox(backend)
    server = serve([endpoint, edge(backend)])
    try:
        wsman = WSMan(
            "127.0.0.1",
            port=server.port,
            path="PowerShell",
            ssl=False,
            auth="basic",
            encryption="never",
            username=USERNAME,
            password=PASSWORD,
            no_proxy=True,
        )
        with wsman, RunspacePool(wsman, configuration_name="Microsoft.Exchange") as pool:
            ps = run(pool, "Get-ExchangeCertificate")
            assert rich(ps.output[0]).Thumbprint == "A1B2C3"
        assert server.urls["PowerShell"] == f"http://127.0.0.1:{server.port}/PowerShell"
    finally:
        server.stop()
    assert backend.calls[0].session.configuration_name == "Microsoft.Exchange"
    assert backend.calls[0].session.server == "MBX01"


def test_two_endpoints_on_one_path_are_refused(backend: FakeBackend) -> None:
    with pytest.raises(ValueError, match="share the path /wsman"):
        serve([edge(backend), WSManEndpoint(backend, "EDGE02", path="wsman")])


def test_unknown_configuration_is_the_winrm_catalog_fault(backend: FakeBackend) -> None:
    with (
        connect_in_process(edge(backend), USERNAME, PASSWORD) as wsman,
        pytest.raises(WSManFaultError) as caught,
    ):
        RunspacePool(wsman, configuration_name="Microsoft.Exchange").open()
    assert caught.value.code == 2150858811
    assert "(http://schemas.microsoft.com/powershell/Microsoft.Exchange) was not found in the " in (
        caught.value.reason
    )
    assert "WS-Management catalog" in caught.value.reason


def test_in_process_wrong_password_is_authentication_error(backend: FakeBackend) -> None:
    with (
        connect_in_process(edge(backend), USERNAME, "nope") as wsman,
        pytest.raises(AuthenticationError),
    ):
        RunspacePool(wsman).open()


def test_no_language_refuses_scripts_on_microsoft_exchange(backend: FakeBackend) -> None:
    with (
        connect_in_process(mailbox(backend), USERNAME, PASSWORD) as wsman,
        RunspacePool(wsman, configuration_name="Microsoft.Exchange") as pool,
    ):
        ps = PowerShell(pool)
        ps.add_script("Get-ExchangeCertificate | Where-Object { $_.Services -match 'SMTP' }")
        assert ps.invoke() == []
    assert ps.had_errors
    [error] = ps.streams.error
    assert str(error) == NO_LANGUAGE
    assert error.fq_error == "ScriptsNotAllowed"
    assert error.message.startswith("ParserError: ")
    assert backend.calls == []


def test_scripts_reach_the_backend_on_microsoft_powershell(backend: FakeBackend) -> None:
    with (
        connect_in_process(edge(backend), USERNAME, PASSWORD) as wsman,
        RunspacePool(wsman) as pool,
    ):
        ps = PowerShell(pool)
        ps.add_script("Get-Date")
        [echo] = ps.invoke()
    assert echo["Name"] == "Get-Date" and echo["IsScript"] is True


def test_errors_warnings_and_terminating_failures(backend: FakeBackend) -> None:
    with (
        connect_in_process(edge(backend), USERNAME, PASSWORD) as wsman,
        RunspacePool(wsman) as pool,
    ):
        soft = run(pool, "Soft-Fail")
        hard = run(pool, "Hard-Fail")
    assert soft.output == ["before"] and not soft.had_errors
    [error] = soft.streams.error
    assert str(error) == "The specified certificate was not found."
    assert error.fq_error == "ABC123,Soft-Fail"
    assert error.reason == "ManagementObjectNotFoundException"
    assert error.target_name == "EDGE01"
    assert error.message == (
        "ObjectNotFound: (EDGE01:String) [Soft-Fail], ManagementObjectNotFoundException"
    )
    assert error.exception.types[0] == (
        "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"
    )
    assert [str(w.message) for w in soft.streams.warning] == ["The certificate expires soon."]
    assert hard.had_errors and hard.output == []
    assert [str(e) for e in hard.streams.error] == ["The operation couldn't be performed."]
    assert hard.streams.error[0].fq_error == "DEF456,Hard-Fail"


def test_statements_parameters_and_switches_arrive_as_sent(backend: FakeBackend) -> None:
    with (
        connect_in_process(edge(backend), USERNAME, PASSWORD) as wsman,
        RunspacePool(wsman) as pool,
    ):
        ps = PowerShell(pool)
        ps.add_cmdlet("Add-PSSnapin").add_parameter("Name", "Snap").add_statement()
        ps.add_cmdlet("Set-Thing").add_parameter("Force").add_parameter("Confirm", False)
        ps.add_parameter("Count", 3).add_argument("positional")
        ps.add_cmdlet("Out-Null")
        output = ps.invoke()
    assert [item["Name"] for item in output] == ["Add-PSSnapin", "Set-Thing", "Out-Null"]
    [call] = backend.calls
    assert [[c.name for c in statement] for statement in call.statements] == [
        ["Add-PSSnapin"],
        ["Set-Thing", "Out-Null"],
    ]
    set_thing = call.statements[1][0]
    assert set_thing.parameters == {"Force": None, "Confirm": False, "Count": 3}
    assert set_thing.arguments == ["positional"]


def test_duplicate_parameter_fails_like_powershell(backend: FakeBackend) -> None:
    with (
        connect_in_process(edge(backend), USERNAME, PASSWORD) as wsman,
        RunspacePool(wsman) as pool,
    ):
        ps = PowerShell(pool)
        ps.add_cmdlet("Set-Thing").add_parameter("Name", "a").add_parameter("name", "b")
        ps.invoke()
    assert ps.had_errors and ps.streams.error[0].fq_error == "ParameterAlreadyBound"
    assert backend.calls == []


def test_large_bytes_both_ways_and_pipeline_input(backend: FakeBackend) -> None:
    blob = bytes(range(256)) * 2400  # 614 400 bytes: several Send fragments
    with (
        connect_in_process(edge(backend), USERNAME, PASSWORD) as wsman,
        RunspacePool(wsman) as pool,
    ):
        run(pool, "Import-Thing", FileData=blob)
        big = run(pool, "Big", Size=len(blob))
        ps = PowerShell(pool)
        ps.add_cmdlet("Consume")
        # pypsrp annotates Iterator, but documents and handles a list of inputs (an iterator
        # that is not a generator would be sent as one object).
        ps.invoke(input=cast("Iterator[object]", ["one", 2]))
    assert backend.calls[0].statements[0][0].parameters["FileData"] == blob
    assert big.output == [blob]
    assert backend.calls[2].input == ["one", 2]


def test_session_is_kept_per_pool(backend: FakeBackend) -> None:
    endpoint = edge(backend)
    with connect_in_process(endpoint, USERNAME, PASSWORD) as wsman:
        with RunspacePool(wsman) as pool:
            run(pool, "A")
            run(pool, "B")
        with RunspacePool(wsman) as other:
            run(other, "C")
    first, second, third = (call.session for call in backend.calls)
    assert first is second and first is not third
    assert first.configuration_name == "Microsoft.PowerShell"


def test_async_invoke_stop_close_and_is_alive(backend: FakeBackend) -> None:
    with connect_in_process(edge(backend), USERNAME, PASSWORD) as wsman:
        pool = RunspacePool(wsman)
        pool.open()
        ps = PowerShell(pool)
        ps.add_cmdlet("Slow")
        ps.begin_invoke()
        ps.poll_invoke()
        assert [item["Name"] for item in ps.end_invoke()] == ["Slow"]
        ps.close()  # Signal Terminate
        stopped = PowerShell(pool)
        stopped.add_cmdlet("Other")
        stopped.begin_invoke()
        stopped.stop()  # Signal ctrl_c on a pipeline that already finished
        with PowerShell(pool) as ps2:
            assert [item["Name"] for item in ps2.add_cmdlet("After").invoke()] == ["After"]
        assert pool.is_alive()
        pool.close()
        assert not pool.is_alive()  # the shell is gone: Get answers the selectors fault


def test_receive_with_nothing_to_send_times_out_like_winrm(backend: FakeBackend) -> None:
    with (
        connect_in_process(edge(backend), USERNAME, PASSWORD) as wsman,
        RunspacePool(wsman) as pool,
    ):
        started = time.monotonic()
        with pytest.raises(WSManFaultError) as caught:
            pool._receive(timeout=1)
        assert time.monotonic() - started >= 0.9
    assert caught.value.code == 2150858793


def test_unsupported_action_is_a_fault(backend: FakeBackend) -> None:
    with (
        connect_in_process(edge(backend), USERNAME, PASSWORD) as wsman,
        pytest.raises(WSManFaultError) as caught,
    ):
        wsman.enumerate("http://schemas.microsoft.com/wbem/wsman/1/windows/shell")
    assert caught.value.code == "a:ActionNotSupported"


def test_counters_count_requests_and_pipelines(backend: FakeBackend) -> None:
    endpoint = edge(backend)
    with connect_in_process(endpoint, USERNAME, PASSWORD) as wsman, RunspacePool(wsman) as pool:
        run(pool, "A")
        run(pool, "B")
    assert endpoint.pipelines == 2
    # Create + Receive (open), Command + Receive per pipeline, Delete.
    assert endpoint.requests == 7
    assert backend.requests == {"EDGE01": 7}


def test_counters_are_thread_safe_over_sockets(backend: FakeBackend) -> None:
    endpoint = edge(backend)
    server = serve(endpoint)
    failures: list[BaseException] = []

    def client() -> None:
        try:
            wsman = WSMan(
                "127.0.0.1",
                port=server.port,
                ssl=False,
                auth="basic",
                encryption="never",
                username=USERNAME,
                password=PASSWORD,
                no_proxy=True,
            )
            with wsman, RunspacePool(wsman) as pool:
                for _ in range(3):
                    run(pool, "Ping")
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=client) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        server.stop()
    assert failures == []
    assert endpoint.pipelines == 12
    assert endpoint.requests == backend.requests["EDGE01"] == 4 * (3 + 3 * 2)


def test_latency_is_added_to_every_request(backend: FakeBackend) -> None:
    endpoint = edge(backend, latency_s=0.05)
    with connect_in_process(endpoint, USERNAME, PASSWORD) as wsman:
        started = time.monotonic()
        with RunspacePool(wsman) as pool:
            run(pool, "A")
        elapsed = time.monotonic() - started
    assert endpoint.requests == 5
    assert elapsed >= 5 * 0.05


def basic_header() -> dict[str, str]:
    return {
        "Authorization": "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    }


@pytest.mark.parametrize("https", [True, False], ids=["https", "http"])
def test_a_new_tls_connection_pays_a_round_trip_for_its_handshake(
    backend: FakeBackend, tls: EndpointTls, https: bool
) -> None:
    """The latency is the network's: a new HTTPS connection's handshake costs one round trip
    (as on the Edges' LDAPS port), each request one more; plain HTTP and a kept connection pay
    the requests only."""
    latency = 0.2
    server = serve(edge(backend, latency_s=latency), tls=tls.server_context() if https else None)
    if https:
        context = ssl.create_default_context(cafile=str(tls.ca_file))
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", server.port, context=context
        )
    else:
        connection = http.client.HTTPConnection("127.0.0.1", server.port)
    statuses, requests_s = [], []
    try:
        started = time.monotonic()
        connection.connect()
        connect_s = time.monotonic() - started
        for _ in range(2):
            started = time.monotonic()
            connection.request("POST", "/wsman", body=b"<not-soap/>", headers=basic_header())
            response = connection.getresponse()
            response.read()
            requests_s.append(time.monotonic() - started)
            statuses.append(response.status)
    finally:
        connection.close()
        server.stop()
    assert statuses == [400, 400]  # not SOAP: answered, the connection kept
    assert latency <= connect_s < 2 * latency if https else connect_s < latency
    assert all(latency <= s < 2 * latency for s in requests_s)


def create_refused(endpoint: WSManEndpoint, creation_xml: bytes) -> WSManFaultError:
    """The fault a WSMan Create carrying creation_xml gets from the endpoint."""
    shell = ET.Element(f"{{{NAMESPACES['rsp']}}}Shell")
    creation = ET.SubElement(shell, "{http://schemas.microsoft.com/powershell}creationXml")
    creation.text = base64.b64encode(creation_xml).decode()
    with (
        connect_in_process(endpoint, USERNAME, PASSWORD) as wsman,
        pytest.raises(WSManFaultError) as caught,
    ):
        wsman.create("http://schemas.microsoft.com/powershell/Microsoft.PowerShell", shell)
    return caught.value


def test_malformed_psrp_data_is_a_fault(backend: FakeBackend) -> None:
    endpoint = edge(backend)
    fault = create_refused(endpoint, b"these bytes are not PSRP fragments")
    assert fault.code == "w:InternalError"
    assert "cannot process the PSRP data" in fault.reason
    assert endpoint.open_shells == 0


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_replies_on_a_kept_alive_connection_do_not_wait_for_delayed_acks(
    https_lab: tuple[WSManEndpoint, int, str],
) -> None:
    """A reply can leave in several writes (a long one, an error page); with Nagle on, each
    reply after the first waited ~40 ms for the client's delayed ACK, which made every lab
    pipeline cost ~160 ms."""
    _, port, _ = https_lab
    session = requests.Session()
    url = f"https://127.0.0.1:{port}/unknown"

    def post() -> requests.Response:  # the timing is the point, not the certificate
        return session.post(url, data=b"x", timeout=5, verify=False)

    post()  # handshake; the connection is kept alive
    times = []
    for _ in range(9):
        started = time.perf_counter()
        reply = post()
        times.append(time.perf_counter() - started)
        assert reply.status_code == 404
    stalled = [round(t * 1000) for t in times if t >= 0.035]  # a delayed ACK is >= 40 ms
    assert len(stalled) <= 3, f"replies that waited (ms): {stalled}"


# The HTTP layer reads requests itself (not through the email package). Each reply below is
# the one http.server gave before, byte for byte (the Date masked).

AUTHORIZATION = b"Authorization: Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode())
NOT_SOAP = b"Bad request: the body is not a SOAP 1.2 envelope with a Header and a Body"
NOT_XML = b"Bad request: the body is not XML (no element found: line 1, column 0)"
# Sent after a request that should leave the connection open: its 404 must come back.
PROBE = b"POST /nope HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def reply(
    status: bytes, body: bytes = b"", headers: bytes = b"Content-Type: text/plain\r\n"
) -> bytes:
    head = b"HTTP/1.1 " + status + b"\r\nServer: Microsoft-HTTPAPI/2.0 \r\nDate: D\r\n" + headers
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


CHALLENGE = reply(b"401 Unauthorized", headers=b'WWW-Authenticate: Basic realm="WSMAN"\r\n')
PROBED = reply(b"404 Not Found", b"Not Found")


def post(*headers: bytes, body: bytes = b"<x/>", target: bytes = b"/wsman") -> bytes:
    lines = [b"POST " + target + b" HTTP/1.1", b"Host: lab", *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def exchange(port: int, request: bytes, *, keep_alive: bool) -> bytes:
    """What the server sends back, to the connection's end (after PROBE when kept alive)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request + (PROBE if keep_alive else b""))
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return re.sub(rb"Date: [^\r]+", b"Date: D", received)


@pytest.fixture
def plain_port(backend: FakeBackend) -> Iterator[int]:
    server = serve(edge(backend))
    yield server.port
    server.stop()


@pytest.mark.parametrize(
    ("request_bytes", "expected"),
    [
        pytest.param(post(b"Content-Length: 4", body=b"<x/>", target=b"/nope"), PROBED, id="404"),
        pytest.param(post(b"Content-Length: 4"), CHALLENGE, id="no-authorization"),
        pytest.param(
            post(b"content-length: 4", b"authorization" + AUTHORIZATION[13:]),
            reply(b"400 Bad Request", NOT_SOAP),
            id="names-in-any-case",
        ),
        pytest.param(
            post(b"Content-Length:4", AUTHORIZATION.replace(b": ", b":\t ") + b"  "),
            reply(b"400 Bad Request", NOT_SOAP),
            id="blanks-around-values",
        ),
        pytest.param(
            post(AUTHORIZATION, body=b""), reply(b"400 Bad Request", NOT_XML), id="no-length"
        ),
        pytest.param(
            post(b"Content-Length: 4", b"Content-Length: 2", AUTHORIZATION),
            reply(b"400 Bad Request", NOT_SOAP),
            id="first-content-length-counts",
        ),
        pytest.param(
            post(b"Content-Length: 4", b"Authorization: Basic eA==", AUTHORIZATION),
            reply(b"400 Bad Request", NOT_SOAP),
            id="last-authorization-counts",
        ),
        pytest.param(
            post(b"Content-Length: 4", AUTHORIZATION, b"authorization: Basic eA=="),
            CHALLENGE,
            id="last-authorization-counts-in-any-case",
        ),
        pytest.param(
            post(b"Content-Length: 4", AUTHORIZATION.replace(b"Basic ", b"Basic\r\n ")),
            CHALLENGE,
            id="folded-authorization-keeps-its-line-break",
        ),
        pytest.param(
            post(b"Content-Length:", b" 4", AUTHORIZATION),
            reply(b"400 Bad Request", NOT_SOAP),
            id="folded-content-length",
        ),
        pytest.param(
            post(b"Bogus", b"Content-Length: 4", AUTHORIZATION, body=b""),
            CHALLENGE,
            id="a-line-without-colon-ends-the-headers",
        ),
        pytest.param(
            post(b"Content-Length : 4", AUTHORIZATION, body=b""),
            CHALLENGE,
            id="a-blank-before-the-colon-ends-the-headers",
        ),
        pytest.param(
            post(b"Content-Length: 4", target=b"//wsman"),
            CHALLENGE,
            id="double-slash-path",
        ),
        pytest.param(
            post(b"Content-Length: 4", b"Expect: 100-continue", target=b"/nope"),
            b"HTTP/1.1 100 Continue\r\n\r\n" + PROBED,
            id="expect-100-continue",
        ),
    ],
)
def test_requests_read_like_http_server_on_a_kept_alive_connection(
    plain_port: int, request_bytes: bytes, expected: bytes
) -> None:
    assert exchange(plain_port, request_bytes, keep_alive=True) == expected + PROBED


@pytest.mark.parametrize(
    ("request_bytes", "expected"),
    [
        pytest.param(b"\r\n", b"", id="empty-request-line"),
        pytest.param(b"GET /wsman\r\n\r\n", b"", id="http-0.9-get-gets-the-empty-body-alone"),
        pytest.param(
            post(b"Content-Length: abc", AUTHORIZATION, body=b""), b"", id="unreadable-length"
        ),
        pytest.param(
            post(b"Content-Length: 4", target=b"/nope").replace(b"1.1", b"1.0"),
            PROBED,
            id="http-1.0",
        ),
        pytest.param(
            post(b"Content-Length: 4", b"Connection: Close", target=b"/nope"),
            PROBED,
            id="connection-close",
        ),
    ],
)
def test_requests_answered_before_the_connection_ends(
    plain_port: int, request_bytes: bytes, expected: bytes
) -> None:
    assert exchange(plain_port, request_bytes, keep_alive=False) == expected


@pytest.mark.parametrize(
    ("request_bytes", "status", "message"),
    [
        (b"POST\r\n", None, "Bad request syntax ('POST')"),
        (b"POST /wsman HTTP/1.1 x\r\n", None, "Bad request version ('x')"),
        (b"POST / HTTP/x.y\r\n", None, "Bad request version ('HTTP/x.y')"),
        (b"POST / HTTP/1.1.1\r\n", None, "Bad request version ('HTTP/1.1.1')"),
        (b"POST / HTTP/1.00000000001\r\n", None, "Bad request version ('HTTP/1.00000000001')"),
        (b"POST / HTTP/2.0\r\n", None, "Invalid HTTP version (2.0)"),
        (b"POST /wsman\r\n", None, "Bad HTTP/0.9 request type ('POST')"),
        (
            b"PUT /wsman HTTP/1.1\r\n\r\n",
            "501 Unsupported method ('PUT')",
            "does not support this operation",
        ),
        (
            b"POST /nope HTTP/1.1\r\n" + b"X: 1\r\n" * 100 + b"\r\n",
            "431 Too many headers",
            "got more than 100 headers",
        ),
        (
            b"POST /nope HTTP/1.1\r\nX: " + b"a" * 65534,
            "431 Line too long",
            "got more than 65536 bytes when reading header line",
        ),
    ],
)
def test_malformed_requests_get_http_servers_error_page(
    plain_port: int, request_bytes: bytes, status: str | None, message: str
) -> None:
    received = exchange(plain_port, request_bytes, keep_alive=False).decode()
    if status is None:  # refused before the version is known: the page comes alone
        assert received.startswith("<!DOCTYPE HTML>")
    else:
        assert received.startswith(f"HTTP/1.1 {status}\r\n")
        assert "\r\nConnection: close\r\n" in received
    assert message in received


def test_http_1_0_asking_for_keep_alive_is_kept_alive(plain_port: int) -> None:
    request = post(b"Content-Length: 4", b"Connection: keep-alive", target=b"/nope")
    assert exchange(plain_port, request.replace(b"1.1", b"1.0"), keep_alive=True) == PROBED * 2


ENVELOPE = (
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
    'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">'
)


def test_soap_header_the_first_of_each_element_counts_but_the_last_shell_id() -> None:
    request = parse_request(
        (
            ENVELOPE + "<s:Header><!-- a note --><a:Action> first </a:Action>"
            "<a:Action>second</a:Action><a:MessageID>uuid:1</a:MessageID>"
            '<w:SelectorSet><w:Selector Name="ShellId">A</w:Selector>'
            '<w:Selector Name="ShellId"> B </w:Selector></w:SelectorSet>'
            '<w:SelectorSet><w:Selector Name="Other">C</w:Selector></w:SelectorSet>'
            '<w:Other><w:Selector Name="ShellId">not in a SelectorSet</w:Selector></w:Other>'
            "<w:MaxEnvelopeSize> 1000 </w:MaxEnvelopeSize><w:MaxEnvelopeSize>9</w:MaxEnvelopeSize>"
            "<w:OperationTimeout>PT5S</w:OperationTimeout></s:Header>"
            "<s:Body><first/></s:Body><s:Body><second/></s:Body></s:Envelope>"
        ).encode()
    )
    assert request.action == "first" and request.message_id == "uuid:1"
    assert request.shell_id == "B" and request.resource_uri == ""
    assert request.max_envelope == 1000 and request.timeout_s == 5.0
    assert [child.tag for child in request.body] == ["first"]


def test_soap_header_defaults() -> None:
    request = parse_request(
        f"{ENVELOPE}<s:Body/><s:Header><a:Action>x</a:Action></s:Header></s:Envelope>".encode()
    )
    assert (request.shell_id, request.max_envelope, request.timeout_s) == (None, 512000, 60.0)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("<s:Envelope", "the body is not XML"),
        ("<x/>", "not a SOAP 1.2 envelope"),
        (f"{ENVELOPE}<s:Header><a:Action>x</a:Action></s:Header></s:Envelope>", "not a SOAP"),
        (f"{ENVELOPE}<s:Body/></s:Envelope>", "not a SOAP 1.2 envelope"),
        (f"{ENVELOPE}<s:Header><a:Action> </a:Action></s:Header><s:Body/></s:Envelope>", "Action"),
    ],
)
def test_soap_requests_that_are_refused(body: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_request(body.encode())
