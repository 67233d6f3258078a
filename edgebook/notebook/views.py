"""Tables and plots of an inspect result, for the notebooks (pandas, matplotlib)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pandas as pd

from edgebook.findings import Severity

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from edgebook.phases.inspect import InspectResult


UNKNOWN = "unknown"  # an Exchange property that did not arrive (cert-facts-unknown)


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


def _known(value: object) -> object:
    """The value, or 'unknown' for None (a property that did not arrive)."""
    return UNKNOWN if value is None else value


def summary(result: InspectResult) -> pd.DataFrame:
    """Findings counted per server and severity."""
    rows = [
        {"server": f.server or "organisation", "severity": str(f.severity)} for f in result.findings
    ]
    frame = _frame(rows, ["server", "severity"])
    if frame.empty:
        return pd.DataFrame({"findings": ["none"]})
    return frame.value_counts().unstack(fill_value=0)


def certificates(result: InspectResult) -> pd.DataFrame:
    """Every certificate on every server, with the role it plays ('unknown': Exchange's
    property did not arrive)."""
    rows = []
    servers = [(e.name, e.certificates, e.default_thumbprint) for e in result.edges]
    servers += [(m.name, m.certificates, m.internal_thumbprint) for m in result.org.mailbox_servers]
    for server, installed, default in servers:
        for cert in installed:
            rows.append(
                {
                    "server": server,
                    "thumbprint": cert.thumbprint,
                    "subject": cert.subject,
                    "issuer": cert.issuer,
                    "not_after": cert.not_after,
                    "services": UNKNOWN if cert.services is None else ", ".join(cert.services),
                    "default": cert.thumbprint == default,
                    "private_key": _known(cert.has_private_key),
                    "exportable": _known(cert.private_key_exportable),
                    "status": _known(cert.status),
                    "root_ca_type": _known(cert.root_ca_type),
                }
            )
    columns = ["server", "thumbprint", "subject", "issuer", "not_after", "services", "default"]
    return _frame(rows, [*columns, "private_key", "exportable", "status", "root_ca_type"])


def served_vs_configured(result: InspectResult) -> pd.DataFrame:
    """Per Edge: what 25 and 50636 present now against what the configuration selects.

    Port 25 should present a certificate the receive connector selects (TlsCertificateName,
    else Fqdn); 50636 the Edge's default certificate, which the Edge Subscription pins. A
    certificate whose Services are unknown may be selected: it is listed, marked so.
    """
    from edgebook.rules.usage import receive_selection, smtp_receive_connectors

    rows = []
    for edge in result.edges:
        expected_smtp: list[str] = []
        maybe_smtp: list[str] = []
        for connector in smtp_receive_connectors(edge):
            selection = receive_selection(edge, connector, result.org)
            if selection:
                expected_smtp += [c.thumbprint for c in selection.eligible]
                maybe_smtp += [c.thumbprint for c in selection.unknown]
        for port, probe, expected, maybe in (
            ("25 (SMTP)", edge.smtp_probe, expected_smtp, maybe_smtp),
            ("50636 (LDAPS)", edge.ldaps_probe, [edge.default_thumbprint or ""], []),
        ):
            served = probe.thumbprint if probe else None
            listed = [t for t in expected if t] + [f"{t} (Services {UNKNOWN})" for t in maybe]
            match = bool(served) and served in expected
            rows.append(
                {
                    "edge": edge.name,
                    "port": port,
                    "served": served,
                    "configured": ", ".join(listed) or None,
                    "match": UNKNOWN if not match and served in maybe else match,
                    "error": probe.error if probe else "not probed",
                }
            )
    return _frame(rows, ["edge", "port", "served", "configured", "match", "error"])


def send_connectors(result: InspectResult) -> pd.DataFrame:
    """The organisation's send connectors with their TLS settings."""
    rows = [c.to_dict() for c in result.org.send_connectors]
    columns = ["name", "address_spaces", "source_transport_servers", "tls_certificate_name"]
    return _frame(rows, [*columns, "tls_domain", "tls_auth_level", "require_tls", "fqdn"])


def receive_connectors(result: InspectResult) -> pd.DataFrame:
    """Every Edge's receive connectors (managed locally, not replicated)."""
    rows = [{"edge": e.name, **c.to_dict()} for e in result.edges for c in e.receive_connectors]
    columns = ["edge", "name", "fqdn", "tls_certificate_name", "tls_domain_capabilities"]
    return _frame(rows, columns)


def edgesync(result: InspectResult) -> pd.DataFrame:
    """Test-EdgeSynchronization per subscribed Edge."""
    rows = [s.to_dict() for s in result.org.edgesync]
    return _frame(rows, ["name", "sync_status", "failure_detail", "last_synchronized_utc"])


def queues(result: InspectResult) -> pd.DataFrame:
    """Every Edge's queues."""
    rows = [{"edge": e.name, **q.to_dict()} for e in result.edges for q in e.queues]
    columns = ["edge", "identity", "status", "message_count", "next_hop_domain", "last_error"]
    return _frame(rows, columns)


def health(result: InspectResult) -> pd.DataFrame:
    """The EdgeTransport health set of every Edge."""
    rows = [{"edge": e.name, **h.to_dict()} for e in result.edges for h in e.health]
    return _frame(rows, ["edge", "name", "alert_value", "target_resource"])


def findings(result: InspectResult) -> pd.DataFrame:
    """The findings, errors first."""
    rows = [f.to_dict() for f in result.findings]
    return _frame(rows, ["severity", "slug", "server", "message"])


SEVERITY_COLOURS = {Severity.ERROR: "tab:red", Severity.WARNING: "tab:orange"}


def certificate_timeline(result: InspectResult, warning_days: int = 30) -> Axes:
    """Every certificate's lifetime against today, the warning window shaded."""
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    frame = certificates(result).dropna(subset=["not_after"])
    installed = [c for e in result.edges for c in e.certificates]
    installed += [c for m in result.org.mailbox_servers for c in m.certificates]
    starts = {c.thumbprint: c.not_before for c in installed if c.not_before is not None}
    now = result.org.now
    height = max(2.0, 0.45 * len(frame) + 1)
    figure, axes = plt.subplots(figsize=(11, height))
    labels = []
    for row, cert in enumerate(frame.itertuples()):
        start = starts.get(cert.thumbprint) or cert.not_after - dt.timedelta(days=365)
        expired = cert.not_after <= now
        soon = not expired and cert.not_after <= now + dt.timedelta(days=warning_days)
        colour = "tab:red" if expired else "tab:orange" if soon else "tab:blue"
        left, right = mdates.date2num(start), mdates.date2num(cert.not_after)
        axes.barh(row, right - left, left=left, color=colour, alpha=0.8)
        labels.append(f"{cert.server}  {cert.subject.split(',')[0]}  {cert.thumbprint[:8]}")
    today, warn_until = mdates.date2num(now), mdates.date2num(now + dt.timedelta(days=warning_days))
    axes.axvspan(today, warn_until, color="tab:orange", alpha=0.15)
    axes.axvline(today, color="black", linewidth=1)
    axes.xaxis_date()
    axes.set_yticks(range(len(labels)), labels)
    axes.set_title(f"Certificates against {now:%Y-%m-%d} (warning window {warning_days} days)")
    figure.tight_layout()
    return axes
