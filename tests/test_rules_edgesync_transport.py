"""EdgeSync rules (subscriptions, Test-EdgeSynchronization, F7 LDAPS) and transport state
rules (services, queues, health, certificate events)."""

from __future__ import annotations

import datetime as dt

import pytest

from edgebook.findings import Severity
from tests.support.certs import NOW
from tests.support.orgs import clean_world, ldaps_probe, of, pki, thumb


@pytest.mark.parametrize(
    ("status", "severity"),
    [
        ("Failed", Severity.ERROR),
        ("Inconclusive", Severity.WARNING),
        ("NoSyncConfigured", Severity.ERROR),
    ],
)
def test_edgesync_status(status, severity):
    world = clean_world()
    world.edgesync[1].update(SyncStatus=status, FailureDetail="SubscriptionConnectionError(x)")
    (finding,) = of(world.evaluate(), "edgesync-failing")
    assert (finding.server, finding.severity) == ("EDGE2", severity)
    assert "SubscriptionConnectionError(x)" in finding.message
    assert "ldaps-cert-mismatch" in finding.message
    assert finding.evidence["sync_status"] == status


def test_edge_without_subscription():
    world = clean_world()
    del world.subscriptions[0]
    (finding,) = of(world.evaluate(), "edgesync-failing")
    assert (finding.server, finding.severity) == ("EDGE1", Severity.ERROR)
    assert "New-EdgeSubscription -FileName" in finding.message


def test_subscription_not_valid():
    world = clean_world()
    world.subscriptions[1]["IsValid"] = False
    (finding,) = of(world.evaluate(), "edgesync-failing")
    assert finding.server == "EDGE2" and "IsValid False" in finding.message


def test_no_edgesync_status_for_a_subscribed_edge():
    world = clean_world()
    del world.edgesync[0]
    (finding,) = of(world.evaluate(), "edgesync-failing")
    assert (finding.server, finding.severity) == ("EDGE1", Severity.WARNING)


def test_ldaps_serves_another_certificate_than_the_default():
    world = clean_world()
    world.ldaps_probes["EDGE1"] = ldaps_probe("EDGE1", pki().public)
    (finding,) = of(world.evaluate(), "ldaps-cert-mismatch")
    assert (finding.server, finding.severity) == ("EDGE1", Severity.ERROR)
    assert finding.evidence["served"] == thumb(pki().public)
    assert finding.evidence["expected"] == thumb(pki().defaults["EDGE1"])
    assert "Restart-Service ADAM_MSExchange" in finding.message


def test_ldaps_probe_failed():
    world = clean_world()
    world.ldaps_probes["EDGE2"] = ldaps_probe("EDGE2", None, error="connection refused")
    findings = world.evaluate()
    (finding,) = of(findings, "probe-failed")
    assert finding.server == "EDGE2" and "LDAPS" in finding.message
    assert of(findings, "ldaps-cert-mismatch") == []


def test_service_not_running():
    world = clean_world()
    world.edges["EDGE1"]["services"][1]["Status"] = "Stopped"
    (finding,) = of(world.evaluate(), "service-not-running")
    assert finding.evidence == {"service": "ADAM_MSExchange", "status": "Stopped"}


def test_queue_in_retry_with_a_certificate_error_points_to_the_trap():
    world = clean_world()
    world.edges["EDGE1"]["queues"][1].update(
        Status="Retry",
        MessageCount=12,
        LastError="454 4.7.5 The certificate specified in TlsCertificateName of the SendConnector "
        "could not be found.",
    )
    (finding,) = of(world.evaluate(), "queue-backlog")
    assert finding.severity == Severity.ERROR
    assert "F3" in finding.evidence["hint"] and "tls-name-stale" in finding.message


@pytest.mark.parametrize(
    ("last_error", "trap"),
    [
        ("451 4.4.395 Target host responded with error. -> 421 4.1.1 Connection timed out", "F2"),
        (
            "451 4.4.395 Target host responded with error. -> 454 4.7.0 Temporary "
            "authentication failure",
            "F14",
        ),
        (
            '451 4.4.0 Primary target IP address responded with: "421 4.4.1 Connection timed out."',
            "F15",
        ),
    ],
)
def test_queue_hints(last_error, trap):
    world = clean_world()
    world.edges["EDGE2"]["queues"][1].update(Status="Retry", LastError=last_error)
    (finding,) = of(world.evaluate(), "queue-backlog")
    assert finding.evidence["hint"].startswith(trap)


def test_queue_above_threshold_is_a_warning():
    world = clean_world()
    world.settings["queue_threshold"] = 2
    found = of(world.evaluate(), "queue-backlog")
    assert {f.server for f in found} == {"EDGE1", "EDGE2"}
    assert all(f.severity == Severity.WARNING and f.evidence["hint"] is None for f in found)


def test_active_queue_below_threshold_is_fine():
    assert of(clean_world().evaluate(), "queue-backlog") == []


@pytest.mark.parametrize(
    ("value", "severity"), [("Degraded", Severity.WARNING), ("Unhealthy", Severity.ERROR)]
)
def test_health_monitor_not_healthy(value, severity):
    world = clean_world()
    world.edges["EDGE2"]["health"][0]["AlertValue"] = value
    (finding,) = of(world.evaluate(), "health-degraded")
    assert finding.severity == severity
    assert "Transport.ServerCertMismatch.Monitor" in finding.message
    assert "watches the transport certificates" in finding.message


def test_disabled_monitor_is_not_reported():
    world = clean_world()
    world.edges["EDGE2"]["health"][1]["AlertValue"] = "Disabled"
    assert of(world.evaluate(), "health-degraded") == []


def _event(event_id: int, hours_ago: float, message: str = "m") -> dict:
    return {
        "EventID": event_id,
        "TimeGenerated": NOW - dt.timedelta(hours=hours_ago),
        "Message": message,
        "EntryType": "Error",
        "Source": "MSExchangeTransport",
    }


def test_certificate_events_grouped_by_id():
    world = clean_world()
    world.edges["EDGE1"]["events"] += [
        _event(12018, 30, "older"),
        _event(12018, 2, "The STARTTLS certificate will expire soon"),
        _event(12014, 5),
        _event(12016, 24 * 30),  # outside the 7-day window
    ]
    found = {f.evidence["event_id"]: f for f in of(world.evaluate(), "cert-warning-events")}
    assert set(found) == {12014, 12018}
    assert found[12018].severity == Severity.WARNING and found[12018].evidence["count"] == 2
    assert found[12018].evidence["message"] == "The STARTTLS certificate will expire soon"
    assert found[12014].severity == Severity.ERROR and found[12014].evidence["count"] == 1


def test_event_window_follows_the_settings():
    world = clean_world()
    world.edges["EDGE2"]["events"].append(_event(12016, 24 * 30))
    world.settings["event_days"] = 31
    (finding,) = of(world.evaluate(), "cert-warning-events")
    assert finding.evidence["event_id"] == 12016 and finding.severity == Severity.ERROR
