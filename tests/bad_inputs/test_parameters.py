"""Bad parameters files and options for `edgebook inspect` and `edgebook check`."""

from __future__ import annotations

import pytest

from tests.bad_inputs.corpus import FIFO, FOLDER, SECRET, SECRET_ENV, Case, run_case

GOOD = f"""\
organisation:
  name: Contoso
  mailbox_servers:
    - name: MBX01
      fqdn: mbx01.contoso.com
      credential: {{username: admin, password: env:{SECRET_ENV}}}
edges:
  - name: EDGE01
    fqdn: edge01.contoso.com
    credential: {{username: admin, password: env:{SECRET_ENV}}}
"""
EDGE_CREDENTIAL = f"    credential: {{username: admin, password: env:{SECRET_ENV}}}\n"


def edge(extra: str) -> str:
    """GOOD with lines added to EDGE01 (indented as its keys)."""
    return GOOD + "".join(f"    {line}\n" for line in extra.splitlines())


def with_credential(text: str) -> str:
    """GOOD with EDGE01's (the last) credential line replaced."""
    head, _, tail = GOOD.rpartition(EDGE_CREDENTIAL)
    return head + text + tail


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


def inspect(id: str, files: dict, code: int, *says: str, argv: tuple = ()) -> Case:
    return Case(id, ("inspect", "p.yaml", *argv), code, says, files)


P = "p.yaml"
CASES = [
    Case("missing-file", ("inspect", "nope.yaml"), 2, ("nope.yaml", "does not exist", "check")),
    inspect("folder", {P: FOLDER}, 2, "is a folder", "give the path of the file"),
    inspect("fifo", {P: FIFO}, 2, "not a regular file", "give the path of a parameters file"),
    Case("device", ("inspect", "/dev/zero"), 2, ("not a regular file",)),
    inspect("png", {P: b"\x89PNG\r\n\x1a\n\0\0"}, 2, "not UTF-8 text (byte 0 is 0x89)", "UTF-8"),
    inspect(
        "latin-1",
        {P: GOOD.replace("Contoso", "Contosö").encode("latin-1")},
        2,
        "not UTF-8 text (byte 28 is 0xf6)",
        "save it as UTF-8",
    ),
    inspect("nul", {P: GOOD + "\0\n"}, 2, "NUL character", "binary file"),
    inspect("huge", {P: "#" * (2 * 1024 * 1024)}, 2, "2.0 MiB", "more than the 1.0 MiB"),
    inspect("empty", {P: ""}, 2, "(top level): found an empty value", "expected a mapping"),
    inspect("list", {P: "- a\n- b\n"}, 2, "found a list, expected a mapping with keys"),
    inspect("syntax", {P: "organisation: [\n"}, 2, "not valid YAML (line 2"),
    inspect("tab", {P: "organisation:\n\tname: x\n"}, 2, "not valid YAML (line 2"),
    inspect("twice", {P: GOOD + "edges: []\n"}, 2, "the key 'edges' is given twice"),
    inspect("alias-bomb", {P: BOMB}, 2, "more than 100000 values", "alias bomb"),
    inspect("recursive-alias", {P: "a: &a [*a]\n"}, 2, "recursive alias"),
    inspect("deep", {P: "a: " + "[" * 2000 + "]" * 2000 + "\n"}, 2, "nested"),
    inspect("list-key", {P: "? [a]\n: b\n"}, 2, "a key must be a plain value"),
    inspect("int-key", {P: GOOD + "1: x\n"}, 2, "1: unknown key", "allowed here: lab"),
    inspect("typo", {P: GOOD.replace("edges:", "edgs:")}, 2, "did you mean 'edges'"),
    inspect(
        "literal-password",
        {P: with_credential(f"    credential: {{username: a, password: '{SECRET}'}}\n")},
        2,
        "edges[0].credential.password: a literal secret",
        "env:NAME",
    ),
    inspect(
        "credential-string",
        {P: with_credential(f"    credential: '{SECRET}'\n")},
        2,
        "edges[0].credential: a literal secret",
    ),
    inspect(
        "numeric-password",
        {P: with_credential("    credential: {username: a, password: 31337}\n")},
        2,
        "a literal secret",
    ),
    inspect(
        "key-password",
        {P: edge(f"winrm: {{auth: certificate, certificate_key_password: '{SECRET}'}}")},
        2,
        "certificate_key_password: a literal secret",
    ),
    inspect(
        "password-mapping",
        {P: with_credential(f"    credential: {{username: a, password: {{x: '{SECRET}'}}}}\n")},
        2,
        "credential.password: found a value (not shown), expected a secret reference",
    ),
    inspect(
        "env-reference-empty",
        {P: with_credential("    credential: {username: a, password: 'env:'}\n")},
        2,
        "env: needs an environment variable name",
    ),
    inspect(
        "unknown-reference",
        {P: with_credential(f"    credential: {{username: a, password: 'vault:{SECRET}'}}\n")},
        2,
        "a literal secret",
    ),
    inspect("port-zero", {P: edge("smtp: {port: 0}")}, 2, "a whole number from 1 to 65535"),
    inspect("port-nan", {P: edge("smtp: {port: .nan}")}, 2, "a whole number from 1 to 65535"),
    inspect("port-inf", {P: edge("ldaps: {port: 1e999}")}, 2, "a whole number from 1 to 65535"),
    inspect(
        "warning-days",
        {P: GOOD + "change: {warning_days: 99999}\n"},
        2,
        "change.warning_days",
        "from 1 to 3650",
    ),
    inspect(
        "server-name",
        {P: GOOD.replace("name: EDGE01", "name: EDGE 01")},
        2,
        "a server name (letters, digits, -, _)",
    ),
    inspect(
        "duplicate-edge",
        {P: GOOD.replace("name: EDGE01", "name: MBX01")},
        2,
        "edges[0].name: found 'MBX01' again",
        "unique server name",
    ),
    inspect(
        "unicode-fqdn",
        {P: GOOD.replace("edge01.contoso.com", "édge01.contoso.com")},
        2,
        "edges[0].fqdn",
        "a DNS name or an IP address",
    ),
    inspect(
        "basic-http",
        {P: edge("winrm: {scheme: http, auth: basic}")},
        2,
        "Basic over plain http is refused",
    ),
    inspect(
        "verify-off-with-ca",
        {P: edge("winrm: {verify_tls: false, ca_file: pki/ca.pem}")},
        2,
        "true when a ca_file is given",
    ),
    inspect(
        "der-ca-file",
        {P: edge("winrm: {ca_file: pki/ca.der}")},
        2,
        "edges[0].winrm.ca_file",
        "binary (DER or PKCS#12)",
        "openssl x509 -inform der",
    ),
    inspect(
        "missing-ca-file",
        {P: edge("winrm: {ca_file: nowhere.pem}")},
        2,
        "edges[0].winrm.ca_file",
        "does not exist",
    ),
    inspect(
        "trust-anchors-text",
        {P: GOOD + "change: {trust_anchors: notes.txt}\n", "notes.txt": "just text\n"},
        2,
        "change.trust_anchors",
        "give a PEM file of the root CAs",
    ),
    inspect(
        "capabilities",
        {P: GOOD + "change: {tls_domain_capabilities: nonsense}\n"},
        2,
        "domain:Capability",
    ),
    inspect(
        "expected-fqdn",
        {P: GOOD + "change: {expected_fqdns: ['not a name']}\n"},
        2,
        "change.expected_fqdns[0]",
        "a DNS name such as mail.contoso.com",
    ),
    inspect("unknown-edge", {P: GOOD}, 2, "no Edge named 'EDGE09'", argv=("--edge", "EDGE09")),
    inspect(
        "warning-days-option",
        {P: GOOD},
        2,
        "--warning-days must be 1 or more",
        argv=("--warning-days", "0"),
    ),
    Case(
        "timeout-option",
        ("inspect", P, "--timeout", "-1"),
        2,
        ("--timeout", "above 0"),
        {P: GOOD},
        usage=True,
    ),
    Case(
        "unknown-option",
        ("inspect", P, "--colour"),
        2,
        ("unrecognized arguments: --colour",),
        {P: GOOD},
        usage=True,
    ),
    inspect(
        "lab-reference-extra",
        {P: f"lab_dir: x\npassword: '{SECRET}'\n"},
        2,
        "a lab reference holds only lab_dir and scenario",
    ),
]


def check(id: str, files: dict, *says: str, argv: tuple = ()) -> Case:
    return Case(id, ("check", P, *argv), 3, says, files, stream="out")


CHECK_CASES = [
    check("check-missing", {}, "p.yaml: the parameters file does not exist"),
    check("check-not-utf8", {P: b"\xff\xfe"}, "not UTF-8 text"),
    check(
        "check-literal-password",
        {P: with_credential(f"    credential: {{username: a, password: '{SECRET}'}}\n")},
        "a literal secret",
    ),
    check("check-alias-bomb", {P: BOMB}, "alias bomb"),
    check(
        "check-unknown-option",
        {P: GOOD},
        "usage: unrecognized arguments: --bogus",
        argv=("--bogus",),
    ),
    check("check-bad-timeout", {P: GOOD}, "usage: argument --timeout", argv=("--timeout", "soon")),
    check("check-der-ca-file", {P: edge("winrm: {ca_file: pki/ca.der}")}, "only PEM", "openssl"),
    check("check-unknown-edge", {P: GOOD}, "no Edge named 'EDGE09'", argv=("--edge", "EDGE09")),
]


@pytest.mark.parametrize("case", CASES + CHECK_CASES, ids=lambda c: c.id)
def test_bad_parameters(case: Case, tmp_path, monkeypatch, capsys):
    run_case(case, tmp_path, monkeypatch, capsys)


def test_the_corpus_feeds_the_secret_itself():
    """The no-secret-in-output check above is meaningful: these inputs hold the secret."""
    holding = [c.id for c in CASES + CHECK_CASES if SECRET in str(c.files.get(P, ""))]
    assert len(holding) >= 6, holding
