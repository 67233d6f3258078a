"""The Application event log of a lab server: MSExchangeTransport events 12012-12024 and more."""

from __future__ import annotations

import datetime as dt

from edgebook.lab.org.model import EventEntry, Server

TRANSPORT_SOURCE = "MSExchangeTransport"
EDGESYNC_SOURCE = "MSExchange EdgeSync"

# ID -> (source, entry type, message template); texts after docs/domain.md §7.
TEMPLATES: dict[int, tuple[str, str, str]] = {
    12012: (
        TRANSPORT_SOURCE,
        "Error",
        "The internal transport certificate of the local server {server} is missing in Active "
        "Directory. Run Enable-ExchangeCertificate -Services SMTP to publish it.",
    ),
    12013: (
        TRANSPORT_SOURCE,
        "Error",
        "Microsoft Exchange could not load the certificate with thumbprint of {thumbprint} from "
        "the personal store on the local computer. This certificate was configured for "
        "authentication with other Exchange servers. Mail flow to other Exchange servers could "
        "be affected by this error. If the certificate with thumbprint {thumbprint} does not "
        "exist in the personal store on the local computer, run New-ExchangeCertificate "
        "-Services SMTP to create a new certificate, then resubscribe the Edge Transport server.",
    ),
    12014: (
        TRANSPORT_SOURCE,
        "Error",
        "Microsoft Exchange could not find a certificate that contains the domain name "
        "{domain} in the personal store on the local computer. Therefore, it is unable to "
        "support the STARTTLS SMTP verb for the connector {connector} with a FQDN parameter of "
        "{fqdn}. If the connector's FQDN is not specified, the computer's FQDN is used. Verify "
        "the connector configuration and the installed certificates to make sure that there is "
        "a certificate with a domain name for that FQDN. If this certificate exists, run "
        "Enable-ExchangeCertificate -Services SMTP to make sure that the Microsoft Exchange "
        "Transport service has access to the certificate key.",
    ),
    12015: (
        TRANSPORT_SOURCE,
        "Warning",
        "An internal transport certificate expired. Thumbprint:{thumbprint}",
    ),
    12016: (
        TRANSPORT_SOURCE,
        "Error",
        "There is no valid SMTP TLS certificate for the FQDN of {fqdn}. The existing certificate "
        "for that FQDN has expired. The certificate with thumbprint {thumbprint} is being used.",
    ),
    12017: (
        TRANSPORT_SOURCE,
        "Warning",
        "An internal transport certificate will expire soon. Thumbprint:{thumbprint}, hours "
        "remaining: {hours}",
    ),
    12018: (
        TRANSPORT_SOURCE,
        "Error",
        "The STARTTLS certificate will expire soon: subject: {subject}, thumbprint: "
        "{thumbprint}, hours remaining: {hours}. Run the New-ExchangeCertificate cmdlet to "
        "create a new certificate.",
    ),
    12023: (
        TRANSPORT_SOURCE,
        "Warning",
        "Microsoft Exchange could not load the certificate with thumbprint of {thumbprint} from "
        "the personal store on the local computer. The certificate with thumbprint "
        "{fallback} for the server FQDN is being used instead.",
    ),
    12024: (
        TRANSPORT_SOURCE,
        "Warning",
        "Microsoft Exchange could not load the certificate with thumbprint of {thumbprint} from "
        "the personal store on the local computer. Meanwhile, an ephemeral, self-signed "
        "certificate with thumbprint {fallback} is being used.",
    ),
    10104: (
        EDGESYNC_SOURCE,
        "Warning",
        "Microsoft Exchange couldn't match certificate when contacting {edge}. The connection "
        "was stopped.",
    ),
}


def log(server: Server, event_id: int, now: dt.datetime, **args: object) -> EventEntry:
    """Append an event with its template filled in."""
    source, entry_type, template = TEMPLATES[event_id]
    index = (server.events[-1].index + 1) if server.events else 1
    entry = EventEntry(
        index=index,
        event_id=event_id,
        source=source,
        entry_type=entry_type,
        time=now,
        message=template.format(server=server.name, **args),
    )
    server.events.append(entry)
    return entry


def log_throttled(
    server: Server, event_id: int, now: dt.datetime, every: dt.timedelta, key: str, **args: object
) -> None:
    """Log unless the same event about the same key was logged within `every`."""
    for entry in reversed(server.events):
        if now - entry.time >= every:
            break
        if entry.event_id == event_id and key in entry.message:
            return
    log(server, event_id, now, **args)
