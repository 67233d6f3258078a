"""ExchangeShell: time bounds (no retry storms; a hung pipeline is stopped) and file checks."""

from __future__ import annotations

import getpass
import threading
import time
from collections.abc import Iterator

import pytest

from edgebook.config import CredentialRef, WinRMEndpoint
from edgebook.errors import ConfigError
from edgebook.exchange.shell import ExchangeConnectionError, ExchangeShell
from edgebook.lab.winrm.httpserver import RunningServer, serve
from edgebook.lab.winrm.runspace import ShellRunspace
from edgebook.lab.winrm.soap import TIMED_OUT, SoapRequest, WSManFault
from edgebook.lab.winrm.wsman import WSManEndpoint
from edgebook.secrets import Credential
from tests.support.fake_backend import PASSWORD, USERNAME, FakeBackend

PIPELINE_RECEIVE = "{http://schemas.microsoft.com/wbem/wsman/1/windows/shell}DesiredStream"


class StallingEndpoint(WSManEndpoint):
    """Answers a pipeline's Receive never (`hang`) or only with OperationTimeout (`busy`)."""

    def __init__(self) -> None:
        super().__init__(FakeBackend(), "EDGE01", path="wsman")
        self.mode: str | None = None
        self.release = threading.Event()
        self.stalled = 0
        self.signals: list[str] = []

    def _receive(self, request: SoapRequest, shell: ShellRunspace) -> str:
        desired = request.body.find(f".//{PIPELINE_RECEIVE}")
        if self.mode and desired is not None and desired.get("CommandId"):
            self.stalled += 1
            if self.mode == "hang":
                self.release.wait(60)
            else:
                time.sleep(request.timeout_s)
                raise WSManFault(TIMED_OUT, "w:TimedOut", "OperationTimeout", sender=False)
        return super()._receive(request, shell)

    def _signal(self, request: SoapRequest, shell: ShellRunspace) -> str:
        signal = request.body.find(
            ".//{http://schemas.microsoft.com/wbem/wsman/1/windows/shell}Code"
        )
        self.signals.append((signal.text or "") if signal is not None else "")
        return super()._signal(request, shell)


@pytest.fixture
def stalling() -> Iterator[tuple[StallingEndpoint, RunningServer]]:
    endpoint = StallingEndpoint()
    running = serve(endpoint)
    yield endpoint, running
    endpoint.release.set()
    running.stop()


def shell(port: int, call_timeout: float) -> ExchangeShell:
    winrm = WinRMEndpoint("127.0.0.1", port, "wsman", "http", "basic", "Microsoft.PowerShell")
    return ExchangeShell(
        "EDGE01",
        winrm,
        Credential(USERNAME, PASSWORD),
        role="Edge",
        lab=True,
        operation_timeout=1,
        connection_timeout=2,
        call_timeout=call_timeout,
    )


def test_a_receive_that_never_answers_is_not_retried(stalling):
    """pypsrp retries a Receive 5 times with growing pauses (minutes); the shell does not."""
    endpoint, running = stalling
    with shell(running.port, call_timeout=3) as session:
        session.open()
        endpoint.mode = "hang"
        started = time.monotonic()
        with pytest.raises(ExchangeConnectionError, match=r"within 3 s \(the call timeout\)"):
            session.run("Get-ExchangeCertificate")
        assert (
            time.monotonic() - started < 7
        )  # the call timeout, a last request's grace; not minutes
    assert endpoint.stalled == 1


def test_a_cmdlet_that_never_ends_is_stopped_at_the_call_timeout(stalling):
    """A server answering every poll with OperationTimeout would keep pypsrp polling forever."""
    endpoint, running = stalling
    with shell(running.port, call_timeout=3) as session:
        session.open()
        endpoint.mode = "busy"
        started = time.monotonic()
        with pytest.raises(ExchangeConnectionError, match="call timeout") as info:
            session.run("Get-ExchangeCertificate")
        assert 2.5 < time.monotonic() - started < 7
        assert "the server, the network or a cmdlet is too slow" in str(info.value)
        assert endpoint.stalled >= 2
        assert any(code.endswith("powershell/signal/ctrl_c") for code in endpoint.signals)
        endpoint.mode = None  # the stopped pipeline left the session usable
        requests_before = session.stats.wsman_requests
        assert session.run("Get-ExchangeCertificate")[-1]["Thumbprint"] == "A1B2C3"
        assert session.stats.pipelines == 2
        assert session.stats.wsman_requests - requests_before < 6  # no new session


def test_opening_a_session_is_bounded_by_the_call_timeout():
    """A listener that accepts and never answers: the call ends at its timeout."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        started = time.monotonic()
        with (
            shell(listener.getsockname()[1], call_timeout=1.5) as session,
            pytest.raises(ExchangeConnectionError, match="call timeout"),
        ):
            session.open()
        assert time.monotonic() - started < 5
    finally:
        listener.close()


def test_timeouts_must_be_positive():
    winrm = WinRMEndpoint("127.0.0.1", 5985, "wsman", "http", "basic", "Microsoft.PowerShell")
    with pytest.raises(ValueError, match="positive"):
        ExchangeShell("EDGE01", winrm, None, role="Edge", lab=True, call_timeout=0)


def test_a_folder_as_ca_file_is_named_as_such(tmp_path):
    winrm = WinRMEndpoint(
        "127.0.0.1", 5986, "wsman", "https", "ntlm", "Microsoft.PowerShell", tmp_path
    )
    with pytest.raises(ConfigError, match=r"winrm\.ca_file .* is a folder, not a file"):
        ExchangeShell("EDGE01", winrm, Credential(USERNAME, PASSWORD), role="Edge").open()


def test_time_at_the_password_prompt_does_not_count(monkeypatch):
    running = serve(WSManEndpoint(FakeBackend(), "EDGE01", path="wsman"))

    def slow_typist(prompt: str = "") -> str:
        time.sleep(1.5)
        return PASSWORD

    slow_typist.__module__ = "ipykernel.kernelbase"
    monkeypatch.setattr(getpass, "getpass", slow_typist)
    winrm = WinRMEndpoint(
        "127.0.0.1", running.port, "wsman", "http", "basic", "Microsoft.PowerShell"
    )
    try:
        with ExchangeShell(
            "EDGE01",
            winrm,
            CredentialRef(USERNAME, "prompt"),
            role="Edge",
            lab=True,
            call_timeout=1,
        ) as session:
            assert session.run("Get-ExchangeCertificate")[-1]["Thumbprint"] == "A1B2C3"
    finally:
        running.stop()
