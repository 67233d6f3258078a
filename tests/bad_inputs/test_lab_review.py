"""A reviewer's own bad inputs to the lab: scenario files that pass a quick look but cannot be
what they say (a TlsCertificateName that does not parse, a service a role has not, a server FQDN
or certificate install given twice), and control commands whose options contradict each other
or are out of range (fault, send, start --latency-ms).

Each is refused with one line naming the field or option, changing nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edgebook.lab import control, folder
from edgebook.lab.org.store import LabStore
from tests.bad_inputs.corpus import Case, run_case
from tests.bad_inputs.test_lab_process import run, snapshot
from tests.bad_inputs.test_scenarios import GOOD, S, lab, variant

EDGE = "{name: EDGE01, role: Edge}"
MAILBOX = "{name: EX01, role: Mailbox}"
INSTALL = "    lab_files: [renewal/EDGE01.pfx]\n"


def edge(extra: str) -> str:
    return variant(EDGE, "{name: EDGE01, role: Edge, " + extra + "}")


def connector(extra: str) -> str:
    return GOOD + "send_connectors:\n  - {name: Out, address_spaces: [x], " + extra + "}\n"


SCENARIOS = [
    lab(
        "receive-tls-name-garbage",
        edge("receive_connector: {tls_certificate_name: garbage}"),
        "servers[1].receive_connector.tls_certificate_name: found 'garbage'",
        "<I>CN=Issuing CA<S>CN=mail.contoso.com",
    ),
    lab(
        "receive-tls-id-and-name",
        edge("receive_connector: {tls_certificate: pub, tls_certificate_name: '<I>CN=a<S>CN=b'}"),
        "servers[1].receive_connector.tls_certificate_name",
        "give one of them",
    ),
    lab(
        "receive-tls-id-unknown",
        edge("receive_connector: {tls_certificate: nope}"),
        "servers[1].receive_connector.tls_certificate: found 'nope'",
        "a certificate of this scenario (pub)",
    ),
    lab(
        "capability-not-text",
        edge("receive_connector: {tls_domain_capabilities: [x.com:AcceptOorgProtocol, 7]}"),
        "receive_connector.tls_domain_capabilities[1]: found 7, expected a non-empty string",
    ),
    lab(
        "send-tls-name-garbage",
        connector("tls_certificate_name: 'CN=mail.contoso.com'"),
        "send_connectors[0].tls_certificate_name",
        "<I>",
    ),
    lab(
        "send-tls-name-parts-not-names",
        connector("tls_certificate_name: '<I>garbage<S>CN=mail.contoso.com'"),
        "send_connectors[0].tls_certificate_name: found '<I>garbage<S>CN=mail.contoso.com'",
    ),
    lab(
        "send-tls-id-unknown",
        connector("tls_certificate: nope"),
        "send_connectors[0].tls_certificate: found 'nope'",
        "(pub)",
    ),
    lab(
        "send-tls-auth-level",
        connector("tls_auth_level: Strict"),
        "send_connectors[0].tls_auth_level: found 'Strict'",
        "EncryptionOnly, CertificateValidation, DomainValidation",
    ),
    lab("send-fqdn", connector("fqdn: 'a b'"), "send_connectors[0].fqdn: found 'a b'"),
    lab("send-tls-domain", connector("tls_domain: 'a b'"), "send_connectors[0].tls_domain:"),
    lab(
        "server-fqdn-path",
        edge("fqdn: 'bad fqdn!'"),
        "servers[1].fqdn: found 'bad fqdn!', expected a DNS name",
    ),
    lab(
        "server-fqdn-twice",
        edge("fqdn: EX01.contoso.com"),
        "servers[1].fqdn",
        "a unique server FQDN (servers[0].fqdn has it already)",
    ),
    lab(
        "mailbox-runs-no-adam",
        variant(MAILBOX, "{name: EX01, role: Mailbox, services: {ADAM_MSExchange: Stopped}}"),
        "servers[0].services.ADAM_MSExchange",
        "one of the services of Mailbox servers: MSExchangeTransport, MSExchangeEdgeSync",
    ),
    lab(
        "edge-runs-no-edgesync",
        edge("services: {MSExchangeEdgeSync: Running}"),
        "servers[1].services.MSExchangeEdgeSync",
        "MSExchangeTransport, ADAM_MSExchange",
    ),
    lab(
        "installed-twice-on-one-server",
        variant(INSTALL, "    install: [{server: EDGE01}, {server: EDGE01}]\n" + INSTALL),
        "certificates[0].install[1].server: found 'EDGE01'",
        "installed once per server",
    ),
    lab(
        "two-defaults-on-one-server",
        variant(INSTALL, "    install: [{server: EDGE01, default: true}]\n" + INSTALL)
        + "  - {id: two, subject: CN=two, valid: {from_days: 0, to_days: 9}, "
        "install: [{server: EDGE01, default: true}]}\n",
        "certificates[1].install[0].server: found 'EDGE01'",
        "one default per server) (certificates[0].install[0].server has it already)",
    ),
    lab(
        "queue-not-replicated",
        edge("queues: {Outbound: 3}"),
        "servers[1].queues.Outbound: found 'Outbound'",
        "replicated to EDGE01 (none)",
    ),
]


@pytest.mark.parametrize("case", SCENARIOS, ids=lambda c: c.id)
def test_bad_scenarios(case: Case, tmp_path, monkeypatch, capsys):
    run_case(case, tmp_path, monkeypatch, capsys)


def test_a_connector_may_name_its_certificate_by_tls_certificate_name(tmp_path):
    """The refusals above are about the values, not the keys: good values still load."""
    from edgebook.lab.org.scenarios import load_scenario

    path = tmp_path / S
    path.write_text(
        edge("fqdn: edge01.contoso.com, services: {ADAM_MSExchange: Stopped}")
        + "send_connectors:\n  - {name: Out, address_spaces: [x], tls_auth_level: "
        "DomainValidation, tls_certificate_name: '<I>CN=Lab CA<S>CN=mail.contoso.com'}\n"
    )
    scenario = load_scenario(path)
    assert scenario.send_connectors[0].values["tls_certificate_name"].startswith("<I>CN=Lab CA")


TWO_EDGES = variant(
    EDGE,
    "{name: EDGE01, role: Edge}\n"
    "  - {name: EDGE02, role: Edge, services: {MSExchangeTransport: Stopped}}",
)


@pytest.fixture(scope="module")
def running(tmp_path_factory) -> Iterator[Path]:
    """A running lab: EX01, EDGE01, and EDGE02 whose transport is stopped."""
    work = tmp_path_factory.mktemp("review")
    (work / S).write_text(TWO_EDGES)
    directory = work / "lab"
    control.start(directory, work / S)
    yield directory
    control.stop(directory)


def _faults(directory: Path) -> tuple[list, list]:
    org = LabStore(directory).read()
    return org.faults, org.service_failures


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ("fault", "--clear", "--server", "EDGE01"),
            ("--clear removes every injected fault and takes no --server",),
        ),
        (("fault", "--clear", "--nth", "2"), ("takes no --nth",)),
        (
            ("fault", "--service", "MSExchangeTransport", "--server", "EDGE01", "--nth", "2"),
            ("--nth and --message apply to --cmdlet only",),
        ),
        (("fault", "--cmdlet", "Get-Queue", "--nth", "10000001"), ("--nth must be from 1",)),
        (
            ("fault", "--cmdlet", "Get-Queue", "--server", "EDGE9"),
            ("--server 'EDGE9'", "its servers: EX01, EDGE01, EDGE02"),
        ),
        (
            ("fault", "--service", "ADAM_MSExchange", "--server", "EX01"),
            ("EX01 is a Mailbox server", "runs no ADAM_MSExchange", "(EDGE01, EDGE02)"),
        ),
        (("send", "--edge", "EDGE01", "--count", "1001"), ("--count must be from 1 to 1000",)),
        (("send", "--edge", "EDGE01", "--to", "not an address"), ("--to must be one mail",)),
        (("send", "--edge", "EDGE01", "--to", ""), ("--to must be one mail",)),
        (("send", "--edge", "EDGE01", "--to", "müller@contoso.com"), ("in ASCII",)),
        (("fault", "--cmdlet", "Get-Queue", "--message", "x" * 70000), ("at most 2000",)),
        (
            ("send", "--edge", "EDGE02"),
            ("EDGE02", "refused the mail: 421 4.3.2", "is MSExchangeTransport running on EDGE02"),
        ),
    ],
)
def test_bad_control_commands_change_nothing(running, capsys, args, says):
    description = control.running_description(running)
    before = control.status(running)
    run(capsys, "lab", args[0], "--dir", running, *args[1:], says=says)
    assert control.running_description(running) == description
    assert control.status(running)["servers"] == before["servers"]  # no mail was accepted
    assert _faults(running) == ([], [])


def test_a_second_daemon_started_beside_a_running_lab_says_so(running):
    with pytest.raises(control.LabError, match="a lab already runs in") as caught:
        control._spawn(running.resolve(), 0)
    assert "failed to start" not in str(caught.value)
    assert control.running_description(running) is not None


@pytest.mark.parametrize("latency", ["-1", "10001", "99999999999"])
def test_latency_out_of_range_is_refused_before_the_folder_exists(tmp_path, capsys, latency):
    directory = tmp_path / "lab"
    run(
        capsys,
        *("lab", "start", "--dir", directory, "--latency-ms", latency),
        says=("--latency-ms must be from 0 to 10000", f"not {latency}"),
    )
    assert not directory.exists()


@pytest.fixture
def stopped(tmp_path, monkeypatch) -> Path:
    """A stopped lab of TWO_EDGES."""
    monkeypatch.delenv(folder.PASSWORD_ENV, raising=False)
    (tmp_path / S).write_text(TWO_EDGES)
    directory = tmp_path / "lab"
    control.create(directory, tmp_path / S)
    return directory


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("fault", "--cmdlet", "Get-Queue", "--server", "NOPE"), ("its servers: EX01",)),
        (("fault", "--service", "ADAM_MSExchange", "--server", "ex01"), ("runs no ADAM",)),
        (("send", "--edge", "EDGE01"), ("is not running; start it first",)),
    ],
    ids=["fault-server", "adam-on-mailbox", "send-stopped-lab"],
)
def test_a_stopped_lab_refuses_alike_and_keeps_its_state(stopped, capsys, args, says):
    before = snapshot(stopped)
    run(capsys, "lab", args[0], "--dir", stopped, *args[1:], says=says)
    assert snapshot(stopped) == before


def test_a_lab_built_from_a_file_is_reset_by_naming_the_file(stopped, capsys):
    before = snapshot(stopped)
    run(
        capsys,
        *("lab", "reset", "--dir", stopped),
        says=("built from the scenario file s.yaml", "--scenario PATH/s.yaml"),
    )
    assert snapshot(stopped) == before
    run(capsys, "lab", "reset", "--dir", stopped, "--scenario", stopped.parent / S, code=0)


def test_starting_a_stopped_lab_with_its_own_scenario_file_is_not_a_switch(stopped, capsys):
    try:
        run(capsys, "lab", "start", "--dir", stopped, "--scenario", stopped.parent / S, code=0)
    finally:
        control.stop(stopped)
    other = stopped.parent / "other.yaml"
    other.write_text(TWO_EDGES)
    run(
        capsys,
        *("lab", "start", "--dir", stopped, "--scenario", other),
        says=("holds the scenario 's'", "edgebook lab reset"),
    )


def test_a_scenario_that_cannot_be_built_leaves_an_empty_folder_empty(tmp_path, capsys):
    (tmp_path / S).write_text(edge("queues: {Outbound: 3}"))
    directory = tmp_path / "lab"
    directory.mkdir()
    run(capsys, "lab", "start", "--dir", directory, "--scenario", tmp_path / S, says=("queues",))
    assert list(directory.iterdir()) == []


@pytest.mark.parametrize("command", ["start", "reset"])
def test_an_empty_scenario_is_refused_not_taken_as_the_default(stopped, capsys, command):
    directory = stopped if command == "reset" else stopped.parent / "new"
    before = snapshot(stopped.parent)
    run(
        capsys,
        *("lab", command, "--dir", directory, "--scenario", " "),
        says=("--scenario is empty", "edgebook lab scenarios"),
    )
    assert snapshot(stopped.parent) == before
