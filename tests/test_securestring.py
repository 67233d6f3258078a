"""SecureText parameters travel as PSRP SecureStrings (session key exchange) into the lab, and the
secret shows up in no log, repr or error text."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgebook.config import WinRMEndpoint, load_inventory
from edgebook.errors import EdgebookError
from edgebook.exchange.errors import ExchangeCommandError
from edgebook.exchange.secure import SecureText
from edgebook.exchange.shell import ExchangeShell
from edgebook.lab import control, folder
from edgebook.lab.backend import LabBackend
from edgebook.lab.org.store import LabStore
from edgebook.lab.winrm.inprocess import connect_in_process
from edgebook.lab.winrm.wsman import WSManEndpoint
from tests.support.lab import PASSWORD, lab_copy

WINRM = WinRMEndpoint("127.0.0.1", 5985, "wsman", "http", "basic", "Microsoft.PowerShell")
WRONG = "Not-The-Pfx-Passw0rd"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[LabStore, ExchangeShell]]:
    store = lab_copy("seed-incident", tmp_path / "lab")
    endpoint = WSManEndpoint(LabBackend(store), "EDGE01", path="wsman")
    wsman = connect_in_process(endpoint, "EDGE01\\Administrator", PASSWORD)
    with ExchangeShell("EDGE01", WINRM, None, role="Edge", lab=True, wsman=wsman) as shell:
        yield store, shell
    endpoint.close()


def renewal(store: LabStore) -> bytes:
    return (store.dir / "renewal" / "EDGE01.pfx").read_bytes()


def thumbprints(store: LabStore) -> set[str]:
    return {entry.thumbprint for entry in store.read().server("EDGE01").certificates}


def test_import_with_a_securestring_password(lab, caplog):
    store, shell = lab
    before = thumbprints(store)
    caplog.set_level(logging.DEBUG)
    shell.run("Import-ExchangeCertificate", FileData=renewal(store), Password=SecureText(PASSWORD))
    assert len(thumbprints(store) - before) == 1
    assert PASSWORD not in caplog.text
    # the key exchange happens once per session
    requests = shell.stats.wsman_requests
    with pytest.raises(ExchangeCommandError, match="already exists"):
        shell.run(
            "Import-ExchangeCertificate", FileData=renewal(store), Password=SecureText(PASSWORD)
        )
    assert shell.stats.wsman_requests - requests <= 3  # Command, Receive, Signal: no new keys


def test_a_wrong_password_gets_exchanges_error_without_the_secret(lab, caplog):
    store, shell = lab
    before = thumbprints(store)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ExchangeCommandError) as raised:
        shell.run("Import-ExchangeCertificate", FileData=renewal(store), Password=SecureText(WRONG))
    message = str(raised.value)
    assert "requires a different password than the one entered" in message
    assert WRONG not in message and WRONG not in repr(raised.value)
    assert WRONG not in caplog.text
    assert thumbprints(store) == before


def test_a_plain_text_password_is_refused_before_anything_is_sent(lab):
    store, shell = lab
    requests = shell.stats.wsman_requests
    with pytest.raises(EdgebookError, match="must be a SecureText") as raised:
        shell.run("Import-ExchangeCertificate", FileData=renewal(store), Password=PASSWORD)
    assert PASSWORD not in str(raised.value)
    assert shell.stats.wsman_requests == requests


def test_securetext_never_shows_its_value():
    secret = SecureText(PASSWORD)
    assert (
        PASSWORD not in repr(secret) and PASSWORD not in str(secret) and PASSWORD not in f"{secret}"
    )
    assert secret.reveal() == PASSWORD


def test_securestring_over_the_daemon(tmp_path: Path):
    directory = tmp_path / "lab"
    control.start(directory, "seed-incident")
    try:
        inventory = load_inventory(directory / "inventory.yaml")
        password, _ = folder.lab_password(directory)  # the daemon's lab: its renewal PFX too
        store = LabStore(directory)
        before = thumbprints(store)
        with ExchangeShell.for_server(inventory, "EDGE01") as shell:
            with pytest.raises(ExchangeCommandError, match="different password"):
                shell.run(
                    "Import-ExchangeCertificate",
                    FileData=renewal(store),
                    Password=SecureText(WRONG),
                )
            shell.run(
                "Import-ExchangeCertificate", FileData=renewal(store), Password=SecureText(password)
            )
        assert len(thumbprints(LabStore(directory)) - before) == 1
    finally:
        control.stop(directory)
