"""Phase 04 against the seed-incident lab over the real pypsrp client: phase 02 applied through the
engine, phase 03's certificate-only work done on the lab, then the verdict; hybrid settings
broken on purpose are planned, applied with the approved hash and rolled back."""

from __future__ import annotations

import pytest

from edgebook.change.approval import NotApproved
from edgebook.config import load_inventory
from edgebook.errors import ConfigError
from edgebook.evidence import layout
from edgebook.lab import control
from edgebook.lab.org.store import LabStore
from edgebook.phases import prepare, verify, verify_checks
from edgebook.phases.verify import VerifyRefused
from tests.support.lab import Lab
from tests.support.verify import HYBRID, phases_02_and_03, receive_identity

pytestmark = pytest.mark.timeout(600)  # two lab starts and phase 02 per test

CHANGE = "CHG-0404"


def by_check(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {row["check"]: row for row in rows}


def test_after_phases_02_and_03_every_check_passes(lab):
    thumbprint = phases_02_and_03(lab, CHANGE)
    control.start(lab)
    inventory = load_inventory(lab / "inventory.yaml")
    verification = verify.plan_verification(inventory, "EDGE01", CHANGE)
    assert verification.certificate["thumbprint"] == thumbprint  # from phase 02's journal
    assert verification.plan.steps == ()
    assert verification.plan_path.is_file()
    result = verify.apply(verification, verification.plan.sha256)
    assert result.completed, result.error
    rows = verify_checks.check(verification, watch_timeout=30)
    failed = [row for row in rows if row["verdict"] == "fail"]
    assert not failed, failed
    checks = by_check(rows)
    smtp = next(r for name, r in checks.items() if name.startswith("SMTP 25 serves"))
    assert smtp["seen"] == thumbprint
    messages = [r for name, r in checks.items() if name.startswith("test message")]
    assert len(messages) == 2 and all("left EDGE01" in r["seen"] for r in messages)
    assert checks["EdgeSync (Test-EdgeSynchronization)"]["seen"] == "Normal"
    # EDGE02 still has the old certificate: its turn has not come (F18), pending, not failed
    rolling = [r for r in rows if r["verdict"] == "pending"]
    assert len(rolling) == 1 and "EDGE02" in rolling[0]["seen"]
    assert verify_checks.passed(rows)


def test_missing_hybrid_settings_are_planned_applied_and_rolled_back(lab):
    thumbprint = phases_02_and_03(lab, CHANGE)
    backend = Lab(LabStore(lab))
    backend.ok(
        "EDGE01",
        "Set-ReceiveConnector",
        receive_identity("EDGE01"),
        TlsDomainCapabilities=[],
        Fqdn="smtp.fabrikam.com",
    )
    backend.ok(
        "EX01",
        "Set-SendConnector",
        HYBRID,
        TlsAuthLevel="EncryptionOnly",
        TlsDomain="contoso.com",
        CloudServicesMailEnabled=False,
    )
    control.start(lab)
    inventory = load_inventory(lab / "inventory.yaml")
    verification = verify.plan_verification(
        inventory, "EDGE01", CHANGE, certificate_thumbprint=thumbprint.lower()
    )
    steps = {s.id: s for s in verification.plan.steps}
    assert set(steps) == {"hybrid-receive-edge01", "hybrid-send-outbound-to-office-365"}
    assert steps["hybrid-send-outbound-to-office-365"].server == "EX01"
    text = verification.plan.text()
    assert "-TlsAuthLevel DomainValidation" in text and "-CloudServicesMailEnabled $true" in text
    assert "-TlsDomain 'mail.protection.outlook.com'" in text and "RequireTLS" not in text, text
    assert "-Fqdn 'hybrid.contoso.com'" in text and "smtp.fabrikam.com" not in text, text
    before = verify_checks.check(verification, test_messages=False)
    assert {r["check"] for r in before if r["verdict"] == "fail"} >= {
        f"{HYBRID} TlsDomain",
        f"{HYBRID} TlsAuthLevel",
        r"EDGE01\Default internal receive connector EDGE01 Fqdn",
    }
    with pytest.raises(NotApproved):
        verify.apply(verification, "")
    result = verify.apply(verification, verification.plan.sha256)
    assert result.completed, result.error
    after = by_check(verify_checks.check(verification, test_messages=False))
    for name in ("TlsDomain", "TlsAuthLevel", "CloudServicesMailEnabled"):
        assert after[f"{HYBRID} {name}"]["verdict"] == "ok"
    assert after[r"EDGE01\Default internal receive connector EDGE01 Fqdn"]["seen"] == (
        "hybrid.contoso.com"
    )
    undone = verify.rollback_change(verification)  # the whole change on EDGE01, newest first
    statuses = {o.step: o.status for o in undone.outcomes}
    assert statuses["hybrid-send-outbound-to-office-365"] == "rolled-back", undone.rows()
    assert statuses["hybrid-receive-edge01"] == "rolled-back", undone.rows()
    # phase 02's staging comes next; phase 03's work (done here by hand, not journalled)
    # still names that certificate on the connector, so Exchange refuses and rollback stops
    assert not undone.completed and "stage-ex01" in undone.error
    rolled = by_check(verify_checks.check(verification, test_messages=False))
    assert rolled[f"{HYBRID} TlsAuthLevel"]["seen"] == "EncryptionOnly"
    assert rolled[f"{HYBRID} TlsDomain"]["seen"] == "contoso.com"
    assert rolled[f"{HYBRID} CloudServicesMailEnabled"]["seen"] == "False"
    assert rolled[r"EDGE01\Default internal receive connector EDGE01 Fqdn"]["seen"] == (
        "smtp.fabrikam.com"
    )


def test_refused_before_phases_02_and_03(lab):
    control.start(lab)
    inventory = load_inventory(lab / "inventory.yaml")
    with pytest.raises(VerifyRefused, match="run 02-prepare-certificate first"):
        verify.plan_verification(inventory, "EDGE01", "CHG-EMPTY")
    with pytest.raises(ConfigError, match="certificate_thumbprint 'xyz'"):
        verify.plan_verification(inventory, "EDGE01", CHANGE, certificate_thumbprint="xyz")
    planned = prepare.prepare(inventory, "EDGE01", CHANGE)  # phase 02 planned, 03 not run
    with pytest.raises(VerifyRefused, match="run 03-resubscribe"):
        verify.plan_verification(inventory, "EDGE01", CHANGE)
    assert not list((layout.edge_dir(CHANGE, "EDGE01") / "plans").glob("*.json"))[1:]
    assert planned.plan.phase == "prepare"
