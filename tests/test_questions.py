"""Exchange's questions over PSRP: the lab asks through real host calls, edgebook's shell answers
only the questions a call expects (unmodified pypsrp client, in process and over the daemon)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from pypsrp.powershell import PowerShell, RunspacePool

from edgebook.certs import thumbprint
from edgebook.config import WinRMEndpoint, load_inventory
from edgebook.exchange.host import QuestionHost
from edgebook.exchange.questions import ExpectedQuestion, UnexpectedQuestion
from edgebook.exchange.shell import ExchangeShell
from edgebook.exchange.wire_types import EXCHANGE_SNAPIN
from edgebook.lab import control
from edgebook.lab.backend import LabBackend
from edgebook.lab.org import certstore
from edgebook.lab.org.store import LabStore
from edgebook.lab.winrm.inprocess import connect_in_process
from edgebook.lab.winrm.wsman import WSManEndpoint
from tests.support.lab import PASSWORD, lab_copy

WINRM = WinRMEndpoint("127.0.0.1", 5985, "wsman", "http", "basic", "Microsoft.PowerShell")
OVERWRITE = "Overwrite the existing default SMTP certificate?"
KEEP_DEFAULT = ExpectedQuestion(OVERWRITE, "No", "keep the EdgeSync certificate (F12)")
CHOICES = ("Yes", "Yes to All", "No", "No to All")
NOT_INTERACTIVE = (
    "A command that prompts the user failed because the host program or the command type does "
    "not support user interaction. The host was attempting to request confirmation with the "
    "following message: "
)
SUBSCRIPTION = r"C:\temp\EdgeSubscriptionInfo.xml"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[LabStore, WSManEndpoint]]:
    store = lab_copy("healthy", tmp_path / "lab")
    endpoint = WSManEndpoint(LabBackend(store), "EDGE01", path="wsman")
    yield store, endpoint
    endpoint.close()


@pytest.fixture
def shell(lab: tuple[LabStore, WSManEndpoint]) -> Iterator[ExchangeShell]:
    wsman = connect_in_process(lab[1], "EDGE01\\Administrator", PASSWORD)
    with ExchangeShell("EDGE01", WINRM, None, role="Edge", lab=True, wsman=wsman) as shell:
        yield shell


def edge(store: LabStore) -> Any:
    return store.read().server("EDGE01")


def new_certificate(shell: ExchangeShell) -> str:
    """A self-signed certificate enabled for no service (New- asks nothing then)."""
    (cert,) = shell.run("New-ExchangeCertificate", Services="None", SubjectName="CN=edge01.new")
    return thumbprint(x509.load_der_x509_certificate(bytes(cert["RawData"])))


def test_no_keeps_the_default_and_the_answer_is_recorded(lab, shell):
    store, _ = lab
    default = edge(store).internal_transport_thumbprint
    new = new_certificate(shell)
    result = shell.run(
        "Enable-ExchangeCertificate",
        Thumbprint=new,
        Services="SMTP",
        errors="return",
        questions=[KEEP_DEFAULT],
    )
    assert result.errors == []
    assert edge(store).internal_transport_thumbprint == default
    assert edge(store).certificate(new).services & certstore.SMTP  # enabled all the same
    (answer,) = result.answers
    assert answer.server == "EDGE01" and answer.caption == "Confirm"
    assert answer.message.startswith(f"{OVERWRITE}\n\nCurrent certificate: '{default}' (expires ")
    assert f"Replace it with certificate: '{new}' (expires " in answer.message
    assert answer.choices == CHOICES and answer.answer == "No" and answer.expected
    assert shell.answers == [answer]


def test_yes_replaces_the_default(lab, shell):
    store, _ = lab
    new = new_certificate(shell)
    replace = ExpectedQuestion("default SMTP certificate", "&yes", "a new EdgeSync certificate")
    shell.run("Enable-ExchangeCertificate", Thumbprint=new, Services="SMTP", questions=[replace])
    assert edge(store).internal_transport_thumbprint == new
    assert [a.answer for a in shell.answers] == ["Yes"]


def test_an_unexpected_question_is_refused_and_the_cmdlet_does_not_act(lab, shell):
    store, _ = lab
    default = edge(store).internal_transport_thumbprint
    new = new_certificate(shell)
    with pytest.raises(UnexpectedQuestion, match="EDGE01 asked a question this step does not"):
        shell.run("Enable-ExchangeCertificate", Thumbprint=new, Services="SMTP")
    assert edge(store).internal_transport_thumbprint == default
    other = ExpectedQuestion("Are you sure", "Yes", "another question")
    result = shell.run(
        "Enable-ExchangeCertificate",
        Thumbprint=new,
        Services="SMTP",
        errors="return",
        questions=[other],
    )
    assert edge(store).internal_transport_thumbprint == default
    (error,) = result.errors
    assert "edgebook refused to answer this question" in error.message
    (answer,) = result.answers
    assert answer.message.startswith(OVERWRITE) and answer.answer == "" and not answer.expected
    assert [a.expected for a in shell.answers] == [False, False]
    # the shell stays usable
    assert shell.run("Get-ExchangeCertificate", Thumbprint=new)


def test_an_answer_that_is_not_offered_is_unexpected(lab, shell):
    store, _ = lab
    default = edge(store).internal_transport_thumbprint
    new = new_certificate(shell)
    maybe = ExpectedQuestion(OVERWRITE, "Maybe", "no such choice")
    with pytest.raises(UnexpectedQuestion) as raised:
        shell.run("Enable-ExchangeCertificate", Thumbprint=new, Services="SMTP", questions=[maybe])
    assert raised.value.question.choices == CHOICES
    assert edge(store).internal_transport_thumbprint == default


def test_force_answers_yes_and_confirm_false_does_not_answer_f12(lab, shell):
    store, _ = lab
    new = new_certificate(shell)
    with pytest.raises(UnexpectedQuestion):
        shell.run("Enable-ExchangeCertificate", Thumbprint=new, Services="SMTP", Confirm=False)
    shell.run("Enable-ExchangeCertificate", Thumbprint=new, Services="SMTP", Force=True)
    assert edge(store).internal_transport_thumbprint == new
    assert len(shell.answers) == 1  # -Force: no question asked


def test_remove_exchange_certificate_asks_unless_confirm_false(lab, shell):
    store, _ = lab
    new = new_certificate(shell)
    keep = ExpectedQuestion(new, "No", "not yet")
    shell.run("Remove-ExchangeCertificate", Thumbprint=new, questions=[keep])
    assert edge(store).certificate(new) is not None
    (answer,) = shell.answers
    assert answer.message.startswith("Are you sure you want to perform this action?\n")
    shell.run("Remove-ExchangeCertificate", Thumbprint=new, Confirm=False)
    assert edge(store).certificate(new) is None
    assert len(shell.answers) == 1


def test_new_edge_subscription_on_the_edge_asks_unless_force(lab, shell):
    store, _ = lab
    subscribe = ExpectedQuestion("Edge Subscription", "Yes", "resubscribe")
    decline = ExpectedQuestion("Edge Subscription", "No", "not now")
    shell.run("New-EdgeSubscription", FileName=SUBSCRIPTION, questions=[decline])
    assert not edge(store).files
    shell.run("New-EdgeSubscription", FileName=SUBSCRIPTION, questions=[subscribe])
    assert len(edge(store).files) == 1
    assert '"1440" minutes' in shell.answers[-1].message
    shell.run("New-EdgeSubscription", FileName=SUBSCRIPTION, Force=True)
    assert len(shell.answers) == 2


def test_remove_edge_subscription_on_the_edge_asks_twice_without_force(lab, shell):
    store, _ = lab
    assert edge(store).replica is not None
    with pytest.raises(UnexpectedQuestion, match="recipients"):
        shell.run("Remove-EdgeSubscription", Identity="EDGE01", Confirm=False)
    assert edge(store).replica is None  # the configuration went before the second question
    shell.run("Remove-EdgeSubscription", Identity="EDGE01", Confirm=False, Force=True)
    assert len(shell.answers) == 1


def test_a_client_without_host_ui_gets_powershells_error(lab):
    """pypsrp's default (no PSHost): the server has no UI to ask through."""
    store, endpoint = lab
    default = edge(store).internal_transport_thumbprint
    wsman = connect_in_process(endpoint, "EDGE01\\Administrator", PASSWORD)
    with RunspacePool(wsman) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Add-PSSnapin").add_parameter("Name", EXCHANGE_SNAPIN).add_statement()
        ps.add_cmdlet("New-ExchangeCertificate").add_parameter("Services", "None")
        (cert,) = ps.invoke()
        new = thumbprint(x509.load_der_x509_certificate(cert.adapted_properties["RawData"]))
        ps = PowerShell(pool)
        ps.add_cmdlet("Enable-ExchangeCertificate").add_parameter("Thumbprint", new)
        ps.add_parameter("Services", "SMTP")
        ps.invoke()
    assert ps.had_errors
    (error,) = ps.streams.error
    assert str(error).startswith(
        f"{NOT_INTERACTIVE}{OVERWRITE}\n\nCurrent certificate: '{default}'"
    )
    assert error.fq_error.split(" ")[-1].startswith("HostFunctionNotImplemented,")
    assert edge(store).internal_transport_thumbprint == default


def test_the_host_matches_labels_without_accelerators():
    host = QuestionHost("EDGE01")
    host.expected = (ExpectedQuestion("overwrite", "yes to all", "why"),)
    choices = [_choice(label) for label in ("&Yes", "Yes to &All", "&No", "No to A&ll")]
    assert host.choose("Confirm", "Overwrite the existing default?", choices) == 1
    assert host.answers[0].answer == "Yes to All"


def _choice(label: str) -> Any:
    from pypsrp.complex_objects import GenericComplexObject

    choice = GenericComplexObject()
    choice.extended_properties = {"label": label, "helpMessage": ""}
    return choice


def test_questions_over_the_daemon(tmp_path: Path):
    directory = tmp_path / "lab"
    control.start(directory, "healthy")
    try:
        inventory = load_inventory(directory / "inventory.yaml")
        with ExchangeShell.for_server(inventory, "EDGE01") as shell:
            new = new_certificate(shell)
            default = LabStore(directory).read().server("EDGE01").internal_transport_thumbprint
            shell.run(
                "Enable-ExchangeCertificate",
                Thumbprint=new,
                Services="SMTP",
                questions=[KEEP_DEFAULT],
            )
            state = LabStore(directory).read().server("EDGE01")
            assert state.internal_transport_thumbprint == default
            assert [(a.answer, a.expected) for a in shell.answers] == [("No", True)]
            with pytest.raises(UnexpectedQuestion):
                shell.run("Remove-ExchangeCertificate", Thumbprint=new)
            assert LabStore(directory).read().server("EDGE01").certificate(new) is not None
    finally:
        control.stop(directory)
