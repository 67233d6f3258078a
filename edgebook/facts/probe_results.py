"""Probe results read back from their JSON (the to_dict() form of edgebook.probes' results)."""

from __future__ import annotations

from typing import Any

from cryptography import x509

from edgebook.facts import values as v
from edgebook.probes import LdapsProbe, SmtpProbe, TlsProbe

KINDS: dict[str, type[TlsProbe]] = {cls.kind: cls for cls in (TlsProbe, SmtpProbe, LdapsProbe)}


def _certificate(data: Any, where: str) -> x509.Certificate:
    """A certificate from probes.certificate_dict()'s form, by its PEM."""
    return v.certificate(v.mapping(data, where).get("pem"), f"{where}.pem")


def probe_from_dict(data: Any, *, where: str = "probe") -> TlsProbe:
    """A TlsProbe, SmtpProbe or LdapsProbe (by its kind) from its to_dict() form."""
    data = v.mapping(data, where)
    kind = data.get("kind")
    if kind not in KINDS:
        raise v.unreadable(f"{where}.kind", f"is {kind!r}, not one of {', '.join(KINDS)}")
    leaf = data.get("leaf")
    chain = v.items(data.get("chain", []), f"{where}.chain")
    return v.from_json(
        KINDS[kind],
        data,
        where,
        leaf=None if leaf is None else _certificate(leaf, f"{where}.leaf"),
        chain=[_certificate(c, f"{where}.chain[{i}]") for i, c in enumerate(chain)],
    )
