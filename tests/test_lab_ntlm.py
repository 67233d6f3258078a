"""NTLM/Negotiate on the lab's WinRM endpoint: the unmodified pypsrp client over HTTP with
message encryption and over HTTPS, plus the wire rules (connection binding, AllowUnencrypted)."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import spnego
import spnego._ntlm
from pypsrp.encryption import WinRMEncryption
from pypsrp.exceptions import AuthenticationError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from edgebook.errors import EdgebookError
from edgebook.lab.winrm import ntlm
from edgebook.lab.winrm.endpoint_tls import EndpointTls
from edgebook.lab.winrm.httpserver import RunningServer, serve
from edgebook.lab.winrm.wsman import WSManEndpoint
from tests.support.fake_backend import PASSWORD, FakeBackend

BIG = bytes(range(256)) * 2400  # 614 400 bytes: several encrypted Send messages
SOAP = (
    b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    b'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"><s:Header>'
    b"<a:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</a:Action>"
    b"<a:MessageID>uuid:1</a:MessageID></s:Header><s:Body/></s:Envelope>"
)


class Spy:
    """Records what NegotiateSession saw: tokens stepped, bodies wrapped."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tokens: list[bytes] = []
        self.wrapped: list[tuple[bytes, bytes]] = []  # (plain, sent)
        step, wrap = ntlm.NegotiateSession.step, ntlm.NegotiateSession.wrap

        def spy_step(session: ntlm.NegotiateSession, token: bytes, account: Any) -> Any:
            self.tokens.append(token)
            return step(session, token, account)

        def spy_wrap(session: ntlm.NegotiateSession, message: bytes) -> tuple[str, bytes]:
            content_type, body = wrap(session, message)
            self.wrapped.append((message, body))
            return content_type, body

        monkeypatch.setattr(ntlm.NegotiateSession, "step", spy_step)
        monkeypatch.setattr(ntlm.NegotiateSession, "wrap", spy_wrap)


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def http_lab(backend: FakeBackend) -> Iterator[tuple[WSManEndpoint, RunningServer]]:
    endpoint = WSManEndpoint(backend, "EDGE01", path="wsman", auth=("negotiate", "basic"))
    server = serve(endpoint)
    yield endpoint, server
    server.stop()


def connect(
    server: RunningServer,
    *,
    auth: str = "ntlm",
    username: str = "EDGE01\\Administrator",
    password: str = PASSWORD,
    **kwargs: Any,
) -> WSMan:
    kwargs.setdefault("ssl", False)
    return WSMan(
        "127.0.0.1",
        port=server.port,
        auth=auth,
        username=username,
        password=password,
        no_proxy=True,
        **kwargs,
    )


def echo(pool: RunspacePool, **parameters: Any) -> dict[str, Any]:
    ps = PowerShell(pool)
    ps.add_cmdlet("Echo")
    for name, value in parameters.items():
        ps.add_parameter(name, value)
    output = ps.invoke()
    assert not ps.had_errors and len(output) == 1
    return output[0]


def test_ntlm_over_http_encrypts_every_message(
    http_lab: tuple[WSManEndpoint, RunningServer],
    backend: FakeBackend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint, server = http_lab
    spy = Spy(monkeypatch)
    with connect(server, encryption="auto") as wsman, RunspacePool(wsman) as pool:
        result = echo(pool, FileData=BIG)
        assert wsman.transport.encryption is not None
        assert wsman.transport.encryption.protocol == WinRMEncryption.SPNEGO
    assert result["Parameters"]["FileData"] == BIG
    assert backend.calls[0].statements[0][0].parameters["FileData"] == BIG
    assert spy.tokens[0].startswith(b"NTLMSSP\x00\x01")  # plain NTLM, no SPNEGO wrapper
    # Every SOAP answer went out sealed (plain requests would have been refused with a fault).
    assert len(spy.wrapped) >= 5
    for plain, sent in spy.wrapped:
        assert plain.startswith(b"<s:Envelope") and b"Envelope" not in sent
    assert endpoint.open_shells == 0
    assert endpoint.requests > 8  # the handshake and the multi-part Send are counted too


@pytest.mark.parametrize(
    "username",
    ["EDGE01\\Administrator", "administrator", ".\\ADMINISTRATOR", "LAB\\Administrator"],
)
def test_negotiate_falls_back_to_ntlm_for_every_local_name_form(
    http_lab: tuple[WSManEndpoint, RunningServer],
    monkeypatch: pytest.MonkeyPatch,
    username: str,
) -> None:
    _, server = http_lab
    spy = Spy(monkeypatch)
    with (
        connect(server, auth="negotiate", username=username) as wsman,
        RunspacePool(wsman) as pool,
    ):
        assert echo(pool, Name="x")["Parameters"] == {"Name": "x"}
        shell = pool.shell._get_shell()  # WSMan Get: the shell as WinRM describes it
    assert spy.tokens[0][:1] == b"\x60"  # SPNEGO NegTokenInit carrying NTLM
    assert shell["Owner"] == "LAB\\Administrator"  # the account, however the client wrote it


@pytest.mark.parametrize("auth", ["ntlm", "negotiate"])
def test_ntlm_over_https_uses_tls_instead_of_message_encryption(
    backend: FakeBackend,
    tls: EndpointTls,
    monkeypatch: pytest.MonkeyPatch,
    auth: str,
) -> None:
    endpoint = WSManEndpoint(backend, "EDGE01", path="wsman", auth=("negotiate",))
    server = serve(endpoint, tls=tls.server_context())
    spy = Spy(monkeypatch)
    try:
        with (
            connect(server, auth=auth, ssl=True, cert_validation=str(tls.ca_file)) as wsman,
            RunspacePool(wsman) as pool,
        ):
            assert echo(pool, FileData=BIG)["Parameters"]["FileData"] == BIG
            assert wsman.transport.encryption is None
    finally:
        server.stop()
    assert spy.wrapped == []
    assert len(spy.tokens) == 2  # NEGOTIATE, AUTHENTICATE: one handshake for the connection


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("EDGE01\\Administrator", "wrong"),
        ("CONTOSO\\Administrator", PASSWORD),
        ("EDGE01\\Guest", PASSWORD),
    ],
)
def test_wrong_credentials_are_a_401(
    http_lab: tuple[WSManEndpoint, RunningServer], username: str, password: str
) -> None:
    endpoint, server = http_lab
    with (
        connect(server, username=username, password=password) as wsman,
        pytest.raises(AuthenticationError),
    ):
        RunspacePool(wsman).open()
    assert endpoint.open_shells == 0


def test_unencrypted_soap_on_an_ntlm_connection_is_refused(
    http_lab: tuple[WSManEndpoint, RunningServer], backend: FakeBackend
) -> None:
    _, server = http_lab
    with (
        connect(server, encryption="never") as wsman,
        pytest.raises(WSManFaultError) as caught,
    ):
        RunspacePool(wsman).open()
    assert caught.value.code == "w:AccessDenied"
    assert "AllowUnencrypted=false" in caught.value.reason
    assert backend.calls == []


def test_allow_unencrypted_lets_plain_soap_through(backend: FakeBackend) -> None:
    endpoint = WSManEndpoint(
        backend, "EDGE01", path="wsman", auth=("negotiate",), allow_unencrypted=True
    )
    server = serve(endpoint)
    try:
        with connect(server, encryption="never") as wsman, RunspacePool(wsman) as pool:
            assert echo(pool, Name="plain")["Parameters"] == {"Name": "plain"}
    finally:
        server.stop()


def test_basic_still_works_next_to_negotiate(
    http_lab: tuple[WSManEndpoint, RunningServer],
) -> None:
    _, server = http_lab
    with (
        connect(server, auth="basic", username="LAB\\Administrator", encryption="never") as wsman,
        RunspacePool(wsman) as pool,
    ):
        assert echo(pool, Name="b")["Parameters"] == {"Name": "b"}


def test_challenge_lists_the_offered_schemes(
    http_lab: tuple[WSManEndpoint, RunningServer], backend: FakeBackend
) -> None:
    _, server = http_lab
    response = requests.post(f"{server.url}/wsman", data=b"<x/>")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Negotiate, Basic realm="WSMAN"'
    only = WSManEndpoint(backend, "EDGE01", path="wsman", auth=("negotiate",))
    status, headers, _ = only.handle(b"<x/>", {"Authorization": "Basic eDp5"})
    assert (status, headers["WWW-Authenticate"]) == (401, "Negotiate")


def handshake(
    endpoint: WSManEndpoint, session: ntlm.NegotiateSession, username: str = "EDGE01\\Administrator"
) -> Any:
    """Authenticate session on endpoint with a pyspnego NTLM client; return the client context."""
    client = spnego.client(
        username,
        PASSWORD,
        hostname="edge01",
        protocol="ntlm",
        options=spnego.NegotiateOptions.wrapping_winrm | spnego.NegotiateOptions.use_ntlm,
    )
    token = client.step()
    while True:
        assert token is not None, "the NTLM client has a token to send until it is authenticated"
        auth = {"Authorization": f"Negotiate {base64.b64encode(token).decode()}"}
        status, headers, body = endpoint.handle(b"", auth, session)
        if status != 401:
            break
        token = client.step(base64.b64decode(headers["WWW-Authenticate"].split(" ", 1)[1]))
    assert (status, body) == (200, b"")
    return client


def encrypt(client: Any, message: bytes) -> tuple[dict[str, str], bytes]:
    content_type, body = WinRMEncryption(client, WinRMEncryption.SPNEGO).wrap_message(message)
    protocol = f'{content_type};protocol="{WinRMEncryption.SPNEGO}";boundary="Encrypted Boundary"'
    return {"Content-Type": protocol}, body


def test_ntlm_authenticates_the_connection_not_the_request(backend: FakeBackend) -> None:
    endpoint = WSManEndpoint(backend, "EDGE01", path="wsman", auth=("negotiate",))
    first, other = (
        ntlm.NegotiateSession("EDGE01", tls=False),
        ntlm.NegotiateSession("EDGE01", tls=False),
    )
    client = handshake(endpoint, first)
    headers, body = encrypt(client, SOAP)
    # Same bytes on another connection: no session there, so the caller must authenticate.
    assert endpoint.handle(body, headers, other)[0] == 401
    status, answer_headers, answer = endpoint.handle(body, headers, first)
    assert status == 500  # a Get without a ShellId: a WSMan fault, sealed like any answer
    assert answer_headers["Content-Type"] == ntlm.ENCRYPTED_CONTENT_TYPE
    boundary = "Encrypted Boundary"
    plain = WinRMEncryption(client, WinRMEncryption.SPNEGO).unwrap_message(answer, boundary)
    assert b"was not found in the WS-Management catalog" in plain


def test_a_tampered_body_is_refused_and_ends_the_session(backend: FakeBackend) -> None:
    endpoint = WSManEndpoint(backend, "EDGE01", path="wsman", auth=("negotiate",))
    session = ntlm.NegotiateSession("EDGE01", tls=False)
    client = handshake(endpoint, session)
    headers, body = encrypt(client, SOAP)
    tampered = body[:-30] + bytes([body[-30] ^ 1]) + body[-29:]
    status, _, text = endpoint.handle(tampered, headers, session)
    assert status == 400 and b"encrypted body was refused" in text
    assert not session.authenticated
    assert endpoint.handle(body, headers, session)[0] == 401


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"garbage", "expected the boundary"),
        (b"--Encrypted Boundary\r\n\tContent-Type: x\r\n--Encrypted Boundary--\r\n", "Length"),
        (b"--Encrypted Boundary--\r\n", "no encrypted part"),
    ],
)
def test_malformed_encrypted_bodies_are_a_400(
    backend: FakeBackend, body: bytes, reason: str
) -> None:
    endpoint = WSManEndpoint(backend, "EDGE01", path="wsman", auth=("negotiate",))
    session = ntlm.NegotiateSession("EDGE01", tls=False)
    client = handshake(endpoint, session)
    headers, _ = encrypt(client, SOAP)
    status, _, text = endpoint.handle(body, headers, session)
    assert status == 400 and reason.encode() in text


def test_a_backend_without_credential_cannot_offer_negotiate() -> None:
    class BasicOnly:
        def invoke(self, *args: Any) -> Any:
            raise AssertionError("not called")

        def authenticate(self, server: str, username: str, password: str) -> bool:
            return False

        def count_request(self, server: str) -> None:
            pass

    with pytest.raises(ValueError, match="credential"):
        WSManEndpoint(BasicOnly(), "EDGE01", path="wsman", auth=("negotiate",))
    with pytest.raises(ValueError, match="auth must name"):
        WSManEndpoint(FakeBackend(), "EDGE01", path="wsman", auth=("kerberos",))


def test_a_server_without_an_ntlm_account_refuses_everyone(backend: FakeBackend) -> None:
    class NoAccount(FakeBackend):
        def credential(self, server: str) -> tuple[str, str] | None:
            return None

    endpoint = WSManEndpoint(NoAccount(), "EDGE01", path="wsman", auth=("negotiate",))
    server = serve(endpoint)
    try:
        with connect(server) as wsman, pytest.raises(AuthenticationError):
            RunspacePool(wsman).open()
    finally:
        server.stop()


def test_concurrent_connections_keep_their_own_accounts(backend: FakeBackend) -> None:
    endpoint = WSManEndpoint(backend, "EDGE01", path="wsman", auth=("negotiate",))
    server = serve(endpoint)
    outcomes: dict[str, str] = {}

    def client(name: str, password: str) -> None:
        try:
            with connect(server, password=password) as wsman, RunspacePool(wsman) as pool:
                for index in range(3):
                    assert echo(pool, N=index)["Parameters"] == {"N": index}
            outcomes[name] = "ok"
        except AuthenticationError:
            outcomes[name] = "401"

    threads = [threading.Thread(target=client, args=(f"good{i}", PASSWORD)) for i in range(3)] + [
        threading.Thread(target=client, args=("bad", "nope"))
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        server.stop()
    assert outcomes == {"good0": "ok", "good1": "ok", "good2": "ok", "bad": "401"}


def test_account_names_and_secrecy() -> None:
    account = ntlm.Account.of("EDGE01", "EDGE01\\Administrator", PASSWORD)
    assert account.matches("edge01", "administrator")
    assert account.matches(".", "Administrator") and account.matches(None, "ADMINISTRATOR")
    assert not account.matches("CONTOSO", "Administrator")
    assert not account.matches("EDGE01", "Guest")
    assert account.nt_hash.hex() not in repr(account) and "nt_hash" not in repr(account)


def test_pyspnego_is_unchanged_outside_the_lab(monkeypatch: pytest.MonkeyPatch) -> None:
    ntlm.ensure_supported()
    ntlm.ensure_supported()  # installing twice is harmless
    monkeypatch.delenv("NTLM_USER_FILE", raising=False)
    assert spnego._ntlm._get_credential_file() is None
    with pytest.raises(spnego.exceptions.OperationNotAvailableError):
        spnego.server(protocol="ntlm", options=spnego.NegotiateOptions.use_ntlm)


def test_an_incompatible_pyspnego_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spnego._ntlm, "_get_credential", None)
    with pytest.raises(EdgebookError, match=r"pyspnego 0\.\d+\.\d+ no longer looks NTLM accounts"):
        WSManEndpoint(FakeBackend(), "EDGE01", path="wsman", auth=("negotiate",))
