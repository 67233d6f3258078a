"""CountingTransport reads the environment's proxy settings once per session (pypsrp's
_build_session), and every request still goes through the proxy (or none) the environment
names."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from pypsrp.wsman import WSMan
from requests.utils import resolve_proxies, select_proxy

from edgebook.exchange.counting import CountingTransport, ShellStats


@pytest.mark.parametrize(
    ("environment", "host", "no_proxy", "expected"),
    [
        ({"HTTPS_PROXY": "http://proxy:3128"}, "edge01.contoso.com", False, "http://proxy:3128"),
        ({"ALL_PROXY": "http://all:3128"}, "edge01.contoso.com", False, "http://all:3128"),
        (
            {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": ".contoso.com"},
            "edge01.contoso.com",
            False,
            None,
        ),
        ({"HTTPS_PROXY": "http://proxy:3128"}, "127.0.0.1", True, None),
        ({}, "edge01.contoso.com", False, None),
    ],
)
def test_requests_keep_the_environments_proxy(
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    host: str,
    no_proxy: bool,
    expected: str | None,
) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    transport = WSMan(host, auth="basic", username="u", password="p", no_proxy=no_proxy).transport
    sessions: list[requests.Session | None] = []

    def send_request(request: requests.PreparedRequest, **_kwargs: Any) -> bytes:
        sessions.append(transport.session)
        return b""

    monkeypatch.setattr(transport, "_send_request", send_request)
    counting = CountingTransport(transport, ShellStats("EDGE01"), lambda: None)
    counting.send(b"<first/>")
    counting.send(b"<second/>")
    session = sessions[0]
    assert session is not None and sessions == [session, session]
    assert session.trust_env is False  # no os.environ scan per request
    endpoint = transport.endpoint
    request = session.prepare_request(requests.Request("POST", endpoint))
    proxies = resolve_proxies(request, session.proxies, session.trust_env)
    with_environment = resolve_proxies(request, session.proxies, True)
    assert (select_proxy(endpoint, proxies) or None) == expected
    assert (select_proxy(endpoint, with_environment) or None) == expected
