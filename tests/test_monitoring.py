"""The monitoring plugin result follows the Nagios conventions."""

from edgebook.findings import Finding, Severity
from edgebook.monitoring import CertificateExpiry, plugin_result, unknown

EXPIRY = [CertificateExpiry("EDGE01", "0123456789ABCDEF0123456789ABCDEF01234567", 9.54)]


def test_no_findings_is_ok_with_perfdata():
    code, line = plugin_result([], EXPIRY, 30)
    assert code == 0
    assert line == (
        "EDGEBOOK OK - no problems found, 1 certificate(s) in use, next expiry in 10 days"
        " | 'EDGE01 01234567'=9.5;30;0"
    )


def test_info_findings_do_not_raise_the_status():
    info = Finding("self-signed", Severity.INFO, "normal for the default", "EDGE01")
    assert plugin_result([info], EXPIRY, 30)[0] == 0


def test_warning_and_critical_list_the_problems_worst_first():
    warn = Finding("cert-expiring", Severity.WARNING, "renew", "EDGE01")
    err = Finding("tls-name-stale", Severity.ERROR, "fix", None)
    code, line = plugin_result([warn], EXPIRY, 30)
    assert code == 1
    assert line.startswith("EDGEBOOK WARNING - 0 error(s), 1 warning(s): [EDGE01] cert-expiring |")
    code, line = plugin_result([warn, err], [], 30)
    assert code == 2
    assert line == (
        "EDGEBOOK CRITICAL - 1 error(s), 1 warning(s): [org] tls-name-stale; [EDGE01] cert-expiring"
    )


def test_unknown_keeps_the_first_line_only():
    assert unknown("cannot reach EDGE01\ndetails") == (3, "EDGEBOOK UNKNOWN - cannot reach EDGE01")
