"""ExchangeShell against the lab's real WSMan/PSRP endpoint (in process and over HTTP(S))."""

from __future__ import annotations

import datetime as dt
import gc
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgebook.config import WinRMEndpoint, load_inventory
from edgebook.errors import ConfigError, EdgebookError
from edgebook.exchange.command import Command, Result
from edgebook.exchange.normalize import PSRecord
from edgebook.exchange.shell import ExchangeCommandError, ExchangeConnectionError, ExchangeShell
from edgebook.exchange.wire_types import EXCHANGE_CERTIFICATE, EXCHANGE_SNAPIN
from edgebook.lab.winrm import httpserver
from edgebook.lab.winrm.endpoint_tls import EndpointTls
from edgebook.lab.winrm.httpserver import serve
from edgebook.lab.winrm.inprocess import connect_in_process
from edgebook.lab.winrm.objects import MVP_STRING, ExEnum, ExList, ExObject
from edgebook.lab.winrm.protocol import CommandCall, ErrorInfo, Invocation, Session, Statement
from edgebook.lab.winrm.wsman import WSManEndpoint
from edgebook.secrets import Credential

USER, PASSWORD = "lab\\admin", "Lab-Pa55!"
ALREADY_ADDED = (
    f"Cannot add Windows PowerShell snap-in {EXCHANGE_SNAPIN} because it is already added. "
    "Verify the name of the snap-in, and then try again."
)
SNAPIN_FQID = "AddPSSnapInRead,Microsoft.PowerShell.Commands.AddPSSnapinCommand"


class FakeBackend:
    """A tiny Exchange: Add-PSSnapin, Get-ExchangeCertificate, Get-Thing, Echo, Warn."""

    def __init__(self, *, snapin_installed: bool = True, preloaded: bool = False) -> None:
        self.snapin_installed = snapin_installed
        self.preloaded = preloaded
        self.calls: list[tuple[str, list[Statement]]] = []
        self.block: threading.Event | None = None
        self.entered = threading.Event()

    def authenticate(self, server: str, username: str, password: str) -> bool:
        return (username, password) == (USER, PASSWORD)

    def count_request(self, server: str) -> None:
        """The endpoint counts requests itself; nothing to do here."""

    def invoke(
        self, session: Session, statements: list[Statement], input: list[Any], host: Any = None
    ) -> Invocation:
        self.calls.append((session.configuration_name, statements))
        if self.preloaded:
            session.snapins.add(EXCHANGE_SNAPIN)
        self.entered.set()
        if self.block is not None:
            self.block.wait(5)
        result = Invocation()
        for statement in statements:
            for call in statement:
                if not self._run(session, call, result):
                    return result
        return result

    def _run(self, session: Session, call: CommandCall, result: Invocation) -> bool:
        edge_shape = session.configuration_name == "Microsoft.PowerShell"
        if call.name == "Add-PSSnapin":
            name = call.parameters["Name"]
            if not self.snapin_installed:
                result.errors.append(
                    ErrorInfo(
                        f"The Windows PowerShell snap-in '{name}' is not installed on this "
                        "computer.",
                        SNAPIN_FQID,
                        "InvalidArgument",
                        name,
                    )
                )
            elif name in session.snapins:
                result.errors.append(ErrorInfo(ALREADY_ADDED, SNAPIN_FQID, "InvalidArgument", name))
            else:
                session.snapins.add(name)
            return True
        known = call.name in ("Get-ExchangeCertificate", "Get-Thing", "Echo", "Warn")
        if not known or (edge_shape and EXCHANGE_SNAPIN not in session.snapins):
            result.terminating = ErrorInfo(
                f"The term '{call.name}' is not recognized as the name of a cmdlet, function, "
                "script file, or operable program.",
                "CommandNotFoundException",
                "ObjectNotFound",
                call.name,
                "System.Management.Automation.CommandNotFoundException",
            )
            return False
        if call.name == "Get-ExchangeCertificate":
            result.output.append(certificate())
        elif call.name == "Get-Thing":
            identity = call.parameters["Identity"]
            if identity == "missing":
                result.errors.append(
                    ErrorInfo(
                        "The operation couldn't be performed because object 'missing' couldn't "
                        "be found.",
                        "[Server=MBX01] 8E3C1F0A,Microsoft.Exchange.Get-Thing",
                        "ObjectNotFound",
                        "missing",
                        "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
                    )
                )
            else:
                result.output.append(ExObject(["Contoso.Thing", "System.Object"], {"Id": identity}))
        elif call.name == "Echo":
            result.output.append(ExObject(["Contoso.Echo", "System.Object"], dict(call.parameters)))
        elif call.name == "Warn":
            result.warnings.append("The certificate will expire soon.")
        return True


def certificate() -> ExObject:
    return ExObject(
        [EXCHANGE_CERTIFICATE, "System.Object"],
        {
            "Thumbprint": "8A2B7F9C0D1E2F3A4B5C6D7E8F9012345678ABCD",
            "CertificateDomains": ExList(MVP_STRING, ["mail.contoso.com", "edge01.contoso.com"]),
            "Services": ExEnum("Microsoft.Exchange.Data.AllowedServices", "IMAP, POP, SMTP", 19),
            "NotAfter": dt.datetime(2027, 1, 1, 12, 30, tzinfo=dt.UTC),
            "RawData": b"\x30\x82\x01\x92",
        },
    )


def lab_winrm(configuration_name: str, *, port: int = 5985, path: str = "wsman") -> WinRMEndpoint:
    return WinRMEndpoint("127.0.0.1", port, path, "http", "basic", configuration_name)


class Lab:
    """A fake backend behind a WSManEndpoint, reached in process."""

    def __init__(self, role: str, **backend_options: Any) -> None:
        self.backend = FakeBackend(**backend_options)
        self.role = role
        edge = role == "Edge"
        self.configuration = "Microsoft.PowerShell" if edge else "Microsoft.Exchange"
        self.endpoint = WSManEndpoint(
            self.backend, "EDGE01" if edge else "MBX01", path="wsman" if edge else "PowerShell"
        )

    def shell(self) -> ExchangeShell:
        return ExchangeShell(
            self.endpoint.server,
            lab_winrm(self.configuration, path=self.endpoint.path),
            Credential(USER, PASSWORD),
            role=self.role,
            lab=True,
            wsman=connect_in_process(self.endpoint, USER, PASSWORD),
        )

    def statements(self, index: int) -> list[list[str]]:
        return [[call.name for call in statement] for statement in self.backend.calls[index][1]]


@pytest.fixture
def edge() -> Iterator[Lab]:
    lab = Lab("Edge")
    yield lab
    lab.endpoint.close()


@pytest.fixture
def mailbox() -> Iterator[Lab]:
    lab = Lab("Mailbox")
    yield lab
    lab.endpoint.close()


def test_edge_loads_the_snapin_once_per_pool_in_the_first_pipeline(edge: Lab):
    with edge.shell() as shell:
        first = shell.run("Get-ExchangeCertificate")
        shell.run("Get-ExchangeCertificate")
        assert shell.stats.pipelines == 2
    assert len(first) == 1
    assert edge.statements(0) == [["Add-PSSnapin"], ["Get-ExchangeCertificate"]]
    assert edge.statements(1) == [["Get-ExchangeCertificate"]]
    assert edge.endpoint.pipelines == 2  # no separate round trip for the snap-in
    with edge.shell() as shell:  # a new pool loads it again
        shell.run("Get-ExchangeCertificate")
    assert edge.statements(2) == [["Add-PSSnapin"], ["Get-ExchangeCertificate"]]


def test_snapin_already_added_is_not_an_error():
    lab = Lab("Edge", preloaded=True)
    with lab.shell() as shell:
        assert len(shell.run("Get-ExchangeCertificate")) == 1


def test_snapin_missing_is_explained_first():
    lab = Lab("Edge", snapin_installed=False)
    with lab.shell() as shell, pytest.raises(ExchangeCommandError) as info:
        shell.run("Get-ExchangeCertificate")
    first = info.value.errors[0]
    assert first.cmdlet == "Add-PSSnapin"
    assert "not installed" in first.message
    assert "Edge Transport server" in first.message
    assert info.value.errors[-1].terminating


def test_batch_is_one_pipeline_with_outputs_in_order(mailbox: Lab):
    commands = [
        Command("Get-Thing", {"Identity": "a"}),
        Command("Get-ExchangeCertificate"),
        Command("Get-Thing", {"Identity": "b"}),
    ]
    with mailbox.shell() as shell:
        records = shell.run_batch(commands)
        stats = shell.stats
    assert [record.type_names[0] for record in records] == [
        "Contoso.Thing",
        EXCHANGE_CERTIFICATE,
        "Contoso.Thing",
    ]
    assert [records[0]["Id"], records[2]["Id"]] == ["a", "b"]
    assert mailbox.endpoint.pipelines == 1
    assert len(mailbox.backend.calls) == 1
    assert mailbox.statements(0) == [["Get-Thing"], ["Get-ExchangeCertificate"], ["Get-Thing"]]
    assert (stats.pipelines, stats.cmdlets) == (1, 3)
    assert stats.by_cmdlet["Get-Thing"] == 2


def test_a_closed_session_frees_its_pipelines_without_the_cyclic_collector(mailbox: Lab):
    """pypsrp's pipelines and their pool refer to each other: closing drops them, so a fleet
    read's commands and outputs are freed at once, not in a collection stalling every thread."""
    gc.collect()
    gc.disable()
    try:
        with mailbox.shell() as shell:
            shell.run_batch([Command("Get-Thing", {"Identity": "a"}), Command("Warn")])
            pool = shell._pool
            assert pool is not None
            pipelines = [weakref.ref(p) for p in pool.pipelines.values()]
        assert pipelines
        assert all(pipeline() is None for pipeline in pipelines)
    finally:
        gc.enable()


def test_mailbox_shape_sends_cmdlets_only(mailbox: Lab):
    with mailbox.shell() as shell:
        shell.run("Get-ExchangeCertificate")
        shell.run_batch([Command("Get-Thing", {"Identity": "x"}), Command("Warn")])
    calls = [call for _, statements in mailbox.backend.calls for s in statements for call in s]
    assert calls and not any(call.is_script for call in calls)
    assert {configuration for configuration, _ in mailbox.backend.calls} == {"Microsoft.Exchange"}
    assert "Add-PSSnapin" not in [call.name for call in calls]


def test_outputs_are_normalised_over_the_wire(mailbox: Lab):
    with mailbox.shell() as shell:
        (cert,) = shell.run("Get-ExchangeCertificate")
    assert isinstance(cert, PSRecord)
    assert cert.type_names[0] == EXCHANGE_CERTIFICATE
    assert cert["CertificateDomains"] == ["mail.contoso.com", "edge01.contoso.com"]
    assert cert["Services"] == "IMAP, POP, SMTP"
    assert cert["NotAfter"] == dt.datetime(2027, 1, 1, 12, 30, tzinfo=dt.UTC)
    assert cert["RawData"] == b"\x30\x82\x01\x92"


def test_parameters_reach_the_server_with_the_right_types(mailbox: Lab):
    when = dt.datetime(2026, 5, 1, 8, 0, tzinfo=dt.UTC)
    with mailbox.shell() as shell:
        (echo,) = shell.run(
            "Echo", Force=True, Confirm=False, Size=2**40, When=when, Data=b"\x00\x01", Name="x"
        )
    assert echo["Force"] is True and echo["Confirm"] is False
    assert echo["Size"] == 2**40
    assert echo["When"] == when.isoformat()
    assert echo["Data"] == b"\x00\x01"


def test_none_parameter_is_refused_before_sending(mailbox: Lab):
    with mailbox.shell() as shell:
        with pytest.raises(EdgebookError, match="Echo -Force: the value is None"):
            shell.run("Echo", Force=None)
        assert shell.stats.pipelines == 0
    assert mailbox.backend.calls == []


def test_non_terminating_error_raises_with_its_details(mailbox: Lab):
    with mailbox.shell() as shell, pytest.raises(ExchangeCommandError) as info:
        shell.run_batch(
            [Command("Get-Thing", {"Identity": "a"}), Command("Get-Thing", {"Identity": "missing"})]
        )
    error = info.value
    assert error.server == "MBX01"
    assert error.cmdlet == "Get-Thing"
    assert error.category == "ObjectNotFound"
    assert error.fully_qualified_error_id.endswith("Microsoft.Exchange.Get-Thing")
    assert error.target == "missing"
    assert "couldn't be found" in str(error)
    assert not error.errors[0].terminating
    assert [record["Id"] for record in error.result.records] == ["a"]


def test_errors_can_be_returned_explicitly(mailbox: Lab):
    with mailbox.shell() as shell:
        result = shell.run("Get-Thing", Identity="missing", errors="return")
    assert isinstance(result, Result)
    assert result.records == []
    assert [error.target for error in result.errors] == ["missing"]


def test_terminating_error_raises(mailbox: Lab):
    with mailbox.shell() as shell, pytest.raises(ExchangeCommandError) as info:
        shell.run("Get-Nothing")
    (error,) = info.value.errors
    assert error.terminating
    assert error.fully_qualified_error_id == "CommandNotFoundException"
    assert "Get-Nothing" in str(info.value)


def test_warnings_are_kept(mailbox: Lab):
    with mailbox.shell() as shell:
        assert shell.run("Warn") == []
        assert shell.last_warnings == ["The certificate will expire soon."]
        assert shell.run("Warn", errors="return").warnings == ["The certificate will expire soon."]


def test_counters_match_what_the_endpoint_saw(edge: Lab):
    with edge.shell() as shell:
        shell.run("Get-ExchangeCertificate")
        shell.run_batch([Command("Get-ExchangeCertificate"), Command("Warn")])
        stats = shell.stats
    assert stats.server == "EDGE01"
    assert stats.pipelines == edge.endpoint.pipelines == 2
    assert stats.cmdlets == 4  # Add-PSSnapin + 3
    # Create + Receive to open; Command + Receive per pipeline; the first pipeline's Terminate
    # Signal before the second; none for the last (Delete on close ends it).
    assert stats.wsman_requests == 2 + 2 * 2 + 1
    assert edge.endpoint.requests == stats.wsman_requests + 1


def test_one_shell_per_thread_is_enforced(mailbox: Lab):
    mailbox.backend.block = threading.Event()
    with mailbox.shell() as shell:
        worker = threading.Thread(target=shell.run, args=("Get-ExchangeCertificate",))
        worker.start()
        assert mailbox.backend.entered.wait(5)
        try:
            with pytest.raises(EdgebookError, match="another thread"):
                shell.run("Get-ExchangeCertificate")
        finally:
            mailbox.backend.block.set()
            worker.join(5)


def test_wrong_configuration_is_a_connection_error():
    backend = FakeBackend()
    endpoint = WSManEndpoint(backend, "EDGE01", path="wsman")  # Microsoft.PowerShell only
    shell = ExchangeShell(
        "EDGE01",
        lab_winrm("Microsoft.Exchange"),
        Credential(USER, PASSWORD),
        role="Mailbox",
        lab=True,
        wsman=connect_in_process(endpoint, USER, PASSWORD),
    )
    with shell, pytest.raises(ExchangeConnectionError, match="no PowerShell configuration"):
        shell.run("Get-ExchangeCertificate")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_refused_port_is_one_clear_connection_error():
    port = free_port()
    shell = ExchangeShell(
        "EDGE01",
        lab_winrm("Microsoft.PowerShell", port=port),
        Credential(USER, PASSWORD),
        role="Edge",
        lab=True,
        connection_timeout=3,
    )
    with shell, pytest.raises(ExchangeConnectionError) as info:
        shell.run("Get-ExchangeCertificate")
    message = str(info.value)
    assert message.startswith(f"EDGE01 (http://127.0.0.1:{port}/wsman): connection refused")
    assert info.value.server == "EDGE01"


def test_401_is_one_clear_connection_error(edge: Lab):
    running = serve(edge.endpoint)
    try:
        shell = ExchangeShell(
            "EDGE01",
            lab_winrm("Microsoft.PowerShell", port=running.port),
            Credential(USER, "wrong-password"),
            role="Edge",
            lab=True,
        )
        with shell, pytest.raises(ExchangeConnectionError, match=r"authentication failed \(401\)"):
            shell.run("Get-ExchangeCertificate")
    finally:
        running.stop()


def test_a_session_outlives_the_servers_idle_connection_timeout(
    edge: Lab, monkeypatch: pytest.MonkeyPatch
):
    """HTTP.sys closes a connection idle for 120 s (shortened here): a consultant who reads a
    plan before applying it comes back to a closed connection, and the next call reconnects."""
    monkeypatch.setattr(httpserver, "IDLE_CONNECTION_TIMEOUT_S", 0.2)
    accepted: list[object] = []
    process = httpserver._Server.process_request

    def counted(server: Any, request: Any, address: Any) -> None:
        accepted.append(address)
        process(server, request, address)

    monkeypatch.setattr(httpserver._Server, "process_request", counted)
    running = serve(edge.endpoint)
    try:
        shell = ExchangeShell(
            "EDGE01",
            lab_winrm("Microsoft.PowerShell", port=running.port),
            Credential(USER, PASSWORD),
            role="Edge",
            lab=True,
        )
        with shell:
            assert shell.run("Echo", Text="before") != []
            time.sleep(0.6)  # the server has closed the kept connection by now
            (after,) = shell.run("Echo", Text="after")
        assert after["Text"] == "after"
        assert len(accepted) == 2  # one connection closed while idle, one made again
    finally:
        running.stop()


def test_lab_inventory_over_http_with_a_file_secret(edge: Lab, tmp_path: Path):
    running = serve(edge.endpoint)
    try:
        secret = tmp_path / "edge01.pw"
        secret.write_text(PASSWORD + "\n")
        secret.chmod(0o600)
        inventory_file = tmp_path / "lab.yaml"
        inventory_file.write_text(
            "lab: true\n"
            "organisation:\n  name: Lab\n  mailbox_servers:\n"
            "    - {name: MBX01, fqdn: mbx01.lab.test,\n"
            "       credential: {username: admin, password: env:UNUSED}}\n"
            "edges:\n"
            "  - name: EDGE01\n    fqdn: edge01.lab.test\n"
            f"    winrm: {{host: 127.0.0.1, port: {running.port}, scheme: http, auth: basic}}\n"
            f"    credential: {{username: '{USER}', password: 'file:edge01.pw'}}\n"
        )
        inventory = load_inventory(inventory_file)
        with ExchangeShell.for_server(inventory, "edge01") as shell:
            (cert,) = shell.run("Get-ExchangeCertificate")
            assert PASSWORD not in repr(shell)
        assert cert["Thumbprint"].startswith("8A2B")
        assert shell.stats.wsman_requests == edge.endpoint.requests
    finally:
        running.stop()


def test_basic_over_http_is_refused_unless_lab_loopback():
    remote = WinRMEndpoint(
        "edge01.contoso.com", 5985, "wsman", "http", "basic", "Microsoft.PowerShell"
    )
    with pytest.raises(ConfigError, match="over plain http is refused"):
        ExchangeShell("EDGE01", remote, Credential(USER, PASSWORD), role="Edge", lab=True)
    with pytest.raises(ConfigError, match="over plain http is refused"):
        ExchangeShell("EDGE01", lab_winrm("Microsoft.PowerShell"), None, role="Edge", lab=False)


def test_tls_is_verified_by_default(edge: Lab, tmp_path: Path):
    tls = EndpointTls.create(tmp_path)
    running = serve(edge.endpoint, tls=tls.server_context())

    def https(ca_file: Path | None) -> ExchangeShell:
        winrm = WinRMEndpoint(
            "127.0.0.1", running.port, "wsman", "https", "basic", "Microsoft.PowerShell", ca_file
        )
        return ExchangeShell("EDGE01", winrm, Credential(USER, PASSWORD), role="Edge")

    try:
        with (
            https(None) as shell,
            pytest.raises(ExchangeConnectionError, match="TLS certificate verification failed"),
        ):
            shell.run("Get-ExchangeCertificate")
        with https(tls.ca_file) as shell:
            assert len(shell.run("Get-ExchangeCertificate")) == 1
    finally:
        running.stop()


def test_missing_ca_file_is_reported(tmp_path: Path):
    winrm = WinRMEndpoint(
        "127.0.0.1",
        free_port(),
        "wsman",
        "https",
        "ntlm",
        "Microsoft.PowerShell",
        tmp_path / "x.pem",
    )
    with pytest.raises(ConfigError, match=r"winrm\.ca_file .*x\.pem does not exist"):
        ExchangeShell("EDGE01", winrm, Credential(USER, PASSWORD), role="Edge").open()
