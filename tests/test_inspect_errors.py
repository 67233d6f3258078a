"""Inspect and check: user errors are one line, slow servers are bounded, probes reported apart."""

from __future__ import annotations

import dataclasses
import getpass
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import yaml

from edgebook.cli import main
from edgebook.config import (
    CredentialRef,
    EdgeServer,
    Inventory,
    MailboxServer,
    load_inventory,
    resolve_inventory,
)
from edgebook.errors import ConfigError
from edgebook.phases.inspect import inspect
from edgebook.secrets import SecretError


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (kernel backlog) and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(32)
        yield listener.getsockname()[1]


def inventory_file(tmp_path: Path, port: int, **change: object) -> Path:
    winrm = {"host": "127.0.0.1", "port": port, "scheme": "http", "auth": "basic"}
    credential = {"username": "admin", "password": "env:EDGEBOOK_TEST_PW"}
    document = {
        "lab": True,
        "organisation": {
            "name": "Lab",
            "mailbox_servers": [
                {
                    "name": "MBX01",
                    "fqdn": "mbx01.lab.test",
                    "winrm": winrm,
                    "credential": credential,
                }
            ],
        },
        "edges": [
            {
                "name": "EDGE01",
                "fqdn": "edge01.lab.test",
                "winrm": winrm,
                "credential": credential,
                "smtp": {"host": "127.0.0.1", "port": port},
                "ldaps": {"host": "127.0.0.1", "port": port},
            }
        ],
    }
    if change:
        document["change"] = change
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


_Server = TypeVar("_Server", MailboxServer, EdgeServer)


def replace_references(inventory: Inventory, reference: str) -> Inventory:
    """The inventory with every password reference replaced."""

    def server(item: _Server) -> _Server:
        assert item.credential is not None, f"{item.name} has no credential to replace"
        credential = CredentialRef(item.credential.username, reference)
        return dataclasses.replace(item, credential=credential)

    organisation = dataclasses.replace(
        inventory.organisation,
        mailbox_servers=tuple(map(server, inventory.organisation.mailbox_servers)),
    )
    edges = tuple(map(server, inventory.edges))
    return dataclasses.replace(inventory, organisation=organisation, edges=edges)


def test_a_folder_is_not_a_parameters_file(tmp_path: Path, capsys):
    with pytest.raises(ConfigError, match="is a folder, not a parameters file"):
        resolve_inventory(tmp_path)
    assert main(["inspect", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a folder" in err


def test_bad_trust_anchors_name_the_key_before_any_connection(tmp_path: Path):
    (tmp_path / "roots.pem").write_text("not a certificate\n")
    inventory = load_inventory(inventory_file(tmp_path, 1, trust_anchors="roots.pem"))
    connected: list[str] = []

    def factory(inventory: object, name: str) -> object:
        connected.append(name)
        raise AssertionError("no connection may be tried")

    with pytest.raises(ConfigError, match=r"change\.trust_anchors: .*roots\.pem") as info:
        inspect(inventory, shell_factory=factory)  # type: ignore[arg-type]
    assert str(inventory.path) in str(info.value)
    assert connected == []


def test_silent_servers_are_bounded_and_probes_reported_apart(tmp_path, silent_port, monkeypatch):
    monkeypatch.setenv("EDGEBOOK_TEST_PW", "not-used-by-a-silent-port")
    inventory = load_inventory(inventory_file(tmp_path, silent_port))
    started = time.monotonic()
    result = inspect(inventory, timeout=1.5)
    assert time.monotonic() - started < 6
    unreachable = {f.server: f for f in result.findings if f.slug == "server-unreachable"}
    assert set(unreachable) == {"MBX01", "EDGE01"}
    edge = unreachable["EDGE01"]
    assert "call timeout" in edge.evidence["cause"]
    assert [p["target"] for p in edge.evidence["probes"]] == [f"127.0.0.1:{silent_port}"] * 2
    assert all(p["error"].startswith("timed out after 1.5 s") for p in edge.evidence["probes"])
    assert "Probes from here: SMTP" in edge.message and "; LDAPS" in edge.message
    assert "probes" not in unreachable["MBX01"].evidence


def test_check_bounds_its_wait_and_says_critical(tmp_path, silent_port, monkeypatch, capsys):
    monkeypatch.setenv("EDGEBOOK_TEST_PW", "x")
    path = inventory_file(tmp_path, silent_port)
    started = time.monotonic()
    assert main(["check", str(path), "--timeout", "1"]) == 2
    assert time.monotonic() - started < 6
    out = capsys.readouterr().out
    assert out.startswith("EDGEBOOK CRITICAL - ") and out.count("\n") == 1


@pytest.mark.parametrize("argv", [["check"], ["check", "x.yaml", "--timeout", "soon"]])
def test_check_usage_errors_are_unknown_on_one_line(argv: list[str], capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 3
    out = capsys.readouterr().out
    assert out.startswith("EDGEBOOK UNKNOWN - usage: ") and out.count("\n") == 1


def test_inspect_refuses_a_timeout_that_is_not_positive(tmp_path: Path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["inspect", str(tmp_path / "x.yaml"), "--timeout", "0"])
    assert info.value.code == 2
    assert "a number of seconds above 0 and at most 86400" in capsys.readouterr().err


def test_secrets_are_resolved_first_once_per_reference_and_in_turn(
    tmp_path, silent_port, monkeypatch
):
    inventory = load_inventory(inventory_file(tmp_path, silent_port))
    inventory = replace_references(inventory, "prompt")
    asked: list[str] = []

    def kernel_getpass(prompt: str = "") -> str:
        asked.append(prompt)
        return "typed"

    kernel_getpass.__module__ = "ipykernel.kernelbase"  # input is forwarded, no terminal needed
    monkeypatch.setattr(getpass, "getpass", kernel_getpass)
    inspect(inventory, timeout=1)
    assert len(asked) == 1  # MBX01 and EDGE01 share user and reference
    assert asked[0].startswith("password of admin for MBX01")


def test_a_missing_secret_stops_before_any_connection(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGEBOOK_TEST_PW", raising=False)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(0.3)
        inventory = load_inventory(inventory_file(tmp_path, listener.getsockname()[1]))
        with pytest.raises(SecretError, match="EDGEBOOK_TEST_PW is not set"):
            inspect(inventory, timeout=1)
        with pytest.raises(TimeoutError):
            listener.accept()  # neither WinRM nor a probe connected
