"""The lab's TLS listeners: SMTP with STARTTLS and LDAPS, against smtplib, ssl and openssl."""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from edgebook.errors import EdgebookError
from edgebook.lab.net.listeners import LdapsListener, SmtpListener
from tests.support.certs import Issued, key_pem, make_ca, make_leaf, name, pem

FQDN = "edge.contoso.test"
PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.S)


@dataclass
class Pki:
    root: Issued
    ica: Issued
    old: Issued
    new: Issued
    root_file: Path

    def material(self, leaf: Issued) -> tuple[bytes, bytes]:
        return pem(leaf.cert) + pem(self.ica.cert), key_pem(leaf.key)


@dataclass
class Service:
    """What the simulated service presents; the tests change it between connections."""

    material: tuple[bytes, bytes] | None
    running: bool = True
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = make_ca(name((NameOID.COUNTRY_NAME, "US"), (NameOID.COMMON_NAME, "Lab Root")))
    ica = make_ca(name((NameOID.COMMON_NAME, "Lab Issuing CA G2")), issuer=root)

    def leaf(unit: str) -> Issued:
        subject = name((NameOID.ORGANIZATIONAL_UNIT_NAME, unit), (NameOID.COMMON_NAME, FQDN))
        return make_leaf(ica, subject, [FQDN, "localhost"])

    root_file = tmp_path_factory.mktemp("pki") / "root.pem"
    root_file.write_bytes(pem(root.cert))
    return Pki(root, ica, leaf("IT"), leaf("IT Ops"), root_file)


@pytest.fixture
def service(pki: Pki) -> Service:
    return Service(pki.material(pki.old))


@pytest.fixture
def smtp(service: Service) -> Iterator[SmtpListener]:
    listener = SmtpListener(
        lambda: service.material,
        lambda *message: service.messages.append(message),
        fqdn=FQDN,
        running=lambda: service.running,
    )
    listener.start()
    yield listener
    listener.stop()


@pytest.fixture
def ldaps(service: Service) -> Iterator[LdapsListener]:
    listener = LdapsListener(
        lambda: service.material, running=lambda: service.running, dns_host_name=FQDN
    )
    listener.start()
    yield listener
    listener.stop()


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def no_verify() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def peer_leaf(sock: socket.socket | None) -> bytes:
    assert isinstance(sock, ssl.SSLSocket)
    leaf = sock.getpeercert(binary_form=True)
    assert leaf is not None
    return leaf


def starttls_leaf(port: int) -> bytes:
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        client.starttls(context=no_verify())
        return peer_leaf(client.sock)


def ldaps_leaf(port: int) -> bytes:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        no_verify().wrap_socket(raw) as tls,
    ):
        return peer_leaf(tls)


# --- SMTP -------------------------------------------------------------------------------------


def test_banner_and_ehlo_look_like_exchange(service: Service) -> None:
    moment = dt.datetime(2024, 3, 5, 9, 7, 3, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    listener = SmtpListener(lambda: service.material, print, fqdn=FQDN, clock=lambda: moment)
    banner = f"220 {FQDN} Microsoft ESMTP MAIL Service ready at Tue, 5 Mar 2024 09:07:03 +0100"
    with listener:
        with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as raw:
            assert raw.makefile("rb").readline() == f"{banner}\r\n".encode()
        with smtplib.SMTP("127.0.0.1", listener.port, timeout=5) as client:
            code, text = client.ehlo("client.test")
            assert code == 250
            assert text.decode().splitlines()[0] == f"{FQDN} Hello [127.0.0.1]"
            assert client.has_extn("starttls")


def test_starttls_presents_the_sources_certificate_with_its_chain(
    smtp: SmtpListener, pki: Pki
) -> None:
    assert starttls_leaf(smtp.port) == der(pki.old.cert)
    context = ssl.create_default_context(cafile=pki.root_file)
    context.check_hostname = False  # smtplib would check 127.0.0.1
    with smtplib.SMTP("127.0.0.1", smtp.port, timeout=5) as client:
        client.starttls(context=context)  # verifies: needs the intermediate from the server
        client.ehlo()
        assert not client.has_extn("starttls")
        assert not client.has_extn("auth")


def test_swapping_the_certificate_changes_the_next_handshake(
    smtp: SmtpListener, service: Service, pki: Pki
) -> None:
    with smtplib.SMTP("127.0.0.1", smtp.port, timeout=5) as before:
        before.ehlo()
        service.material = pki.material(pki.new)  # e.g. MSExchangeTransport restarted
        before.starttls(context=no_verify())
        assert peer_leaf(before.sock) == der(pki.new.cert)
    assert starttls_leaf(smtp.port) == der(pki.new.cert)
    service.material = pki.material(pki.old)
    assert starttls_leaf(smtp.port) == der(pki.old.cert)


def test_no_starttls_without_a_certificate_but_mail_is_still_accepted(
    smtp: SmtpListener, service: Service
) -> None:
    service.material = None
    with smtplib.SMTP("127.0.0.1", smtp.port, timeout=5) as client:
        client.ehlo()
        assert not client.has_extn("starttls")
        with pytest.raises(smtplib.SMTPNotSupportedError):
            client.starttls(context=no_verify())
        client.sendmail("a@contoso.test", ["b@fabrikam.test"], b"Subject: plain\r\n\r\nhi\r\n")
    assert service.messages == [
        ("a@contoso.test", ["b@fabrikam.test"], b"Subject: plain\r\n\r\nhi\r\n")
    ]


def test_unloadable_certificate_is_treated_as_none(
    smtp: SmtpListener, service: Service, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    service.material = (pki.material(pki.old)[0], pki.material(pki.new)[1])  # key of another
    with smtplib.SMTP("127.0.0.1", smtp.port, timeout=5) as client:
        client.ehlo()
        assert not client.has_extn("starttls")
    assert "do not load" in caplog.text


def test_mail_after_starttls_is_delivered_to_on_message(
    smtp: SmtpListener, service: Service
) -> None:
    with smtplib.SMTP("127.0.0.1", smtp.port, timeout=5) as client:
        client.starttls(context=no_verify())
        client.ehlo()
        client.mail("probe@contoso.test")
        client.rcpt("one@fabrikam.test")
        client.rcpt("two@fabrikam.test")
        code, reply = client.data(b"Subject: t\r\n\r\nbody\r\n")
    assert code == 250
    assert re.fullmatch(rf"2\.6\.0 <[0-9A-F]+@{FQDN}> Queued mail for delivery", reply.decode())
    assert service.messages == [
        (
            "probe@contoso.test",
            ["one@fabrikam.test", "two@fabrikam.test"],
            b"Subject: t\r\n\r\nbody\r\n",
        )
    ]


def test_stopped_service_answers_421_until_it_runs_again(
    smtp: SmtpListener, service: Service, pki: Pki
) -> None:
    service.running = False
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        smtplib.SMTP("127.0.0.1", smtp.port, timeout=5)
    assert (refused.value.smtp_code, refused.value.smtp_error) == (
        421,
        b"4.3.2 Service not available",
    )
    service.running = True
    assert starttls_leaf(smtp.port) == der(pki.old.cert)


def test_clients_that_drop_mid_handshake_leave_no_noise(
    smtp: SmtpListener,
    ldaps: LdapsListener,
    pki: Pki,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    hello = b"\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03"  # a ClientHello, cut short
    for payload, wait_for_server in ((hello, False), (b"not tls at all\r\n", True)):
        with socket.create_connection(("127.0.0.1", smtp.port), timeout=5) as raw:
            reader = raw.makefile("rb")
            reader.readline()
            raw.sendall(b"EHLO x\r\nSTARTTLS\r\n")
            while not reader.readline().startswith(b"220 "):
                pass
            raw.sendall(payload)
            if wait_for_server:
                reader.read()  # returns once the server has failed the handshake and hung up
        with socket.create_connection(("127.0.0.1", ldaps.port), timeout=5) as raw:
            raw.sendall(payload)
            if wait_for_server:
                raw.recv(1024)
    with smtplib.SMTP("127.0.0.1", smtp.port, timeout=5) as client:
        client.ehlo()
        assert client.sock is not None
        client.sock.close()  # vanish without QUIT
    assert starttls_leaf(smtp.port) == der(pki.old.cert)
    assert ldaps_leaf(ldaps.port) == der(pki.old.cert)
    smtp.stop()
    ldaps.stop()
    assert capfd.readouterr().err == ""
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_stop_closes_open_sessions_and_the_port(smtp: SmtpListener) -> None:
    port = smtp.port
    client = smtplib.SMTP("127.0.0.1", port, timeout=5)
    smtp.stop()
    with pytest.raises((smtplib.SMTPServerDisconnected, ConnectionError)):
        client.ehlo()
    client.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)


def test_busy_port_is_a_clear_error(service: Service) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        listener = SmtpListener(lambda: service.material, print, port=port, fqdn=FQDN)
        with pytest.raises(EdgebookError, match=f"cannot listen on 127.0.0.1:{port}"):
            listener.start()
    with pytest.raises(EdgebookError, match="not started"):
        listener.port  # noqa: B018


class Dialogue:
    """A raw SMTP client: commands sent as they are, replies read line by line."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.reader = self.sock.makefile("rb")
        self.reply()  # the banner

    def reply(self) -> list[str]:
        lines = [self.reader.readline().decode().rstrip("\r\n")]
        while lines[-1][3:4] == "-":
            lines.append(self.reader.readline().decode().rstrip("\r\n"))
        return lines

    def say(self, *commands: bytes) -> list[list[str]]:
        """Send the commands in one write (pipelined) and read one reply for each."""
        self.sock.sendall(b"".join(command + b"\r\n" for command in commands))
        return [self.reply() for _ in commands]

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


@pytest.fixture
def dialogue(smtp: SmtpListener) -> Iterator[Dialogue]:
    client = Dialogue(smtp.port)
    yield client
    client.close()


def test_ehlo_offers_what_exchange_offers_an_anonymous_client(dialogue: Dialogue) -> None:
    [reply] = dialogue.say(b"EHLO client.test")
    assert reply == [
        f"250-{FQDN} Hello [127.0.0.1]",
        f"250-SIZE {SmtpListener.max_message_size}",
        "250-PIPELINING",
        "250-ENHANCEDSTATUSCODES",
        "250-STARTTLS",
        "250 8BITMIME",
    ]
    [helo] = dialogue.say(b"HELO client.test")
    assert helo == [f"250 {FQDN} Hello [127.0.0.1]"]
    [help_] = dialogue.say(b"HELP")
    assert help_[-1] == "214 HELO EHLO STARTTLS RCPT DATA RSET MAIL QUIT HELP"


def test_commands_out_of_order_are_refused_with_exchanges_codes(dialogue: Dialogue) -> None:
    replies = dialogue.say(
        b"MAIL FROM:<a@contoso.test>",  # before EHLO
        b"STARTTLS",  # before EHLO
        b"EHLO client.test",
        b"RCPT TO:<b@fabrikam.test>",  # before MAIL
        b"DATA",  # before MAIL
        b"MAIL FROM:<a@contoso.test>",
        b"MAIL FROM:<c@contoso.test>",  # a second sender
        b"DATA",  # before RCPT
        b"RSET",
        b"RCPT TO:<b@fabrikam.test>",  # the transaction was reset
        b"XYZZY",
        b"AUTH NTLM",
        b"VRFY b",
        b"NOOP",
    )
    assert [reply[-1][:9] for reply in replies] == [
        "503 5.5.2",
        "503 5.5.2",
        "250 8BITM",
        "503 5.5.2",
        "503 5.5.2",
        "250 2.1.0",
        "503 5.5.2",
        "503 5.5.2",
        "250 2.0.0",
        "503 5.5.2",
        "500 5.3.3",
        "504 5.7.4",
        "252 2.1.5",
        "250 2.0.0",
    ]
    assert replies[10] == ["500 5.3.3 Unrecognized command 'XYZZY'"]


def test_mail_parameters_and_addresses_are_checked(dialogue: Dialogue) -> None:
    too_big = SmtpListener.max_message_size + 1
    replies = dialogue.say(
        b"EHLO client.test",
        b"MAIL FROM:a@contoso.test",  # no angle brackets
        b"MAIL FROM:<a@contoso.test> SIZE=%d" % too_big,
        b"MAIL FROM:<a@contoso.test> XYZ=1",
        b"MAIL FROM:<> SIZE=100 BODY=8BITMIME",  # the null sender of a bounce is fine
        b"RCPT TO:<>",
        b"RCPT TO:<b@fabrikam.test> NOTIFY=NEVER",  # no DSN offered
        b"RCPT TO:<b@fabrikam.test>",
    )
    assert [reply[-1] for reply in replies[1:]] == [
        "501 5.5.4 Invalid arguments",
        "552 5.3.4 Message size exceeds fixed maximum message size",
        "555 5.5.4 Unsupported option: XYZ=1",
        "250 2.1.0 Sender OK",
        "501 5.5.4 Invalid arguments",
        "555 5.5.4 Unsupported option: NOTIFY=NEVER",
        "250 2.1.5 Recipient OK",
    ]


def test_data_is_unstuffed_and_pipelined_commands_are_answered_in_order(
    dialogue: Dialogue, service: Service
) -> None:
    replies = dialogue.say(
        b"EHLO client.test",
        b"MAIL FROM:<a@contoso.test>",
        b"RCPT TO:<b@fabrikam.test>",
        b"DATA",
    )
    assert replies[-1] == ["354 Start mail input; end with <CRLF>.<CRLF>"]
    dialogue.sock.sendall(b"Subject: dots\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n")
    assert dialogue.reply()[0].endswith("Queued mail for delivery")
    assert dialogue.reply() == ["221 2.0.0 Service closing transmission channel"]
    assert dialogue.reader.read() == b""  # and the server hangs up
    assert service.messages == [
        ("a@contoso.test", ["b@fabrikam.test"], b"Subject: dots\r\n\r\n.leading dot\r\n")
    ]


def test_an_overlong_line_is_refused_and_the_session_goes_on(dialogue: Dialogue) -> None:
    [long, noop] = dialogue.say(b"NOOP " + b"x" * 600, b"NOOP")
    assert long == ["500 5.5.6 Line too long"]
    assert noop == ["250 2.0.0 OK"]


def test_a_client_that_hangs_up_inside_an_overlong_line_ends_its_session(
    dialogue: Dialogue,
) -> None:
    dialogue.sock.sendall(b"NOOP " + b"x" * 600)  # no line end, then gone
    dialogue.sock.shutdown(socket.SHUT_WR)
    assert dialogue.reader.read() == b""  # the server hangs up too (within the 5 s timeout)


def test_a_message_over_the_size_limit_is_refused_and_not_delivered(
    dialogue: Dialogue, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SmtpListener, "max_message_size", 100)
    dialogue.say(b"EHLO client.test", b"MAIL FROM:<a@contoso.test>", b"RCPT TO:<b@fabrikam.test>")
    [data] = dialogue.say(b"DATA")
    assert data[0].startswith("354")
    dialogue.sock.sendall(b"x" * 80 + b"\r\n" + b"y" * 80 + b"\r\n.\r\n")
    assert dialogue.reply() == ["552 5.3.4 Message size exceeds fixed maximum message size"]
    assert service.messages == []
    [after] = dialogue.say(b"RCPT TO:<b@fabrikam.test>")  # the transaction is over
    assert after == ["503 5.5.2 Need mail command"]


def test_after_starttls_the_client_greets_again_and_tls_is_not_offered_twice(
    smtp: SmtpListener,
) -> None:
    with smtplib.SMTP("127.0.0.1", smtp.port, timeout=5) as client:
        client.starttls(context=no_verify())
        assert client.mail("a@contoso.test")[0] == 503  # RFC 3207: EHLO again first
        client.ehlo()
        assert client.docmd("STARTTLS") == (503, b"5.5.1 TLS already active")
        assert client.mail("a@contoso.test")[0] == 250


def test_starttls_without_a_certificate_at_that_moment_is_a_454(
    dialogue: Dialogue, service: Service
) -> None:
    dialogue.say(b"EHLO client.test")
    service.material = None  # e.g. the certificate was removed after the EHLO
    [reply] = dialogue.say(b"STARTTLS")
    assert reply == ["454 4.7.0 TLS not available due to temporary reason"]


# --- LDAPS ------------------------------------------------------------------------------------


def test_ldaps_presents_the_current_certificate(
    ldaps: LdapsListener, service: Service, pki: Pki
) -> None:
    assert ldaps_leaf(ldaps.port) == der(pki.old.cert)
    service.material = pki.material(pki.new)  # ADAM_MSExchange restarted with the new one
    assert ldaps_leaf(ldaps.port) == der(pki.new.cert)
    context = ssl.create_default_context(cafile=pki.root_file)
    with (
        socket.create_connection(("127.0.0.1", ldaps.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=FQDN) as tls,
    ):
        assert tls.version() in {"TLSv1.2", "TLSv1.3"}


@pytest.mark.parametrize("state", ["stopped", "no certificate"])
def test_ldaps_closes_when_the_service_cannot_serve(
    ldaps: LdapsListener, service: Service, state: str
) -> None:
    if state == "stopped":
        service.running = False
    else:
        service.material = None
    with pytest.raises((ssl.SSLError, ConnectionError)):
        ldaps_leaf(ldaps.port)


def ber(tag: int, content: bytes) -> bytes:
    assert len(content) < 0x80
    return bytes([tag, len(content)]) + content


def parse(data: bytes) -> list[tuple[int, bytes]]:
    """Top-level TLVs of data (short and long form lengths)."""
    items, pos = [], 0
    while pos < len(data):
        tag, size, pos = data[pos], data[pos + 1], pos + 2
        if size & 0x80:
            count = size & 0x7F
            size, pos = int.from_bytes(data[pos : pos + count], "big"), pos + count
        items.append((tag, data[pos : pos + size]))
        pos += size
    return items


def exchange(tls: ssl.SSLSocket, request: bytes) -> list[tuple[int, bytes]]:
    """Send one LDAPMessage and read its responses up to the final one."""
    tls.sendall(request)
    data = b""
    while True:
        data += tls.recv(65536)
        messages = parse(data)
        if messages and parse(messages[-1][1])[1][0] != 0x64:  # not a SearchResultEntry
            return [parse(content)[1] for _, content in messages]


def result_code(op: bytes) -> int:
    return parse(op)[0][1][0]


def test_ldaps_answers_bind_rootdse_and_unbind(ldaps: LdapsListener) -> None:
    anonymous = ber(
        0x30, ber(0x02, b"\x01") + ber(0x60, ber(0x02, b"\x03") + ber(0x04, b"") + ber(0x80, b""))
    )
    with_password = ber(
        0x30,
        ber(0x02, b"\x02") + ber(0x60, ber(0x02, b"\x03") + ber(0x04, b"cn=x") + ber(0x80, b"pw")),
    )
    root_dse = ber(
        0x30,
        ber(0x02, b"\x03")
        + ber(
            0x63,
            ber(0x04, b"")
            + ber(0x0A, b"\x00")
            + ber(0x0A, b"\x00")
            + ber(0x02, b"\x00")
            + ber(0x02, b"\x00")
            + ber(0x01, b"\x00")
            + ber(0x87, b"objectClass")
            + ber(0x30, b""),
        ),
    )
    delete = ber(0x30, ber(0x02, b"\x04") + ber(0x4A, b"cn=x"))
    with (
        socket.create_connection(("127.0.0.1", ldaps.port), timeout=5) as raw,
        no_verify().wrap_socket(raw) as tls,
    ):
        [(tag, op)] = exchange(tls, anonymous)
        assert (tag, result_code(op)) == (0x61, 0)
        [(tag, op)] = exchange(tls, with_password)
        assert (tag, result_code(op)) == (0x61, 49)
        (entry_tag, entry), (done_tag, done) = exchange(tls, root_dse)
        assert (entry_tag, done_tag, result_code(done)) == (0x64, 0x65, 0)
        attributes = {
            parse(attr)[0][1].decode(): [v.decode() for _, v in parse(parse(attr)[1][1])]
            for _, attr in parse(parse(entry)[1][1])
        }
        assert attributes["dnsHostName"] == [FQDN]
        assert attributes["supportedLDAPVersion"] == ["3", "2"]
        [(tag, op)] = exchange(tls, delete)
        assert (tag, result_code(op)) == (0x6B, 53)
        tls.sendall(ber(0x30, ber(0x02, b"\x05") + ber(0x42, b"")))  # unbind
        assert tls.recv(1024) == b""


# --- openssl s_client, an independent client --------------------------------------------------

OPENSSL = shutil.which("openssl")


def s_client(*args: str) -> tuple[list[bytes], str]:
    done = subprocess.run(
        [OPENSSL or "openssl", "s_client", *args, "-showcerts", "-servername", FQDN],
        input=b"QUIT\r\n",
        capture_output=True,
        timeout=20,
        check=False,
    )
    text = done.stdout.decode(errors="replace")
    return [
        x509.load_pem_x509_certificate(block).public_bytes(serialization.Encoding.DER)
        for block in PEM_BLOCK.findall(done.stdout)
    ], text


@pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")
def test_openssl_sees_leaf_and_intermediate_on_both_ports(
    smtp: SmtpListener, ldaps: LdapsListener, pki: Pki
) -> None:
    expected = [der(pki.old.cert), der(pki.ica.cert)]
    ca = ["-CAfile", str(pki.root_file)]
    chain, text = s_client("-starttls", "smtp", "-connect", f"127.0.0.1:{smtp.port}", *ca)
    assert chain == expected
    assert "Verify return code: 0 (ok)" in text
    chain, text = s_client("-connect", f"127.0.0.1:{ldaps.port}", *ca)
    assert chain == expected
    assert "Verify return code: 0 (ok)" in text


# --- simulated latency (edgebook lab start --latency-ms) ---------------------------------------

LATENCY_S = 0.2


def timed(action: Callable[[], object]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def test_smtp_charges_one_round_trip_per_turn(service: Service, pki: Pki) -> None:
    listener = SmtpListener(
        lambda: service.material,
        lambda *message: service.messages.append(message),
        fqdn=FQDN,
        latency_s=LATENCY_S,
    )
    with listener:
        opened = time.monotonic()
        client = Dialogue(listener.port)  # reads the banner
        try:
            banner = time.monotonic() - opened
            ehlo = timed(lambda: client.say(b"EHLO client.test"))
            # pipelined commands travel together: one round trip, not three
            pipelined = timed(
                lambda: client.say(b"MAIL FROM:<a@b.test>", b"RCPT TO:<c@d.test>", b"DATA")
            )

            # a message body streamed in pieces is one turn, however many writes it takes
            def body() -> None:
                for piece in (b"Subject: x\r\n\r\n", b"line\r\n" * 200, b".\r\n"):
                    client.sock.sendall(piece)
                    time.sleep(0.02)
                assert client.reply()[0].startswith("250 ")

            streamed = timed(body)
        finally:
            client.close()
    for elapsed in (banner, ehlo, pipelined):
        assert LATENCY_S <= elapsed < 2 * LATENCY_S
    assert LATENCY_S <= streamed < 2 * LATENCY_S + 0.06
    assert len(service.messages) == 1


def test_starttls_handshake_and_ldaps_cost_a_round_trip_each(service: Service) -> None:
    smtp = SmtpListener(lambda: service.material, lambda *_: None, fqdn=FQDN, latency_s=LATENCY_S)
    ldaps = LdapsListener(lambda: service.material, dns_host_name=FQDN, latency_s=LATENCY_S)
    with smtp, ldaps:
        # smtplib: banner, EHLO, STARTTLS, the handshake, QUIT (on leaving): five turns
        assert 5 * LATENCY_S <= timed(lambda: starttls_leaf(smtp.port)) < 7 * LATENCY_S
        with (
            socket.create_connection(("127.0.0.1", ldaps.port), timeout=5) as raw,
            no_verify().wrap_socket(raw, do_handshake_on_connect=False) as tls,
        ):
            # the ClientHello goes the moment the connection is up (timed from a little later)
            assert 0.9 * LATENCY_S <= timed(tls.do_handshake) < 2 * LATENCY_S
            anonymous_bind = ber(
                0x30,
                ber(0x02, b"\x01")
                + ber(0x60, ber(0x02, b"\x03") + ber(0x04, b"") + ber(0x80, b"")),
            )
            assert LATENCY_S <= timed(lambda: exchange(tls, anonymous_bind)) < 2 * LATENCY_S


def test_a_stopped_service_answers_after_the_round_trip_too(service: Service) -> None:
    service.running = False
    smtp = SmtpListener(
        lambda: service.material,
        lambda *_: None,
        fqdn=FQDN,
        running=lambda: service.running,
        latency_s=LATENCY_S,
    )
    with smtp, socket.create_connection(("127.0.0.1", smtp.port), timeout=5) as sock:
        started = time.monotonic()
        assert sock.recv(100) == b"421 4.3.2 Service not available\r\n"
        assert time.monotonic() - started >= LATENCY_S
