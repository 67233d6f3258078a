"""Phase 02 against the seed-incident lab over the real pypsrp client (lab daemon): plan, apply
with the approved hash, rollback, and bad inputs refused with the lab unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from edgebook import certs
from edgebook.change.approval import NotApproved
from edgebook.change.journal import Journal
from edgebook.change.lock import LOCK_PATH, EdgeLock, LockHeld
from edgebook.config import load_inventory
from edgebook.evidence import layout
from edgebook.exchange.connect import resolve_credentials, shell_factory
from edgebook.exchange.secure import SecureText
from edgebook.lab import control
from edgebook.lab.folder import lab_password
from edgebook.lab.org.store import LabStore
from edgebook.phases import prepare
from edgebook.phases.prepare_certificate import PrepareRefused
from tests.support.certs import make_leaf, write_pfx

CHANGE = "CHG-0042"


def start(directory: Path):
    control.start(directory)
    return load_inventory(directory / "inventory.yaml")


def ex01_thumbprints(directory: Path) -> set[str]:
    return {c.thumbprint for c in LabStore(directory).read().server("EX01").certificates}


def renewal(directory: Path) -> tuple[certs.CertificateBundle, str]:
    password, _ = lab_password(directory)
    return certs.load_certificates(directory / "renewal" / "EDGE01.pfx", password), password


def test_plan_then_apply_stages_the_renewal_on_a_mailbox_server_and_rolls_back(lab):
    inventory = start(lab)
    before = ex01_thumbprints(lab)
    planned = prepare.prepare(inventory, "EDGE01", CHANGE)
    bundle, _ = renewal(lab)
    new = certs.thumbprint(bundle.leaf)
    assert planned.candidate.thumbprint == new
    assert planned.assessment.phase03 == "certificate-only"
    assert [s.id for s in planned.plan.steps] == ["stage-ex01"]
    assert planned.plan_path.is_file()
    assert any("F2:" in note for note in planned.plan.notes)  # same subject as the old one
    assert ex01_thumbprints(lab) == before  # planning changes nothing
    with pytest.raises(NotApproved):
        prepare.apply(planned, "")
    with pytest.raises(NotApproved, match="no plan with hash"):
        prepare.apply(planned, "f" * 64)
    assert (
        ex01_thumbprints(lab) == before
        and not Journal(layout.journal_path(CHANGE, "EDGE01")).path.exists()
    )
    again = prepare.prepare(inventory, "EDGE01", CHANGE)
    assert again.plan.sha256 == planned.plan.sha256  # the same world gives the same hash
    result = prepare.apply(again, planned.plan.sha256)
    assert result.completed, result.error
    org = LabStore(lab).read()
    staged = org.server("EX01").certificate(new)
    assert staged is not None and staged.services == 0  # no service: F9 only
    assert org.server("EX01").internal_transport_thumbprint != new  # never its default (F1)
    assert LOCK_PATH.casefold() not in org.server("EDGE01").files  # lock released
    journal = Journal(layout.journal_path(CHANGE, "EDGE01")).read()
    events = [r["event"] for r in journal.records]
    assert events == [
        "lock-acquired",
        "apply-started",
        "step-started",
        "step-done",
        "apply-completed",
        "lock-released",
    ]
    assert lab_password(lab)[0] not in journal_text(lab)
    # the world moved on (the staging is done): the old approval still resumes, skipping
    rerun = prepare.apply(prepare.prepare(inventory, "EDGE01", CHANGE), planned.plan.sha256)
    assert [o.status for o in rerun.outcomes] == ["skipped"]
    undone = prepare.rollback_change(planned)
    assert undone.completed, undone.error
    assert ex01_thumbprints(lab) == before


def journal_text(directory: Path) -> str:
    return layout.journal_path(CHANGE, "EDGE01").read_text()


def test_a_changed_world_refuses_the_approved_plan_and_says_what_differs(lab):
    inventory = start(lab)
    planned = prepare.prepare(inventory, "EDGE01", CHANGE)
    servers = [inventory.server("EX01")]
    factory = shell_factory(resolve_credentials(servers))
    with factory(inventory, "EX01") as shell:  # someone changes the hybrid connector meanwhile
        shell.run("Set-SendConnector", Identity="Outbound to Office 365", Fqdn="mail.contoso.com")
        shell.run(
            "Set-SendConnector",
            Identity="Outbound to Office 365",
            SourceTransportServers={"Remove": ["EDGE02"]},
        )
    fresh = prepare.prepare(inventory, "EDGE01", CHANGE)
    before = ex01_thumbprints(lab)
    with pytest.raises(NotApproved) as caught:
        prepare.apply(fresh, planned.plan.sha256)
    assert "facts organisation.send_connectors" in str(caught.value)
    assert ex01_thumbprints(lab) == before


def test_a_second_operator_is_refused_while_the_edge_is_locked(lab):
    inventory = start(lab)
    planned = prepare.prepare(inventory, "EDGE01", CHANGE)
    factory = shell_factory(resolve_credentials([inventory.server("EDGE01")]))
    other = Journal(Path(layout.outputs_root()) / "other.jsonl", who="bob@elsewhere")
    with factory(inventory, "EDGE01") as shell:
        EdgeLock(shell, "CHG-OTHER", other).acquire()
    with pytest.raises(LockHeld, match="held by bob@elsewhere for change CHG-OTHER"):
        prepare.apply(planned, planned.plan.sha256)
    assert certs.thumbprint(renewal(lab)[0].leaf) not in ex01_thumbprints(lab)


def _pfx_file(path: Path, cert, key, chain, password: str) -> Path:
    data = pkcs12.serialize_key_and_certificates(
        b"t", key, cert, chain or None, serialization.BestAvailableEncryption(password.encode())
    )
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "case, expected",
    [
        ("wrong-password", "wrong password for the PKCS#12 file"),
        ("expired", "cert-expired"),
        ("wrong-fqdn", "san-missing-fqdn"),
        ("no-key", "holds no private key"),
        ("missing-intermediate", "chain-incomplete"),
        ("mailbox-default", "edge-hub-clash (F1)"),
    ],
)
def test_bad_inputs_are_refused_with_the_lab_unchanged(lab, tmp_path, monkeypatch, case, expected):
    bundle, password = renewal(lab)
    monkeypatch.setenv("PFX_PW", password)
    pfx, reference = str(lab / "renewal" / "EDGE01.pfx"), "env:PFX_PW"
    if case == "wrong-password":
        monkeypatch.setenv("PFX_PW", "not-the-password")
    elif case in ("expired", "wrong-fqdn"):
        names = ["hybrid.contoso.com"] if case == "expired" else ["mail.fabrikam.com"]
        days = {"expired": dict(days_valid=10, not_before_offset=-40)}.get(case, {})
        leaf = make_leaf(
            None, certs.parse_windows_name("CN=" + names[0]), names, key_type="rsa2048", **days
        )
        pfx = str(write_pfx(tmp_path / "bad.pfx", leaf, [], password))
    elif case == "no-key":
        data = pkcs12.serialize_key_and_certificates(
            None,
            None,
            bundle.leaf,
            bundle.chain,
            serialization.BestAvailableEncryption(password.encode()),
        )
        (tmp_path / "bad.pfx").write_bytes(data)
        pfx = str(tmp_path / "bad.pfx")
    elif case == "missing-intermediate":
        pfx = str(_pfx_file(tmp_path / "bad.pfx", bundle.leaf, bundle.private_key, [], password))
    inventory = start(lab)
    if case == "mailbox-default":  # someone made the renewal EX01's default (F12 on a Mailbox)
        factory = shell_factory(resolve_credentials([inventory.server("EX01")]))
        with factory(inventory, "EX01") as shell:
            data = (lab / "renewal" / "EDGE01.pfx").read_bytes()
            shell.run("Import-ExchangeCertificate", FileData=data, Password=SecureText(password))
            shell.run(
                "Enable-ExchangeCertificate",
                Thumbprint=certs.thumbprint(bundle.leaf),
                Services="SMTP",
                Force=True,
            )
    state = LabStore(lab).read()
    snapshot = json.dumps(
        {s.name: sorted(c.thumbprint for c in s.certificates) for s in state.servers}
    )
    with pytest.raises(PrepareRefused, match=expected.replace("(", r"\(").replace(")", r"\)")):
        prepare.prepare(inventory, "EDGE01", CHANGE, pfx=pfx, pfx_password=reference)
    after = LabStore(lab).read()
    assert (
        json.dumps({s.name: sorted(c.thumbprint for c in s.certificates) for s in after.servers})
        == snapshot
    )
    assert not layout.journal_path(CHANGE, "EDGE01").exists()
