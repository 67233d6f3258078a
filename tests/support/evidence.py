"""Fixture phase notebooks and an inventory for the evidence tests (no Exchange is reached)."""

from __future__ import annotations

from pathlib import Path

import nbformat

INVENTORY = """\
lab: false
organisation:
  name: Contoso
  ad_site: Default-First-Site-Name
  mailbox_servers:
    - name: MBX01
      fqdn: mbx01.contoso.com
      credential: {username: admin@contoso.com, password: env:EDGEBOOK_TEST_PW}
edges:
  - name: EDGE01
    fqdn: edge01.contoso.com
    credential: {username: EDGE01\\Administrator, password: env:EDGEBOOK_TEST_PW}
  - name: EDGE02
    fqdn: edge02.contoso.com
    credential: {username: EDGE02\\Administrator, password: env:EDGEBOOK_TEST_PW}
"""

INSPECT_PARAMETERS = 'inventory = ""  # file\nedge = ""  # Edge\nchange = ""  # change id\n'
INSPECT = """\
import os
from edgebook.evidence.records import record
record("edge", edge)
record("outputs_root", os.environ.get("EDGEBOOK_OUTPUTS"))
record("findings", [{"slug": "cert-expiring", "severity": "warning", "server": edge,
                     "message": "renew it", "evidence": {}}])
record("facts", {"org": {"settings": {"now": "2026-11-20T10:00:00+00:00", "warning_days": 30}},
                 "edges": [{"name": edge, "certificates": [
                     {"thumbprint": "AB" * 20, "subject": "CN=mail.contoso.com",
                      "not_before": "2025-11-30T00:00:00+00:00",
                      "not_after": "2026-11-30T00:00:00+00:00", "services": ["SMTP"]}]}]})
"""

PREPARE_PARAMETERS = (
    INSPECT_PARAMETERS
    + 'apply = False  # apply\napproved_plan_sha256 = ""  # approval\nfail_on = ""  # test\n'
)
PREPARE = """\
import hashlib, json
from edgebook.change.journal import Journal
from edgebook.evidence import layout
from edgebook.evidence.records import record
if edge == fail_on:
    raise RuntimeError("planned failure")
plan = {"edge": edge, "steps": ["Import-ExchangeCertificate", "Enable-ExchangeCertificate"]}
sha = hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()
plans = layout.edge_dir(change, edge) / "plans"
plans.mkdir(parents=True, exist_ok=True)
if not (plans / f"{sha}.json").exists():
    (plans / f"{sha}.json").write_text(json.dumps(plan))
journal = Journal(layout.journal_path(change, edge))
journal.append("plan-computed", plan_sha256=sha)
record("plan", plan)
record("plan_sha256", sha)
if apply:
    assert approved_plan_sha256 == sha, "the plan is not the approved one"
    journal.append("step-done", step="Import-ExchangeCertificate")
    record("approved_plan_sha256", approved_plan_sha256)
"""


def notebook(path: Path, parameters: str, body: str) -> Path:
    """A phase-like notebook: markdown, a parameters cell, the body."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_markdown_cell("# fixture"),
        nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(body),
    ]
    nbformat.write(nb, str(path))
    return path


def fixture_notebooks(folder: Path) -> Path:
    """A notebooks folder with 01-inspect and 02-prepare-certificate (no 03, no 04)."""
    folder.mkdir(parents=True, exist_ok=True)
    notebook(folder / "01-inspect.ipynb", INSPECT_PARAMETERS, INSPECT)
    notebook(folder / "02-prepare-certificate.ipynb", PREPARE_PARAMETERS, PREPARE)
    return folder


def inventory(folder: Path) -> Path:
    """A two-Edge parameters file."""
    path = folder / "inventory.yaml"
    path.write_text(INVENTORY)
    return path
