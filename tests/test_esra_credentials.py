"""The EdgeSync bootstrap replication account (ESBRA) in the Edge Subscription file: written in
clear text by the lab as by Exchange, checked when EdgeSync first binds to AD LDS, and never
written by edgebook anywhere (issue #9)."""

from __future__ import annotations

import base64
import logging
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from edgebook.evidence import layout
from edgebook.evidence.verify import scan_secrets
from edgebook.lab.org.edgesync import INVALID_CREDENTIAL
from edgebook.phases import resubscribe
from edgebook.phases.resubscribe import Options
from tests.support.lab import Lab, lab_copy
from tests.support.resubscribe import CHANGE, InProcessLab

SITE = "Default-First-Site-Name"
PATH = r"C:\temp\EdgeSubscriptionInfo.xml"
# Microsoft, "Edge Subscription credentials": the file's contents, in this order.
FIELDS = [
    "EdgeServerName",
    "EdgeServerFQDN",
    "EdgeCertificateBlob",
    "ESRAUsername",
    "ESRAPassword",
    "EffectiveDate",
    "Duration",
    "AdamSslPort",
    "ProductID",
    "VersionNumber",
    "SerialNumber",
]


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    return Lab(lab_copy("healthy", tmp_path / "lab"))


def subscription_file(lab: Lab, edge: str = "EDGE01") -> bytes:
    lab.ok(edge, "New-EdgeSubscription", FileName=PATH, Force=True)
    (data,) = lab.ok(edge, "Get-Content", Path=PATH, Encoding="Byte", ReadCount=0)
    return data


def fields(data: bytes) -> dict[str, str]:
    return {child.tag: child.text or "" for child in ET.fromstring(data)}


def with_password(data: bytes, password: str) -> bytes:
    root = ET.fromstring(data)
    root.find("ESRAPassword").text = password  # type: ignore[union-attr]
    return ET.tostring(root)


def sync_results(lab: Lab, edge: str = "EDGE01") -> set[tuple[str, str]]:
    results = lab.ok("EX01", "Start-EdgeSynchronization", TargetServer=edge)
    return {(r["Result"].text, r["FailureDetails"]) for r in results}


def test_file_holds_the_bootstrap_account_in_clear_text(lab):
    first = fields(subscription_file(lab))
    assert list(first) == FIELDS
    replica = lab.store.read().server("EDGE01").replica
    assert first["ESRAUsername"] == replica.bootstrap_username == "ESRA.EDGE01"
    assert first["ESRAPassword"] == replica.bootstrap_password
    assert len(first["ESRAPassword"]) >= 24
    second = fields(subscription_file(lab))
    assert second["ESRAPassword"] != first["ESRAPassword"]  # a new file, a new account password
    assert lab.store.read().server("EDGE01").replica.bootstrap_password == second["ESRAPassword"]


def test_import_keeps_the_credentials_and_initial_sync_binds_with_them(lab):
    data = subscription_file(lab)
    lab.ok("EX01", "New-EdgeSubscription", FileData=data, Site=SITE)
    sub = lab.store.read().subscription("EDGE01")
    assert (sub.esra_username, sub.esra_password) == (
        "ESRA.EDGE01",
        fields(data)["ESRAPassword"],
    )
    assert sync_results(lab) == {("Success", "")}


def test_a_file_with_a_wrong_password_fails_the_initial_replication(lab):
    data = with_password(subscription_file(lab), "not-the-account-password")
    lab.ok("EX01", "New-EdgeSubscription", FileData=data, Site=SITE)  # import reads the file only
    assert sync_results(lab) == {("CouldNotConnect", INVALID_CREDENTIAL)}
    statuses = {s["Name"]: s for s in lab.ok("EX01", "Test-EdgeSynchronization")}
    assert statuses["EDGE01"]["SyncStatus"].text == "Failed"
    assert statuses["EDGE01"]["FailureDetail"] == INVALID_CREDENTIAL
    # a file from an older New-EdgeSubscription: its account was replaced in AD LDS
    old = subscription_file(lab)
    subscription_file(lab)
    lab.ok("EX01", "New-EdgeSubscription", FileData=old, Site=SITE)
    assert sync_results(lab) == {("CouldNotConnect", INVALID_CREDENTIAL)}


def test_a_file_without_credentials_is_not_a_subscription_file(lab):
    root = ET.fromstring(subscription_file(lab))
    password = root.find("ESRAPassword")
    assert password is not None
    root.remove(password)
    message = lab.fails("EX01", "New-EdgeSubscription", FileData=ET.tostring(root), Site=SITE)
    assert "isn't a valid Edge Subscription file ('ESRAPassword')" in message
    assert lab.store.read().subscription("EDGE01").esra_password is None  # nothing changed


def test_phase_03_resubscribe_leaves_no_trace_of_the_esra_password(
    tmp_path, monkeypatch, capsys, caplog
):
    outputs = tmp_path / "outputs"
    monkeypatch.setenv(layout.OUTPUTS_ENV, str(outputs))
    caplog.set_level(logging.DEBUG)
    lab = InProcessLab(tmp_path / "lab")
    lab.prepare("EDGE01")
    options = Options(
        replace_default_certificate=True, drain_timeout=30, sync_timeout=30, poll_every=0.2
    )
    planned = resubscribe.plan(lab.inventory, "EDGE01", CHANGE, options, shell_factory=lab.factory)
    assert planned.route == "resubscribe"
    result = resubscribe.apply(
        planned, planned.plan.sha256, shell_factory=lab.factory, probe=lab.probe
    )
    assert result.completed, result.error
    org = lab.store.read()
    sub = org.subscription("EDGE01")
    password = sub.esra_password
    assert password and password == org.server("EDGE01").replica.bootstrap_password
    assert org.server("EDGE01").replica.last_sync >= sub.create_utc  # initial sync bound with it

    written = [p for p in outputs.rglob("*") if p.is_file()]
    assert layout.journal_path(CHANGE, "EDGE01") in written
    forms = [password.encode(), base64.b64encode(password.encode())]
    for path in written:
        content = path.read_bytes()
        assert not any(form in content for form in forms), path
    captured = capsys.readouterr()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for text in (captured.out, captured.err, logged):
        assert password not in text
    # the scan behind `edgebook evidence verify --secret-env` agrees (the CLI itself wants run
    # manifests, which only notebook runs write) and finds the password where it is: the lab
    folder = layout.change_dir(CHANGE)
    assert scan_secrets(folder, {"ESRA": password}) == []
    assert [p.path for p in scan_secrets(lab.directory, {"ESRA": password})] == ["state.json"]
