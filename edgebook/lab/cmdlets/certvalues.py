"""The certificate cmdlets' checks of what they are given: the services a server can run,
-FriendlyName's length and -DomainName's form (Microsoft's docs; the wording is the lab's)."""

from __future__ import annotations

import re
from typing import Any

from edgebook.lab.cmdlets.base import Context
from edgebook.lab.org import certstore
from edgebook.lab.org.model import Server

FRIENDLY_NAME_LIMIT = 64  # Microsoft: "The value must be less than 64 characters."
DOMAIN_LIMIT = 255  # Microsoft: "The length of the domain name can't exceed 255 characters."
# Microsoft: "Values can contain the characters a through z, 0 through 9, and the hyphen (-)"
# (dot-separated labels; the lab also takes a leading "*." for a wildcard name).
_DOMAIN = re.compile(r"^(?:\*\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*$", re.IGNORECASE)
UM_SERVICES = certstore.SERVICE_FLAGS["UM"] | certstore.SERVICE_FLAGS["UMCallRouter"]
EDGE_REFUSED = certstore.SERVICE_FLAGS["IIS"] | certstore.SERVICE_FLAGS["IMAP"]
EDGE_REFUSED |= certstore.SERVICE_FLAGS["POP"]


def check_services(ctx: Context, server: Server, services: int) -> None:
    """Services the server cannot run: Unified Messaging (gone from Exchange 2019, the
    version the lab plays) and, on an Edge, IMAP, POP and IIS (not installed there)."""
    if services & UM_SERVICES:
        raise ctx.fail(
            "UM and UMCallRouter can't be enabled on this server: Exchange Server 2019 has no "
            "Unified Messaging services.",
            exception="System.ArgumentException",
            category="InvalidArgument",
        )
    if server.role == "Edge" and services & EDGE_REFUSED:
        raise ctx.fail(
            "IMAP, POP and IIS can't be enabled on an Edge Transport server: those services "
            "aren't installed there. Enable SMTP only."
        )


def check_friendly_name(ctx: Context, params: dict[str, Any]) -> None:
    """-FriendlyName must be shorter than 64 characters (Microsoft's docs)."""
    name = params.get("FriendlyName")
    if name is not None and len(name) >= FRIENDLY_NAME_LIMIT:
        raise ctx.fail(
            f"The FriendlyName value is {len(name)} characters long. It must be less than "
            f"{FRIENDLY_NAME_LIMIT} characters.",
            exception="System.ArgumentException",
            category="InvalidArgument",
            target=name,
        )


def check_domains(ctx: Context, params: dict[str, Any]) -> None:
    """-DomainName values: host names or FQDNs of letters, digits and hyphens (Microsoft's
    docs), at most 255 characters."""
    for name in params.get("DomainName") or []:
        if len(name) > DOMAIN_LIMIT or not _DOMAIN.match(name):
            raise ctx.fail(
                f"The DomainName value '{name}' isn't a valid domain name: use server names or "
                "FQDNs made of the characters a through z, 0 through 9, hyphens (-) and dots, "
                f"at most {DOMAIN_LIMIT} characters long.",
                exception="System.ArgumentException",
                category="InvalidArgument",
                target=name,
            )
