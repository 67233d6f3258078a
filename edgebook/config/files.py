"""The files a parameters file names, read before any connection so a bad one stops early."""

from __future__ import annotations

from typing import Any

from edgebook.certs import CertificateError, load_certificate_list
from edgebook.certs.load import load_pem_certificates
from edgebook.config.model import Inventory
from edgebook.errors import ConfigError


def check_ca_files(inventory: Inventory) -> None:
    """Every winrm.ca_file must be a PEM file of certificates (requests reads nothing else)."""
    servers = [
        (f"organisation.mailbox_servers[{index}]", server)
        for index, server in enumerate(inventory.organisation.mailbox_servers)
    ] + [(f"edges[{index}]", edge) for index, edge in enumerate(inventory.edges)]
    for key, server in servers:
        if server.winrm.ca_file is None:
            continue
        try:
            load_pem_certificates(server.winrm.ca_file)
        except CertificateError as exc:
            raise ConfigError(
                f"{inventory.path}: {key}.winrm.ca_file: {exc} (give a PEM file of the CA that "
                "issued the server's WinRM certificate)"
            ) from None


def trust_anchors(inventory: Inventory) -> tuple[Any, ...] | None:
    """The change.trust_anchors certificates, None when the key is absent."""
    if inventory.change.trust_anchors is None:
        return None
    try:
        return tuple(load_certificate_list(inventory.change.trust_anchors))
    except CertificateError as exc:
        raise ConfigError(
            f"{inventory.path}: change.trust_anchors: {exc} (give a PEM file of the root CAs "
            "to trust besides the system store, or remove the key)"
        ) from None
