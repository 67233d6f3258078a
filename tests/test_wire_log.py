"""Debug logs of pypsrp and spnego carry no token, payload or password."""

from __future__ import annotations

import logging

import spnego

from edgebook.config import WinRMEndpoint
from edgebook.exchange.shell import ExchangeShell
from edgebook.lab.winrm.httpserver import serve
from edgebook.lab.winrm.wsman import WSManEndpoint
from edgebook.secrets import Credential
from tests.support.fake_backend import PASSWORD, USERNAME, FakeBackend

PAYLOAD = "ESRAPassword-Do-Not-Log"
CLIENT_LOGGERS = ("pypsrp", "spnego", "requests", "urllib3", "edgebook.exchange.shell")


def test_a_shell_run_logs_no_password_or_payload_at_debug(caplog):
    running = serve(WSManEndpoint(FakeBackend(), "EDGE01", path="wsman"))
    winrm = WinRMEndpoint(
        "127.0.0.1", running.port, "wsman", "http", "basic", "Microsoft.PowerShell"
    )
    caplog.set_level(logging.DEBUG)
    try:
        with ExchangeShell(
            "EDGE01", winrm, Credential(USERNAME, PASSWORD), role="Edge", lab=True
        ) as shell:
            (echo,) = shell.run("Echo", FileData=PAYLOAD)[-1:]
    finally:
        running.stop()
    assert echo["Parameters"]["FileData"] == PAYLOAD  # the payload did cross the wire
    client = "\n".join(
        record.getMessage()
        for record in caplog.records
        if record.name.startswith(CLIENT_LOGGERS)  # the lab server logs its own side
    )
    assert "Sending message on attempt 0: <" in client
    assert "Unpacking PSRP message" in client
    assert PAYLOAD not in client
    assert PASSWORD not in client


def test_ntlm_tokens_are_not_logged(caplog):
    caplog.set_level(logging.DEBUG)
    client = spnego.client(USERNAME, PASSWORD, protocol="ntlm")
    token = client.step()
    assert token  # the NEGOTIATE message was produced
    records = [r for r in caplog.records if r.name == "spnego._ntlm" and "step" in r.getMessage()]
    assert records
    assert all("hidden by edgebook" in r.getMessage() for r in records)
    assert "TlRMTVNT" not in caplog.text  # base64 of "NTLMSSP"
