"""Bad scenario files for `edgebook lab start --scenario FILE` and `edgebook demo`: each is
refused before a lab folder, a lab file or a daemon exists."""

from __future__ import annotations

import pytest

from edgebook.lab.org.scenarios import load_scenario
from tests.bad_inputs.corpus import FIFO, FOLDER, Case, run_case

GOOD = """\
description: bad inputs
organization: {domain: contoso.com}
certificate_authorities:
  - {id: ca, subject: "CN=Lab CA", valid: {from_days: -10, to_days: 100}}
servers:
  - {name: EX01, role: Mailbox}
  - {name: EDGE01, role: Edge}
certificates:
  - id: pub
    subject: "CN=mail.contoso.com, O=Contoso"
    domains: [mail.contoso.com]
    issuer: ca
    valid: {from_days: -1, to_days: 90}
    lab_files: [renewal/EDGE01.pfx]
"""
S = "s.yaml"


def variant(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


def lab(id: str, text: str | bytes | object, *says: str) -> Case:
    return Case(id, ("lab", "start", "--dir", "{w}/lab", "--scenario", S), 2, says, {S: text})


def lab_file(id: str, path: str) -> Case:
    return lab(
        id,
        variant("[renewal/EDGE01.pfx]", f"['{path}']"),
        "certificates[0].lab_files[0]",
        "a .pfx path inside the lab folder",
    )


BOMB = (
    GOOD
    + "x: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
    + "".join(
        f"x{i}: &a{i} [{', '.join(['*a' if i == 0 else f'*a{i - 1}'] * 10)}]\n" for i in range(7)
    )
)

CASES = [
    lab_file("lab-file-parent", "../evil.pfx"),
    lab_file("lab-file-deep-parent", "renewal/../../evil.pfx"),
    lab_file("lab-file-absolute", "/tmp/evil.pfx"),
    lab_file("lab-file-home", "~/evil.pfx"),
    lab_file("lab-file-windows", "C:\\\\evil.pfx"),
    lab_file("lab-file-not-pfx", "state.json"),
    lab_file("lab-file-hidden", ".password.pfx"),
    lab_file("lab-file-empty-part", "renewal//EDGE01.pfx"),
    lab(
        "lab-file-twice",
        variant("[renewal/EDGE01.pfx]", "[renewal/E.pfx, renewal/E.pfx]"),
        "a unique lab file",
    ),
    lab(
        "two-servers-one-name",
        variant("{name: EX01, role: Mailbox}", "{name: EDGE01, role: Mailbox}"),
        "servers[1].name: found 'EDGE01', expected a unique server name",
        "(servers[0].name has it already)",
    ),
    lab(
        "names-differ-in-case",
        variant("{name: EX01, role: Mailbox}", "{name: edge01, role: Mailbox}"),
        "a unique server name",
    ),
    lab("from-days-nan", variant("from_days: -1", "from_days: .nan"), "a number from -36500"),
    lab("to-days-year-10000", variant("to_days: 90", "to_days: 3000000"), "to 36500"),
    lab("to-days-inf", variant("to_days: 90", "to_days: .inf"), "valid.to_days"),
    lab("days-text", variant("to_days: 90", "to_days: soon"), "found 'soon', expected a number"),
    lab("validity-backwards", variant("to_days: 90", "to_days: -5"), "to_days after from_days"),
    lab(
        "unicode-san",
        variant("[mail.contoso.com]", "['☃.contoso.com']"),
        "certificates[0].domains[0]",
        "a DNS name such as mail.contoso.com",
    ),
    lab("san-with-space", variant("[mail.contoso.com]", "['mail contoso.com']"), "a DNS name"),
    lab("subject-garbage", variant('"CN=mail.contoso.com, O=Contoso"', "'no equals'"), "CN="),
    lab("domain-bad", variant("{domain: contoso.com}", "{domain: 'contoso com'}"), "a DNS name"),
    lab("server-name-space", variant("name: EDGE01", "name: EDGE 01"), "a server name"),
    lab("role-hub", variant("role: Edge", "role: Hub"), "one of Mailbox, Edge"),
    lab("unknown-key", GOOD + "colour: red\n", "colour: unknown key", "allowed here"),
    lab(
        "description-missing",
        variant("description: bad inputs\n", ""),
        "description",
        "it is required",
    ),
    lab("no-servers", variant("servers:\n", "servers: []\nx:\n"), "unknown key"),
    lab("key-size", variant("issuer: ca\n", "issuer: ca\n    key_size: 3000\n"), "1024, 2048"),
    lab("issuer-unknown", variant("issuer: ca", "issuer: nope"), "the id of a certificate"),
    lab(
        "ca-twice",
        variant(
            "certificate_authorities:\n",
            "certificate_authorities:\n  - {id: ca, subject: "
            '"CN=X", valid: {from_days: 0, to_days: 1}}\n',
        ),
        "a unique CA id",
    ),
    lab(
        "queue-negative",
        variant("{name: EDGE01, role: Edge}", "{name: EDGE01, role: Edge, queues: {Q: -1}}"),
        "servers[1].queues.Q",
        "from 0 to 1000000",
    ),
    lab(
        "traffic-nan",
        variant("{name: EDGE01, role: Edge}", "{name: EDGE01, role: Edge, traffic: {Q: .nan}}"),
        "servers[1].traffic.Q",
    ),
    lab(
        "service-state",
        variant("role: Edge}", "role: Edge, services: {ADAM_MSExchange: Broken}}"),
        "one of Running, Paused, Stopped",
    ),
    lab(
        "send-connector-server",
        GOOD + "send_connectors:\n  - {name: Out, address_spaces: [x], "
        "source_transport_servers: [EDGE09]}\n",
        "found 'EDGE09', expected names of servers",
    ),
    lab(
        "subscription-twice",
        GOOD + "subscriptions: [{edge: EDGE01}, {edge: EDGE01}]\n",
        "one subscription each",
    ),
    lab("not-utf8", GOOD.replace("bad inputs", "schön").encode("latin-1"), "not UTF-8 text"),
    lab("binary", b"\x00\x01\x02PFX", "NUL character", "binary file"),
    lab("alias-bomb", BOMB, "alias bomb"),
    lab("recursive-alias", GOOD + "x: &r {a: *r}\n", "recursive alias"),
    lab("folder", FOLDER, "is a folder"),
    lab("fifo", FIFO, "not a regular file"),
    lab("empty", "", "(top level): found an empty value"),
    Case(
        "unknown-scenario",
        ("lab", "start", "--dir", "{w}/lab", "--scenario", "nonexistent"),
        2,
        ("no scenario 'nonexistent'", "shipped scenarios: duplicate-subject"),
    ),
    Case(
        "demo-bad-scenario",
        ("demo", "--outputs", "{w}/out", "--scenario", S),
        2,
        ("lab_files[0]", "inside the lab folder"),
        {S: variant("[renewal/EDGE01.pfx]", "['../../evil.pfx']")},
    ),
    Case(
        "demo-scenario-without-renewal",
        ("demo", "--outputs", "{w}/out", "--scenario", S),
        2,
        ("scenario s: no renewed certificate for EDGE01", "lab_files: [renewal/EDGE01.pfx]"),
        {S: variant("    lab_files: [renewal/EDGE01.pfx]\n", "")},
    ),
    Case(
        "demo-shipped-scenario-without-renewal",
        ("demo", "--outputs", "{w}/out", "--scenario", "healthy"),
        2,
        ("scenario healthy: no renewed certificate for EDGE01, EDGE02", "use seed-incident"),
    ),
    Case(
        "demo-outputs-is-a-file",
        ("demo", "--outputs", "{w}/out/run"),
        2,
        ("--outputs", "is a file, not a folder"),
        {"out": "not a folder\n"},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_scenarios(case: Case, tmp_path, monkeypatch, capsys):
    run_case(case, tmp_path, monkeypatch, capsys)


def test_the_good_scenario_is_accepted(tmp_path):
    """The variants above differ from a scenario that loads, so each refusal is its own."""
    path = tmp_path / S
    path.write_text(GOOD)
    scenario = load_scenario(path)
    assert [s.name for s in scenario.servers] == ["EX01", "EDGE01"]
    assert scenario.certificates[0].lab_files == ["renewal/EDGE01.pfx"]


def test_an_idna_san_is_issued_as_its_a_label(tmp_path):
    path = tmp_path / S
    path.write_text(variant("[mail.contoso.com]", "['bücher.contoso.com']"))
    assert load_scenario(path).certificates[0].domains == ["xn--bcher-kva.contoso.com"]
