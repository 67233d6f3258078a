"""The WSMan a shell opens: the endpoint check and the settings handed to pypsrp (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgebook.config import CredentialRef, WinRMEndpoint
from edgebook.errors import ConfigError
from edgebook.exchange.wsman_connection import READ_MARGIN_S, build_wsman, check_endpoint
from edgebook.secrets import Credential

MAILBOX = WinRMEndpoint(
    "ex01.contoso.com", 443, "PowerShell", "https", "ntlm", "Microsoft.Exchange"
)


def test_plain_http_basic_is_refused_off_the_lab_loopback():
    remote = WinRMEndpoint("edge01.contoso.com", 5985, "wsman", "http", "basic", "x")
    loopback = WinRMEndpoint("127.0.0.1", 5985, "wsman", "http", "basic", "x")
    with pytest.raises(ConfigError, match=r"EDGE01 \(http://edge01.*plain http is refused"):
        check_endpoint("EDGE01", remote, lab=True)
    with pytest.raises(ConfigError, match="plain http is refused"):
        check_endpoint("EDGE01", loopback, lab=False)
    check_endpoint("EDGE01", loopback, lab=True)
    check_endpoint("EDGE01", MAILBOX, lab=False)  # https: nothing to refuse
    with pytest.raises(ConfigError, match="certificate authentication over plain http"):
        check_endpoint(
            "EDGE01", WinRMEndpoint("127.0.0.1", 1, "w", "http", "certificate", "x"), True
        )


def test_the_wsman_carries_the_endpoint_the_credential_and_the_time_bounds():
    wsman = build_wsman(
        "EX01", MAILBOX, Credential("lab\\admin", "pw"), operation_timeout=7, connection_timeout=3
    )
    transport = wsman.transport
    assert transport.endpoint == "https://ex01.contoso.com:443/PowerShell"
    assert (transport.username, transport.password, transport.auth) == ("lab\\admin", "pw", "ntlm")
    assert wsman.operation_timeout == 7
    assert (transport.connection_timeout, transport.read_timeout) == (3, 7 + READ_MARGIN_S)
    assert transport.reconnection_retries == 0  # never retried: a call's time stays bounded
    assert transport.no_proxy is False  # a remote server goes through the configured proxy


def test_a_credential_reference_is_resolved_when_the_wsman_is_built(monkeypatch):
    monkeypatch.setenv("EDGEBOOK_TEST_WSMAN_PW", "from-env")
    wsman = build_wsman(
        "EX01",
        MAILBOX,
        CredentialRef("lab\\admin", "env:EDGEBOOK_TEST_WSMAN_PW"),
        operation_timeout=20,
        connection_timeout=15,
    )
    assert wsman.transport.password == "from-env"


def test_missing_files_and_passwords_basic_cannot_carry_are_config_errors(tmp_path: Path):
    folder = WinRMEndpoint("h", 5986, "wsman", "https", "ntlm", "x", certificate_pem=tmp_path)
    with pytest.raises(ConfigError, match=r"EDGE01: winrm.certificate_pem .* is a folder"):
        build_wsman("EDGE01", folder, None, operation_timeout=20, connection_timeout=15)
    basic = WinRMEndpoint("h", 5986, "wsman", "https", "basic", "x")
    with pytest.raises(ConfigError, match="outside Latin-1"):
        build_wsman(
            "EDGE01",
            basic,
            Credential("u", "pässwörd€"),
            operation_timeout=20,
            connection_timeout=15,
        )
    latin1 = build_wsman(
        "EDGE01", basic, Credential("u", "pässwörd"), operation_timeout=20, connection_timeout=15
    )
    assert latin1.transport.password == "pässwörd"
