"""Round-trip counting and per-call time bounds for pypsrp's WSMan transport."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from edgebook.exchange.https_adapter import share_tls_contexts

CALL_GRACE_S = 2.0  # a request may end this long after the call timeout (a last poll)


@dataclass
class ShellStats:
    """Round-trip counters of one shell (one server)."""

    server: str
    cmdlets: int = 0
    pipelines: int = 0
    wsman_requests: int = 0
    by_cmdlet: Counter[str] = field(default_factory=Counter)


class CountingTransport:
    """Wraps pypsrp's transport: counts WSMan requests, bounds each by the call's deadline and
    turns off pypsrp's retries after a read timeout; everything else is delegated.

    The wrapper builds pypsrp's requests session before the first request (pypsrp's own
    `_build_session`, as its send would), which reads the environment's proxy settings for the
    endpoint into the session; the session then stops reading os.environ again on every request
    (``trust_env``): the proxy the environment names, or none, for every request (and no
    ~/.netrc password added to a session without one: certificate authentication). Its HTTPS
    connections share one SSLContext per certificate settings (edgebook.exchange.https_adapter)."""

    def __init__(self, inner: Any, stats: ShellStats, remaining: Callable[[], float | None]):
        self._inner = inner
        self._stats = stats
        self._remaining = remaining

    def send(self, message: bytes, **kwargs: Any) -> bytes:
        """Count and forward one WSMan request, within what is left of the call's time."""
        kwargs["retries_on_read_timeout"] = 0
        left = self._remaining()
        if left is not None:
            timeout = kwargs.get("timeout") or (
                getattr(self._inner, "connection_timeout", left),
                getattr(self._inner, "read_timeout", left),
            )
            connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
            limit = left + CALL_GRACE_S
            kwargs["timeout"] = (min(connect, limit), min(read, limit))
        self._stats.wsman_requests += 1
        if getattr(self._inner, "session", False) is None:  # pypsrp's transport, not yet sending
            session = self._inner._build_session()
            session.trust_env = False
            share_tls_contexts(session, self._inner.certificate_key_password)
            self._inner.session = session
        try:
            return self._inner.send(message, **kwargs)
        except requests.exceptions.Timeout:
            self._remaining()  # when the call's time is up, CallTimeout says so
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
