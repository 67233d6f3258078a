"""The change-level report: verdicts per Edge and phase, findings before and after, the plans
and what was applied, the journal and the certificate timeline, in one offline HTML file.

report.html is derived from the manifests; ``report.json`` beside it records its sha256 and
the manifests it was built from, so `edgebook evidence verify` also catches an edited report.
Both are replaced each time the report is regenerated.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
from pathlib import Path
from typing import Any

from edgebook import __version__
from edgebook.errors import EdgebookError
from edgebook.evidence import timeline
from edgebook.evidence.layout import PHASES, REPORT_HTML, REPORT_JSON
from edgebook.evidence.manifest import JOURNAL, SUFFIX, read_manifest, sha256_file
from edgebook.evidence.verify import evidence_files, verify_change

JOURNAL_ROWS = 500
_COLOURS = {"ok": "#2a2", "failed": "#c00", "timeout": "#c00", "dead-kernel": "#c00"}
_CSS = """body{font-family:sans-serif;margin:2em;max-width:1200px}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 6px;
text-align:left;vertical-align:top;font-size:90%}th{background:#eee}.v{color:#fff;
font-weight:bold}pre{background:#f6f6f6;padding:.5em;overflow-x:auto;font-size:85%}
.bad{background:#fdd;padding:.5em}.good{background:#dfd;padding:.5em}"""


def load_runs(folder: Path) -> list[dict[str, Any]]:
    """Every readable manifest under the change folder, oldest first, with its own path."""
    runs = []
    for name in evidence_files(folder):
        if name.endswith(SUFFIX):
            try:
                manifest = read_manifest(folder / name)
            except EdgebookError:
                continue  # verify reports it in the report's header
            runs.append({**manifest, "_path": name})
    return sorted(runs, key=lambda m: (str(m.get("started")), m["_path"]))


def write_report(folder: Path) -> Path:
    """Write folder/report.html and folder/report.json (replacing earlier ones)."""
    runs = load_runs(folder)
    if not runs:
        raise EdgebookError(f"{folder}: no run manifests (*{SUFFIX}) here; is it a change folder?")
    verification = verify_change(folder)
    problems = [p for p in verification.problems if p.path not in (REPORT_HTML, REPORT_JSON)]
    page = render(folder, runs, [str(p) for p in problems])
    target = folder / REPORT_HTML
    _replace(target, page)
    record = {
        "schema": "edgebook.report/1",
        "generated": dt.datetime.now(dt.UTC).isoformat(),
        "edgebook": __version__,
        "html": {"path": REPORT_HTML, "sha256": sha256_file(target)},
        "manifests": [
            {"path": run["_path"], "sha256": sha256_file(folder / run["_path"])} for run in runs
        ],
    }
    _replace(folder / REPORT_JSON, json.dumps(record, indent=2) + "\n")
    return target


def _replace(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def render(folder: Path, runs: list[dict[str, Any]], problems: list[str]) -> str:
    """The report page."""
    change = runs[0].get("change", folder.name)
    edges = list(dict.fromkeys(str(run.get("edge")) for run in runs))
    status = (
        f'<p class="bad">Evidence problems ({len(problems)}):</p><ul>'
        + "".join(f"<li>{_e(p)}</li>" for p in problems)
        + "</ul>"
        if problems
        else f'<p class="good">Evidence verified: {len(runs)} runs, every hash as recorded.</p>'
    )
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Change {_e(change)}</title>"
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Change {_e(change)}</h1>",
        f"<p>Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by edgebook {__version__}.</p>",
        status,
        "<h2>Verdicts</h2>",
        _matrix(runs, edges),
        "<h2>Runs</h2>",
        _runs_table(runs),
    ]
    for edge in edges:
        mine = [run for run in runs if run.get("edge") == edge]
        parts += [f"<h2>{_e(edge)}</h2>", _findings(mine), _plans(mine)]
        parts += [_journal(folder / edge.upper() / JOURNAL), _timeline(edge, mine)]
    parts.append("</body></html>")
    return "\n".join(parts)


def _e(value: Any) -> str:
    return html.escape(str(value if value is not None else ""))


def _verdict(run: dict[str, Any]) -> str:
    verdict = str(run.get("verdict"))
    colour = _COLOURS.get(verdict, "#888")
    return f'<span class="v" style="background:{colour};padding:0 4px">{_e(verdict)}</span>'


def _link(run: dict[str, Any], text: str) -> str:
    target = (run.get("html") or run.get("notebook") or {}).get("path")
    return f'<a href="{_e(target)}">{_e(text)}</a>' if target else _e(text)


def _matrix(runs: list[dict[str, Any]], edges: list[str]) -> str:
    rows = ["<table><tr><th>Edge</th>" + "".join(f"<th>{p}</th>" for p in PHASES.values())]
    for edge in edges:
        cells = []
        for phase in PHASES:
            mine = [r for r in runs if r.get("edge") == edge and r.get("phase") == phase]
            if not mine:
                cells.append("<td>–</td>")
                continue
            last = mine[-1]
            more = f" ({len(mine)} runs)" if len(mine) > 1 else ""
            cells.append(f"<td>{_verdict(last)} {_link(last, 'notebook')}{more}</td>")
        rows.append(f"<tr><td>{_e(edge)}</td>{''.join(cells)}</tr>")
    return "\n".join(rows) + "</table>"


def _runs_table(runs: list[dict[str, Any]]) -> str:
    head = "Started (UTC)", "Edge", "Phase", "Verdict", "Duration", "Apply", "Operator", "Error"
    rows = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for run in runs:
        parameters = run.get("parameters") or {}
        apply = "yes" if parameters.get("apply") else "no" if "apply" in parameters else ""
        rows.append(
            f"<tr><td>{_e(str(run.get('started'))[:19])}</td><td>{_e(run.get('edge'))}</td>"
            f"<td>{_link(run, PHASES.get(str(run.get('phase')), str(run.get('phase'))))}</td>"
            f"<td>{_verdict(run)}</td><td>{_e(run.get('duration_s'))} s</td><td>{apply}</td>"
            f"<td>{_e(run.get('operator'))}</td><td>{_e(run.get('error'))}</td></tr>"
        )
    return "\n".join(rows) + "</table>"


def _findings(runs: list[dict[str, Any]]) -> str:
    seen = [run for run in runs if isinstance(run.get("records", {}).get("findings"), list)]
    if not seen:
        return "<p>No findings were recorded.</p>"
    before, after = seen[0], seen[-1]
    parts = [f"<h3>Findings before ({_e(before.get('phase'))}, {_e(before.get('started'))})</h3>"]
    parts.append(_findings_table(before["records"]["findings"]))
    if after is not before:
        old = {(f.get("server"), f.get("slug")) for f in before["records"]["findings"]}
        new = {(f.get("server"), f.get("slug")) for f in after["records"]["findings"]}
        gone = ", ".join(sorted(f"{s}" for _, s in old - new)) or "none"
        came = ", ".join(sorted(f"{s}" for _, s in new - old)) or "none"
        parts.append(
            f"<h3>Findings after ({_e(after.get('phase'))}, {_e(after.get('started'))})</h3>"
            f"<p>Resolved: {_e(gone)}. New: {_e(came)}.</p>"
        )
        parts.append(_findings_table(after["records"]["findings"]))
    return "\n".join(parts)


def _findings_table(findings: list[dict[str, Any]]) -> str:
    if not findings:
        return "<p>None.</p>"
    rows = ["<table><tr><th>Severity</th><th>Slug</th><th>Server</th><th>Message</th></tr>"]
    for f in findings:
        rows.append(
            f"<tr><td>{_e(f.get('severity'))}</td><td>{_e(f.get('slug'))}</td>"
            f"<td>{_e(f.get('server'))}</td><td>{_e(f.get('message'))}</td></tr>"
        )
    return "\n".join(rows) + "</table>"


def _plans(runs: list[dict[str, Any]]) -> str:
    planned = [run for run in runs if "plan_sha256" in run.get("records", {})]
    if not planned:
        return "<p>No plan was recorded.</p>"
    parts = [
        "<h3>Plans and what was applied</h3><table><tr><th>Run</th><th>Phase</th>"
        "<th>Plan sha256</th><th>Approved sha256</th><th>Applied</th><th>Verdict</th></tr>"
    ]
    for run in planned:
        records = run["records"]
        approved = records.get("approved_plan_sha256") or (run.get("parameters") or {}).get(
            "approved_plan_sha256"
        )
        applied = bool((run.get("parameters") or {}).get("apply"))
        parts.append(
            f"<tr><td>{_e(str(run.get('started'))[:19])}</td><td>{_e(run.get('phase'))}</td>"
            f"<td><code>{_e(records.get('plan_sha256'))}</code></td>"
            f"<td><code>{_e(approved)}</code></td><td>{'yes' if applied else 'no (plan only)'}"
            f"</td><td>{_verdict(run)}</td></tr>"
        )
    parts.append("</table>")
    for run in planned:
        for name in ("plan", "answers"):
            if name in run["records"]:
                parts.append(
                    f"<details><summary>{name} of {_e(run.get('phase'))} at "
                    f"{_e(run.get('started'))}</summary><pre>"
                    f"{_e(json.dumps(run['records'][name], indent=2))}</pre></details>"
                )
    return "\n".join(parts)


def _journal(path: Path) -> str:
    if not path.is_file():
        return "<p>No journal (nothing was applied).</p>"
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    rows = ["<h3>Journal</h3><table><tr><th>#</th><th>Entry</th></tr>"]
    for number, line in enumerate(lines[:JOURNAL_ROWS], 1):
        try:
            text = json.dumps(json.loads(line), sort_keys=True)
        except ValueError:
            text = line
        rows.append(f"<tr><td>{number}</td><td><code>{_e(text)}</code></td></tr>")
    if len(lines) > JOURNAL_ROWS:
        rows.append(f"<tr><td></td><td>… {len(lines) - JOURNAL_ROWS} more lines</td></tr>")
    return "\n".join(rows) + "</table>"


def _timeline(edge: str, runs: list[dict[str, Any]]) -> str:
    bars: dict[str, timeline.Bar] = {}
    marks, now, warning_days = [], None, 30
    for run in runs:
        facts = run.get("records", {}).get("facts")
        if not isinstance(facts, dict):
            continue
        settings = facts.get("org", {}).get("settings", {})
        moment = timeline.parse_time(settings.get("now"))
        if moment is not None:
            now = moment
            marks.append(timeline.Mark(PHASES.get(str(run.get("phase")), "run"), moment))
        warning_days = int(settings.get("warning_days") or warning_days)
        for server in facts.get("edges", []):
            if str(server.get("name", "")).upper() != edge.upper():
                continue
            for cert in server.get("certificates", []):
                start = timeline.parse_time(cert.get("not_before"))
                end = timeline.parse_time(cert.get("not_after"))
                if start and end:
                    label = f"{str(cert.get('subject', '')).split(',')[0]} "
                    label += str(cert.get("thumbprint", ""))[:8]
                    services = ",".join(cert.get("services") or [])
                    bars[str(cert.get("thumbprint"))] = timeline.Bar(label, start, end, services)
    if now is None:
        return "<p>No certificate facts were recorded.</p>"
    return "<h3>Certificate timeline</h3>" + timeline.svg(bars.values(), marks, now, warning_days)
