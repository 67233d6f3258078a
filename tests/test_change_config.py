"""change.certificates in a parameters file: the renewal per Edge, its password a reference."""

from __future__ import annotations

import pytest

from edgebook.config import load_inventory
from edgebook.errors import ConfigError

BASE = """
organisation:
  name: Contoso
  mailbox_servers: [{name: MBX01, fqdn: mbx01.contoso.com,
                     credential: {username: a, password: env:X}}]
edges: [{name: EDGE01, fqdn: edge01.contoso.com, credential: {username: b, password: env:Y}}]
change:
  certificates:
"""


def write(tmp_path, entry: str):
    path = tmp_path / "p.yaml"
    path.write_text(BASE + entry)
    return path


def test_certificates_per_edge_resolve_relative_paths(tmp_path):
    inventory = load_inventory(
        write(tmp_path, "    EDGE01: {pfx: r/EDGE01.pfx, password: env:PFX, chain: c.pem}\n")
    )
    source = inventory.change.certificate_for("edge01")
    assert source.pfx == tmp_path / "r" / "EDGE01.pfx" and source.chain == tmp_path / "c.pem"
    assert source.password == "env:PFX"
    assert inventory.change.certificate_for("EDGE02") is None


@pytest.mark.parametrize(
    "entry, message",
    [
        ("    EDGE01: {pfx: a.pfx, password: hunter2}\n", "literal secret"),
        ("    EDGE01: {pfx: a.pfx, colour: red}\n", "colour"),
        ("    EDGE01: {password: env:PFX}\n", "pfx"),
    ],
)
def test_bad_certificate_entries_are_refused(tmp_path, entry, message):
    with pytest.raises(ConfigError, match=message) as caught:
        load_inventory(write(tmp_path, entry))
    assert "hunter2" not in str(caught.value)
