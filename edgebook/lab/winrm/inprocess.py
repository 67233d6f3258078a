"""An in-process transport: pypsrp talks to a lab WSManEndpoint without sockets.

pypsrp's WSMan sends every SOAP message through `wsman.transport.send()`; replacing that
object lets the unmodified client reach the endpoint directly, with the same bytes.
"""

from __future__ import annotations

import base64

from pypsrp.exceptions import AuthenticationError, WinRMTransportError
from pypsrp.wsman import WSMan

from edgebook.lab.winrm.wsman import SOAP_CONTENT_TYPE, WSManEndpoint


class InProcessTransport:
    """Stands in for pypsrp's HTTP transport; sends each message to the endpoint's handle()."""

    def __init__(self, target: WSManEndpoint, username: str, password: str) -> None:
        self.target = target
        self.username = username
        self.endpoint = f"http://{target.server}:5985/{target.path}"  # pypsrp's wsa:To
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}", "Content-Type": SOAP_CONTENT_TYPE}

    def send(
        self,
        message: bytes,
        *,
        retries_on_read_timeout: int = 0,
        timeout: float | tuple[float, float] | None = None,
    ) -> bytes:
        """Deliver one SOAP message; raise what pypsrp's HTTP transport raises on errors."""
        status, _headers, body = self.target.handle(message, self._headers)
        if status == 401:
            raise AuthenticationError(f"Failed to authenticate the user {self.username} with basic")
        if status >= 400:
            raise WinRMTransportError("http", status, body.decode("utf-8", errors="replace"))
        return body

    def close(self) -> None:
        """Nothing to release: there is no connection."""


def connect_in_process(endpoint: WSManEndpoint, username: str, password: str) -> WSMan:
    """A pypsrp WSMan whose requests go straight to the endpoint (use it as usual)."""
    wsman = WSMan(
        endpoint.server,
        ssl=False,
        auth="basic",
        encryption="never",
        username=username,
        password=password,
        path=endpoint.path,
    )
    # pypsrp types the attribute as its HTTP transport; ours has the same send() and close().
    wsman.transport = InProcessTransport(endpoint, username, password)  # type: ignore[assignment]
    return wsman
