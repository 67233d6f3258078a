"""Keep authentication tokens and PSRP payloads out of debug logs.

With DEBUG logging on (a notebook's ``logging.basicConfig(level=logging.DEBUG)`` while
troubleshooting), spnego logs every NTLM/SPNEGO/CredSSP token (an NTLM exchange in a log can
be cracked offline for the password) and pypsrp logs every WSMan message and PSRP payload
(cmdlet parameters: a subscription file, a PFX). A filter on those loggers keeps the record
and replaces the data with its size.
"""

from __future__ import annotations

import logging

# logger name -> message prefixes whose remainder is data, not diagnosis
REDACTED: dict[str, tuple[str, ...]] = {
    "spnego._ntlm": ("NTLM step input:", "NTLM step output:"),
    "spnego._negotiate": ("SPNEGO step input:", "SPNEGO step output:"),
    "spnego._gss": ("GSSAPI step input:", "GSSAPI step output:"),
    "spnego._credssp": (
        "CredSSP step input:",
        "CredSSP step output:",
        "CredSSP TSRequest input:",
        "CredSSP TSRequest output:",
    ),
    "pypsrp.wsman": ("Sending message on attempt", "Received message:"),
    "pypsrp.messages": ("Packing PSRP message", "Unpacking PSRP message"),
}


class RedactWireData(logging.Filter):
    """Replace the data part of a token or payload record by '<N characters hidden>'."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite matching records in place; every record is kept."""
        message = record.getMessage()
        for prefix in self.prefixes:
            if message.startswith(prefix):
                head, _, data = message.partition(":")
                record.msg = f"{head}: <{len(data.strip())} characters hidden by edgebook>"
                record.args = ()
                break
        return True


def install() -> None:
    """Add the filter to each logger once (safe to call again)."""
    for name, prefixes in REDACTED.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactWireData) for f in logger.filters):
            logger.addFilter(RedactWireData(prefixes))
