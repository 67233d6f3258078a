"""The lab's cmdlets declare their parameters as Microsoft documents them, and their objects carry
the documented output properties (tests/fixtures/exchange-cmdlets.json, a copy of the project's
reference extract: every entry names its Microsoft source)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from edgebook.lab.cmdlets import REGISTRY
from edgebook.lab.cmdlets.base import COMMON, Param
from tests.support.lab import Lab, lab_copy

REFERENCE = json.loads(
    (Path(__file__).parent / "fixtures" / "exchange-cmdlets.json").read_text(encoding="utf-8")
)
PARAMETERS: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
OUTPUTS: dict[str, set[str]] = defaultdict(set)
for _entry in REFERENCE["entries"]:
    if _entry.get("parameter"):
        PARAMETERS[_entry["cmdlet"]][_entry["parameter"]] = _entry
    OUTPUTS[_entry["cmdlet"]] |= set(_entry.get("output_properties", ()))

# Documented, and rightly absent from the lab (which plays Exchange 2019 CU14+): a real server
# refuses them as unknown parameters too.
NOT_OFFERED = {
    ("Import-ExchangeCertificate", "FileName"): "Exchange 2013 only (removed by the 2022 H1 CUs)",
    ("Export-ExchangeCertificate", "FileName"): "Exchange 2013 only (removed by the 2022 H1 CUs)",
    ("New-ExchangeCertificate", "RequestFile"): "Exchange 2013 only (removed by the 2022 H1 CUs)",
    ("Import-ExchangeCertificate", "Instance"): "deprecated and no longer used (Microsoft)",
}
KINDS = {
    "SwitchParameter": "switch",
    "Boolean": "bool",
    "Int32": "int",
    "Byte[]": "bytes",
    "SecureString": "secure",
    "TimeSpan": "timespan",
    "MultiValuedProperty": ("strs", "mvp"),
}
ENUMS = {
    "AllowedServices",
    "TlsAuthLevel",
    "AuthMechanisms",
    "PermissionGroups",
    "QueueViewerIncludesAndExcludes",
}
# Documented properties of Get-ExchangeCertificate the lab's object does not carry (they hold
# handles, key objects and ACLs of the Windows certificate store): docs/lab-scenarios.md.
NOT_CARRIED = {"AccessRules", "Extensions", "Handle", "PrivateKey", "PublicKey"}


def _documented(cmdlet: str) -> list[tuple[str, Param, dict[str, Any]]]:
    declared = {p.name: p for p in REGISTRY[cmdlet.casefold()].params}
    return [(name, declared[name], e) for name, e in PARAMETERS[cmdlet].items() if name in declared]


def _sets(entry: dict[str, Any]) -> set[str]:
    names = {s.strip() for item in entry["parameter_sets"] for s in item.split(",")}
    return set() if names == {"(All)"} else names


def test_every_documented_cmdlet_is_in_the_lab():
    assert sorted(c for c in PARAMETERS if c.casefold() not in REGISTRY) == []


@pytest.mark.parametrize("cmdlet", sorted(PARAMETERS))
def test_declared_parameters_are_documented_ones(cmdlet):
    declared = {p.name for p in REGISTRY[cmdlet.casefold()].params}
    assert sorted(declared - set(PARAMETERS[cmdlet])) == []


@pytest.mark.parametrize("cmdlet", sorted(PARAMETERS))
def test_documented_parameters_are_declared_or_absent_on_purpose(cmdlet):
    declared = {p.name for p in REGISTRY[cmdlet.casefold()].params} | set(COMMON)
    missing = [
        name
        for name in PARAMETERS[cmdlet]
        if name not in declared and (cmdlet, name) not in NOT_OFFERED
    ]
    assert missing == []


@pytest.mark.parametrize("cmdlet", sorted(PARAMETERS))
def test_each_parameter_agrees_with_the_reference(cmdlet):
    problems = []
    for name, param, entry in _documented(cmdlet):
        kind = KINDS.get(entry["type"])
        if entry["kind"] == "switch":
            kind = "switch"
        if kind is not None and param.kind not in ((kind,) if isinstance(kind, str) else kind):
            problems.append(f"{name}: kind {param.kind}, documented {entry['type']}")
        if entry["type"] in ENUMS and not param.values:
            problems.append(f"{name}: enum {entry['type']} without its values")
        if param.mandatory != entry["mandatory"]:
            problems.append(f"{name}: mandatory {param.mandatory}, documented {entry['mandatory']}")
        if set(param.sets) != _sets(entry):
            problems.append(f"{name}: sets {param.sets}, documented {entry['parameter_sets']}")
        documented = None if entry["position"] == "Named" else int(entry["position"]) - 1
        if param.position != documented:
            problems.append(f"{name}: position {param.position}, documented {entry['position']}")
        piped = entry["accept_pipeline_input"].startswith("True")
        if param.pipeline != piped:
            problems.append(f"{name}: pipeline {param.pipeline}, documented {piped}")
    assert problems == []


def test_unsimulated_parameters_say_why():
    for cmdlet in REGISTRY.values():
        for param in cmdlet.params:
            assert param.unsimulated == "" or len(param.unsimulated) > 20, (cmdlet.name, param)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    return Lab(lab_copy("healthy", tmp_path_factory.mktemp("reference") / "lab"))


@pytest.mark.parametrize(
    ("cmdlet", "server", "params"),
    [
        ("Get-ExchangeCertificate", "EDGE01", {}),
        ("Get-SendConnector", "EX01", {}),
        ("Get-ReceiveConnector", "EDGE01", {}),
        ("Get-TransportService", "EDGE01", {}),
        ("Get-Queue", "EDGE01", {}),
        ("Test-EdgeSynchronization", "EX01", {"ExcludeRecipientTest": True}),
    ],
)
def test_objects_carry_the_documented_output_properties(lab, cmdlet, server, params):
    objects = lab.ok(server, cmdlet, **params)
    assert objects
    wanted = OUTPUTS[cmdlet] - (NOT_CARRIED if cmdlet == "Get-ExchangeCertificate" else set())
    for obj in objects:
        assert sorted(wanted - set(obj.properties)) == []
