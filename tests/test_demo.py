"""`edgebook demo` end to end: a whole change on both Edges of a fresh lab, then `edgebook
evidence verify` on its folder, and a scan of every evidence file for the real secrets of the
run (the lab password, which is also the renewal PFX's passphrase, and the ESRA credentials of
any subscription file the change made), read from the lab folder after the run."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgebook.evidence.manifest import read_manifest
from edgebook.evidence.verify import scan_secrets
from edgebook.lab.folder import PASSWORD_ENV, lab_password
from edgebook.lab.org.store import LabStore

pytestmark = pytest.mark.timeout(900)
ESRA = re.compile(rb"<ESRAPassword>([^<]+)</ESRAPassword>")


def edgebook(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgebook.cli", *args],
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )


def esra_passwords(lab: Path) -> set[str]:
    """The ESRA passwords the change's subscription files held: as the Mailbox side imported
    them, as the Edges' AD LDS keeps them, and in any file still on a simulated file system."""
    state = LabStore(lab).read()
    found = {s.esra_password for s in state.subscriptions if s.esra_password}
    found |= {
        s.replica.bootstrap_password
        for s in state.servers
        if s.replica is not None and s.replica.bootstrap_password
    }
    for server in state.servers:
        for content in server.files.values():  # path -> base64
            found |= {m.decode() for m in ESRA.findall(base64.b64decode(content or ""))}
    return found


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    work = tmp_path_factory.mktemp("demo")
    outputs, lab = work / "outputs", work / "lab"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(PASSWORD_ENV, raising=False)  # the lab generates its own, in lab/.password
        patch.setenv("EDGEBOOK_OUTPUTS", str(work / "elsewhere"))  # --outputs must win
        done = edgebook("demo", "--outputs", str(outputs), "--lab-dir", str(lab))
    return done, outputs, lab


def test_the_demo_changes_both_edges_and_says_what_it_did(demo):
    done, outputs, _ = demo
    assert done.returncode == 0, done.stdout + done.stderr
    text = done.stdout
    assert "approves its own plans" in text and "in real use a person reviews" in text
    assert re.search(r"^report: .*report\.html$", text, re.M)
    assert re.search(r"^elapsed: \d+\.\d s", text, re.M)
    assert "evidence verify: ok" in text
    (folder,) = outputs.iterdir()
    manifests = [read_manifest(p) for p in folder.glob("*/*/*.manifest.json")]
    runs = {(m["edge"], m["phase"], bool(m["parameters"].get("apply"))) for m in manifests}
    for edge in ("EDGE01", "EDGE02"):
        assert (edge, "inspect", False) in runs
        for phase in ("prepare", "resubscribe", "verify"):
            assert {(edge, phase, False), (edge, phase, True)} <= runs, (edge, phase)
    assert all(m["verdict"] == "ok" for m in manifests)
    verdicts = [
        m["records"]["verdict"]
        for m in manifests
        if m["phase"] == "verify" and m["parameters"].get("apply")
    ]
    assert len(verdicts) == 2
    last = max(
        (m for m in manifests if m["phase"] == "verify" and m["parameters"].get("apply")),
        key=lambda m: m["ended"],
    )
    assert {row["verdict"] for row in last["records"]["verdict"]} == {"ok"}  # all Edges done


def test_every_run_of_the_demo_gets_a_kernel_started_ahead(demo):
    """The pool starts the first kernels while the lab starts, and never more than the runs;
    each is forked from the zygote that imported the notebooks' modules once."""
    done, outputs, _ = demo
    assert done.returncode == 0, done.stdout + done.stderr
    (folder,) = outputs.iterdir()
    kernels = [
        (path.parent.name, json.loads(path.read_text())["metadata"]["edgebook"]["kernel"])
        for path in folder.glob("*/*/*.ipynb")
    ]
    assert len(kernels) == 14
    assert all(kernel["started_ahead"] for _, kernel in kernels), kernels
    assert all(kernel["forked"] for _, kernel in kernels), kernels  # from one zygote
    for _, kernel in kernels:  # which imported what any run needs, once
        warm = set(kernel["warm_imports"])
        assert {"edgebook.lab.control", "edgebook.phases.resubscribe", "matplotlib.pyplot"} <= warm


def test_evidence_verify_accepts_the_demo_folder(demo):
    done, outputs, _ = demo
    assert done.returncode == 0, done.stdout + done.stderr
    (folder,) = outputs.iterdir()
    checked = edgebook("evidence", "verify", str(folder), "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    document = json.loads(checked.stdout)
    assert set(document["heads"]) == {"EDGE01", "EDGE02"}


def test_no_secret_of_the_run_is_in_the_evidence(demo):
    done, outputs, lab = demo
    assert done.returncode == 0, done.stdout + done.stderr
    password, reference = lab_password(lab)
    assert reference.startswith("file:")  # the real, generated value
    secrets = {"lab password (also the PFX passphrase)": password}
    # seed-incident's certificate-only route makes no subscription file (see the F22 demo below)
    secrets |= {f"ESRA password {i}": value for i, value in enumerate(esra_passwords(lab))}
    (folder,) = outputs.iterdir()
    assert scan_secrets(folder, secrets) == []
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert len(files) > 40  # notebooks, HTML, manifests, plans, journals, answers, report


@pytest.fixture(scope="module")
def resubscribing_demo(tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    """The demo on mailbox-default-replaced: phase 03 resubscribes EDGE01 (F22)."""
    work = tmp_path_factory.mktemp("demo-f22")
    outputs, lab = work / "outputs", work / "lab"
    done = edgebook(
        "demo", "--scenario", "mailbox-default-replaced", "--outputs", str(outputs),
        "--lab-dir", str(lab),
    )  # fmt: skip
    return done, outputs, lab


def test_a_resubscribing_demo_leaves_no_esra_credential_in_the_evidence(resubscribing_demo):
    done, outputs, lab = resubscribing_demo
    assert done.returncode == 0, done.stdout + done.stderr
    (folder,) = outputs.iterdir()
    manifests = [read_manifest(p) for p in folder.glob("*/*/*.manifest.json")]
    (applied,) = [
        m for m in manifests if m["phase"] == "resubscribe" and m["parameters"].get("apply")
    ]
    assert applied["records"]["route"] == "resubscribe"  # F22: EDGE01 subscribed anew
    esra = esra_passwords(lab)
    assert esra  # the subscription file's real credentials, as the lab keeps them
    password, _ = lab_password(lab)
    secrets = {"lab password (also the PFX passphrase)": password}
    secrets |= {f"ESRA password {i}": value for i, value in enumerate(esra)}
    assert scan_secrets(folder, secrets) == []
    assert not any(value in done.stdout + done.stderr for value in secrets.values())
