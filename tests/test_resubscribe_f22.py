"""F22 in phase 03: the scenario mailbox-default-replaced (an ACME tool made a new certificate
EX01's default after EDGE01 was subscribed, so EdgeSync from EX01 fails until EDGE01 is
subscribed again). Phase 03's plan must resubscribe and say why (or how to restore the
default), and its apply must leave EdgeSync Normal.

The scenario ships a renewed certificate for EDGE01 (a PFX under renewal/ of the lab folder,
like seed-incident's), which phase 02 needs. `older_default` backdates the ACME certificate, in
a copy of the scenario, to before the subscription (an administrator made an older certificate
the default): only EdgeSync's failure tells the plan then.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import edgebook.lab
from edgebook.evidence import layout
from edgebook.lab.org import certstore
from edgebook.phases import inspect as inspect_phase
from edgebook.phases import resubscribe
from edgebook.phases.prepare_certificate import CERTIFICATE_ONLY, RESUBSCRIBE
from tests.support.resubscribe import CHANGE, FAST, InProcessLab


def scenario(tmp_path: Path, older_default: bool = False) -> Path:
    """mailbox-default-replaced (with EDGE01's renewed certificate as a PFX), as shipped or with
    the ACME default older than the subscription."""
    package = Path(edgebook.lab.__file__).parent / "scenarios"
    spec = yaml.safe_load((package / "mailbox-default-replaced.yaml").read_text())
    assert any(c.get("lab_files") == ["renewal/EDGE01.pfx"] for c in spec["certificates"])
    if older_default:  # the new default predates the subscription (created 400 days ago)
        (acme,) = [c for c in spec["certificates"] if c["id"] == "acme"]
        acme["valid"] = {"from_days": -450, "to_days": 87}
        for ca in spec["certificate_authorities"]:
            ca["valid"]["from_days"] = min(ca["valid"]["from_days"], -1000)
    path = tmp_path / "mailbox-default-replaced-renewal.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture
def outputs(tmp_path, monkeypatch):
    monkeypatch.setenv(layout.OUTPUTS_ENV, str(tmp_path / "outputs"))


def sync_status(lab: InProcessLab) -> tuple[str, str]:
    (row,) = lab.ok("EX01", "Test-EdgeSynchronization", TargetServer="EDGE01")
    return str(row["SyncStatus"]), str(row["FailureDetail"] or "")


def edgesync_findings(lab: InProcessLab) -> list[str]:
    found = inspect_phase.inspect(lab.inventory, shell_factory=lab.factory).findings
    return [f"{f.slug}: {f.message}" for f in found if f.slug == "edgesync-failing"]


def apply_and_check(lab: InProcessLab, planned: resubscribe.Planned) -> None:
    result = resubscribe.apply(
        planned, planned.plan.sha256, shell_factory=lab.factory, probe=lab.probe
    )
    assert result.completed, result.error
    assert sync_status(lab) == ("Normal", "")
    assert edgesync_findings(lab) == []


def resubscribes(planned: resubscribe.Planned) -> None:
    ids = [s.id for s in planned.plan.steps]
    assert planned.route == RESUBSCRIBE
    assert ids.index("subscription-file-edge01") < ids.index("subscribe-edge01")
    assert ids.index("subscribe-edge01") < ids.index("sync-edge01")
    text = planned.plan.text()
    assert "F22: EX01's default transport certificate" in text
    assert "this plan resubscribes (or restore EX01's previous default" in text


def test_the_scenario_resubscribes_edge01_and_edgesync_ends_normal(tmp_path, outputs):
    lab = InProcessLab(tmp_path / "lab", scenario(tmp_path))
    assert sync_status(lab)[0] == "Failed"
    lab.prepare("EDGE01")
    planned = resubscribe.plan(lab.inventory, "EDGE01", CHANGE, FAST, shell_factory=lab.factory)
    resubscribes(planned)
    assert "newer than EDGE01's subscription" in planned.plan.text()
    apply_and_check(lab, planned)


@pytest.mark.parametrize("older_default", [False, True], ids=["newer-default", "older-default"])
def test_a_default_replaced_after_phase_02_is_found_by_phase_03(tmp_path, outputs, older_default):
    """Phase 02 ran while EdgeSync worked (route certificate only); then the ACME tool made its
    certificate the default again: phase 03's own reading must resubscribe."""
    lab = InProcessLab(tmp_path / "lab", scenario(tmp_path, older_default))
    org = lab.store.read().server("EX01")
    acme = org.internal_transport_thumbprint
    (previous,) = [c.thumbprint for c in org.certificates if certstore.subject(c) == "CN=EX01"]
    # the consultant's console, as in F22's fix 1: the previous default back, EdgeSync works
    lab.ok("EX01", "Enable-ExchangeCertificate", Thumbprint=previous, Services="SMTP", Force=True)
    assert sync_status(lab)[0] == "Normal"
    assert lab.prepare("EDGE01") is not None
    certificate_only = resubscribe.plan(
        lab.inventory, "EDGE01", CHANGE, FAST, shell_factory=lab.factory
    )
    assert certificate_only.route == CERTIFICATE_ONLY
    lab.ok(
        "EX01", "Enable-ExchangeCertificate", Thumbprint=acme, Services="SMTP", Force=True
    )  # ACME again
    assert sync_status(lab)[0] == "Failed"
    planned = resubscribe.plan(lab.inventory, "EDGE01", CHANGE, FAST, shell_factory=lab.factory)
    resubscribes(planned)
    if older_default:
        assert "EdgeSync from EX01 to EDGE01 fails to decrypt" in planned.plan.text()
    apply_and_check(lab, planned)
