"""Findings as a monitoring plugin result (Nagios/Icinga plugin conventions).

One status line, `SERVICE STATUS - text | perfdata`, and the exit code 0 OK, 1 WARNING,
2 CRITICAL, 3 UNKNOWN. Perfdata carries days to expiry per certificate in use.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgebook.findings import Finding, Severity, sort_findings

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATUS_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
SERVICE = "EDGEBOOK"


@dataclass(frozen=True)
class CertificateExpiry:
    """Days to expiry of one certificate in use on one server."""

    server: str
    thumbprint: str
    days: float


def _label(expiry: CertificateExpiry) -> str:
    return f"'{expiry.server} {expiry.thumbprint[:8]}'".replace("=", "_")


def perfdata(expiries: list[CertificateExpiry], warning_days: int) -> str:
    """`'label'=days;warn;crit` per certificate (critical at 0 days)."""
    return " ".join(f"{_label(e)}={e.days:.1f};{warning_days};0" for e in expiries)


def plugin_result(
    findings: list[Finding], expiries: list[CertificateExpiry], warning_days: int
) -> tuple[int, str]:
    """Exit code and status line for a set of findings."""
    problems = [f for f in sort_findings(findings) if f.severity >= Severity.WARNING]
    errors = sum(f.severity == Severity.ERROR for f in problems)
    code = CRITICAL if errors else WARNING if problems else OK
    if problems:
        head = f"{errors} error(s), {len(problems) - errors} warning(s): "
        text = head + "; ".join(f"[{f.server or 'org'}] {f.slug}" for f in problems)
    else:
        text = f"no problems found, {len(expiries)} certificate(s) in use"
        if expiries:
            text += f", next expiry in {min(e.days for e in expiries):.0f} days"
    line = f"{SERVICE} {STATUS_NAMES[code]} - {text}"
    data = perfdata(expiries, warning_days)
    return code, f"{line} | {data}" if data else line


def unknown(message: str) -> tuple[int, str]:
    """The UNKNOWN result for a check that could not run."""
    first_line = message.strip().splitlines()[0] if message.strip() else "check failed"
    return UNKNOWN, f"{SERVICE} UNKNOWN - {first_line}"
