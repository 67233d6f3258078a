"""Parameters file validation: every error names the file and the key; secrets stay out."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from edgebook.config import EdgeServer, MailboxServer, load_inventory
from edgebook.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "parameters" / "example-contoso.yaml"

BASE: dict[str, Any] = {
    "organisation": {
        "name": "Contoso",
        "mailbox_servers": [
            {
                "name": "MBX01",
                "fqdn": "mbx01.contoso.com",
                "credential": {"username": "admin@contoso.com", "password": "env:MBX_PW"},
            }
        ],
    },
    "edges": [
        {
            "name": "EDGE01",
            "fqdn": "edge01.contoso.com",
            "credential": {"username": "EDGE01\\Administrator", "password": "prompt"},
        }
    ],
}


def write(tmp_path: Path, document: Any, name: str = "inventory.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document) if not isinstance(document, str) else document)
    return path


def variant(**changes: Any) -> dict[str, Any]:
    """BASE with changes given as dotted paths (edges.0.winrm = {...})."""
    document = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        keys = dotted.split("__")
        node: Any = document
        for key in keys[:-1]:
            node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
        last = keys[-1]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return document


def expect_error(tmp_path: Path, document: Any, key: str, *fragments: str) -> ConfigError:
    path = write(tmp_path, document)
    with pytest.raises(ConfigError) as info:
        load_inventory(path)
    message = str(info.value)
    assert str(path) in message
    assert key in message
    for fragment in fragments:
        assert fragment in message
    return info.value


def test_example_file_loads():
    inventory = load_inventory(EXAMPLE)
    assert [server.name for server in inventory.organisation.mailbox_servers] == ["MBX01", "MBX02"]
    assert [edge.name for edge in inventory.edges] == ["EDGE01", "EDGE02"]
    assert inventory.lab is False
    assert inventory.change.hybrid is True
    assert inventory.change.tls_capabilities == ("AcceptCloudServicesMail",)
    mbx02 = inventory.mailbox_server("mbx02")
    assert mbx02.credential == inventory.mailbox_server("MBX01").credential  # YAML anchor
    assert mbx02.winrm.url == "http://mbx02.contoso.com:80/PowerShell"


def test_example_documents_every_key_with_a_comment():
    lines = [line for line in EXAMPLE.read_text().splitlines() if line.strip()]
    uncommented = [
        line
        for previous, line in zip(["#", *lines], lines, strict=False)
        if ":" in line
        and not line.lstrip().startswith("#")
        and "#" not in line
        and not previous.lstrip().startswith("#")
    ]
    assert uncommented == []


def test_defaults_by_role(tmp_path: Path):
    inventory = load_inventory(write(tmp_path, BASE))
    mailbox = inventory.mailbox_server("MBX01")
    edge = inventory.edge("EDGE01")
    assert isinstance(mailbox, MailboxServer) and isinstance(edge, EdgeServer)
    assert mailbox.winrm.url == "http://mbx01.contoso.com:80/PowerShell"
    assert mailbox.winrm.configuration_name == "Microsoft.Exchange"
    assert mailbox.winrm.auth == "kerberos"
    assert edge.winrm.url == "https://edge01.contoso.com:5986/wsman"
    assert edge.winrm.configuration_name == "Microsoft.PowerShell"
    assert edge.winrm.cert_validation is True
    assert str(edge.smtp) == "edge01.contoso.com:25"
    assert str(edge.ldaps) == "edge01.contoso.com:50636"
    assert inventory.organisation.ad_site == "Default-First-Site-Name"
    assert inventory.change.warning_days == 30


def test_edge_http_default_port(tmp_path: Path):
    document = variant(edges__0__winrm={"scheme": "http"})
    assert load_inventory(write(tmp_path, document)).edge("EDGE01").winrm.port == 5985


def test_relative_ca_file_resolves_against_the_file(tmp_path: Path):
    folder = tmp_path / "params"
    folder.mkdir()
    document = variant(edges__0__winrm={"ca_file": "ca/winrm.pem"})
    inventory = load_inventory(write(folder, document))
    winrm = inventory.edge("EDGE01").winrm
    assert winrm.ca_file == folder / "ca" / "winrm.pem"
    assert winrm.cert_validation == str(folder / "ca" / "winrm.pem")


def test_relative_file_reference_resolves_against_the_file(tmp_path: Path):
    document = variant(edges__0__credential={"username": "lab", "password": "file:secrets/edge"})
    inventory = load_inventory(write(tmp_path, document))
    credential = inventory.edge("EDGE01").credential
    assert credential is not None
    assert credential.password == f"file:{tmp_path / 'secrets' / 'edge'}"


@pytest.mark.parametrize(
    ("changes", "key", "fragments"),
    [
        ({"edges__0__winrm": {"auth": "digest"}}, "edges[0].winrm.auth", ("'digest'", "kerberos")),
        ({"edges__0__winrm": {"port": 70000}}, "edges[0].winrm.port", ("70000", "1 to 65535")),
        ({"edges__0__winrm": {"scheme": "ftp"}}, "edges[0].winrm.scheme", ("http, https",)),
        ({"edges__0__fqdn": "not a host"}, "edges[0].fqdn", ("DNS name",)),
        ({"edges__0__smtp": {"port": "25"}}, "edges[0].smtp.port", ("'25'",)),
        ({"change": {"warning_days": 0}}, "change.warning_days", ("from 1",)),
        ({"change": {"hybrid": "yes please"}}, "change.hybrid", ("true or false",)),
        ({"change": {"expected_fqdns": ["mail contoso"]}}, "change.expected_fqdns[0]", ()),
        (
            {"change": {"tls_domain_capabilities": "mail.protection.outlook.com:Whatever"}},
            "change.tls_domain_capabilities",
            ("AcceptCloudServicesMail", "AcceptOorgProtocol"),
        ),
        ({"lab": "no"}, "lab", ("true or false",)),
        ({"edges": []}, "edges", ("at least one entry",)),
    ],
)
def test_invalid_values_name_file_key_found_and_expected(tmp_path, changes, key, fragments):
    expect_error(tmp_path, variant(**changes), key, "found", "expected", *fragments)


def test_missing_required_key(tmp_path: Path):
    document = variant()
    del document["edges"][0]["fqdn"]
    expect_error(tmp_path, document, "edges[0].fqdn", "missing")


def test_missing_credential_is_refused_except_for_certificate_auth(tmp_path: Path):
    document = variant()
    del document["edges"][0]["credential"]
    expect_error(tmp_path, document, "edges[0].credential", "mapping")


def test_unknown_key_is_refused_with_a_suggestion(tmp_path: Path):
    document = variant(edges__0__winrm={"autth": "ntlm"})
    expect_error(tmp_path, document, "edges[0].winrm.autth", "unknown key", "did you mean 'auth'")


def test_duplicate_yaml_key_is_refused(tmp_path: Path):
    text = yaml.safe_dump(BASE) + "lab: true\nlab: false\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match="given twice"):
        load_inventory(path)


def test_duplicate_edge_names_are_refused(tmp_path: Path):
    document = variant()
    document["edges"].append(copy.deepcopy(document["edges"][0]))
    document["edges"][1]["name"] = "edge01"
    expect_error(tmp_path, document, "edges[1].name", "edges[0].name", "unique")


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"edges__0__credential": {"username": "a", "password": "Hunter2!"}}, "password"),
        (
            {"edges__0__winrm": {"certificate_key_password": "Hunter2!"}},
            "edges[0].winrm.certificate_key_password",
        ),
        ({"organisation__mailbox_servers__0__secret": "Hunter2!"}, "mailbox_servers[0].secret"),
        ({"change": {"smtp_passphrase": "Hunter2!"}}, "change.smtp_passphrase"),
    ],
)
def test_literal_secrets_are_refused_and_not_echoed(tmp_path, changes, key):
    error = expect_error(tmp_path, variant(**changes), key, "literal secret", "env:NAME")
    assert "Hunter2!" not in str(error)


def test_malformed_reference_is_refused(tmp_path: Path):
    document = variant(edges__0__credential={"username": "a", "password": "env:"})
    expect_error(tmp_path, document, "edges[0].credential.password", "environment variable")


def test_basic_over_http_is_refused_outside_the_lab(tmp_path: Path):
    winrm = {"host": "127.0.0.1", "scheme": "http", "auth": "basic"}
    expect_error(tmp_path, variant(edges__0__winrm=winrm), "edges[0].winrm.auth", "lab: true")
    document = variant(lab=True, edges__0__winrm={**winrm, "host": "edge01.contoso.com"})
    expect_error(tmp_path, document, "edges[0].winrm.auth", "loopback")
    assert load_inventory(write(tmp_path, variant(lab=True, edges__0__winrm=winrm))).lab


def test_certificate_auth_rules(tmp_path: Path):
    http = {"scheme": "http", "auth": "certificate"}
    expect_error(tmp_path, variant(edges__0__winrm=http), "edges[0].winrm.auth", "https")
    expect_error(
        tmp_path,
        variant(edges__0__winrm={"auth": "certificate"}),
        "edges[0].winrm.certificate_pem",
    )
    document = variant(
        edges__0__winrm={
            "auth": "certificate",
            "certificate_pem": "c.pem",
            "certificate_key_pem": "k.pem",
            "certificate_key_password": "env:KEY_PW",
        }
    )
    del document["edges"][0]["credential"]
    edge = load_inventory(write(tmp_path, document)).edge("EDGE01")
    assert edge.credential is None
    assert edge.winrm.certificate_pem == tmp_path / "c.pem"
    assert edge.winrm.certificate_key_password == "env:KEY_PW"
    expect_error(
        tmp_path,
        variant(edges__0__winrm={"certificate_pem": "c.pem"}),
        "edges[0].winrm.certificate_pem",
        "only with auth: certificate",
    )


def test_verify_tls_false_must_be_explicit_and_consistent(tmp_path: Path):
    document = variant(edges__0__winrm={"verify_tls": False})
    assert load_inventory(write(tmp_path, document)).edge("EDGE01").winrm.cert_validation is False
    both = variant(edges__0__winrm={"verify_tls": False, "ca_file": "ca.pem"})
    expect_error(tmp_path, both, "edges[0].winrm.verify_tls")
    on_http = variant(edges__0__winrm={"scheme": "http", "verify_tls": False})
    expect_error(tmp_path, on_http, "edges[0].winrm.verify_tls", "scheme: http")


def test_unknown_server_lists_known_names(tmp_path: Path):
    inventory = load_inventory(write(tmp_path, BASE))
    with pytest.raises(ConfigError, match=r"no Edge named 'EDGE09' \(known: EDGE01\)"):
        inventory.edge("EDGE09")
    assert inventory.server("mbx01").role == "Mailbox"
    assert inventory.server("EDGE01").role == "Edge"


def test_not_yaml_and_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_inventory(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_inventory(write(tmp_path, "edges: [\n"))
    expect_error(tmp_path, "", "(top level)", "mapping")


def test_inventory_is_frozen(tmp_path: Path):
    inventory = load_inventory(write(tmp_path, BASE))
    with pytest.raises(AttributeError):
        inventory.lab = True  # type: ignore[misc]


def test_folder_or_path_under_a_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="is a folder, not a parameters file"):
        load_inventory(tmp_path)
    plain = write(tmp_path, BASE)
    with pytest.raises(ConfigError, match="does not exist"):
        load_inventory(plain / "inventory.yaml")


def test_optional_list_of_wrong_type_says_a_list(tmp_path: Path):
    document = variant(change={"expected_fqdns": "mail.contoso.com"})
    error = expect_error(tmp_path, document, "change.expected_fqdns", "expected a list")
    assert "at least 0" not in str(error)
    expect_error(tmp_path, variant(edges=[]), "edges", "a list of at least one entry")


def test_bracketed_ipv6_hosts_are_stored_without_brackets(tmp_path: Path):
    document = variant(
        edges__0__winrm={"host": "[::1]"},
        edges__0__smtp={"host": "[2001:db8::25]"},
        edges__0__ldaps={"host": "::1"},
    )
    edge = load_inventory(write(tmp_path, document)).edges[0]
    assert edge.winrm.host == "::1"
    assert edge.winrm.url == "https://[::1]:5986/wsman"
    assert (edge.smtp.host, edge.ldaps.host) == ("2001:db8::25", "::1")
    expect_error(tmp_path, variant(edges__0__smtp={"host": "[10.0.0.1]"}), "edges[0].smtp.host")
    expect_error(tmp_path, variant(edges__0__smtp={"host": "[edge01]"}), "edges[0].smtp.host")
