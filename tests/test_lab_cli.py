"""`edgebook lab ...` end to end: a background lab, reached by pypsrp and TLS, and its commands."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import os
import shutil
import smtplib
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from edgebook import certs, probes
from edgebook.cli import main
from edgebook.lab import channel, control, folder
from edgebook.lab.org.listener_state import listener_state
from edgebook.lab.org.store import LabStore


def edgebook(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgebook.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    directory = tmp_path_factory.mktemp("lab") / "lab"
    env = {k: v for k, v in os.environ.items() if k != "EDGEBOOK_LAB_PASSWORD"}
    done = edgebook("lab", "start", "--dir", str(directory), "--scenario", "healthy", env=env)
    assert done.returncode == 0, done.stderr
    yield directory
    edgebook("lab", "stop", "--dir", str(directory))


def status(directory: Path) -> dict:
    done = edgebook("lab", "status", "--dir", str(directory), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_status_describes_every_server(lab):
    document = status(lab)
    assert document["scenario"] == "healthy"
    roles = {s["name"]: s["role"] for s in document["servers"]}
    assert sorted(roles.values()) == ["Edge", "Edge", "Mailbox"]
    for server in document["servers"]:
        wsman = server["wsman"]
        assert wsman["url"].startswith("https://127.0.0.1:")
        assert wsman["auth"] == "basic"
        assert Path(wsman["ca_file"]).is_file()
        if server["role"] == "Edge":
            assert wsman["configuration_name"] == "Microsoft.PowerShell"
            assert server["smtp"].startswith("127.0.0.1:")
            assert server["ldaps"].startswith("127.0.0.1:")
        else:
            assert wsman["configuration_name"] == "Microsoft.Exchange"
            assert server["smtp"] is None


def test_generated_password_stays_private(lab):
    password_file = lab / ".password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    password = password_file.read_text().strip()
    inventory = (lab / "inventory.yaml").read_text()
    assert password not in inventory
    assert password not in json.dumps(status(lab))


def _pypsrp(server: dict, password: str) -> list:
    url = server["wsman"]
    port = int(url["url"].rsplit(":", 1)[1].split("/", 1)[0])
    wsman = WSMan(
        "127.0.0.1",
        port=port,
        path=url["url"].rsplit("/", 1)[1],
        auth="basic",
        username=url["username"],
        password=password,
        cert_validation=url["ca_file"],
    )
    with wsman, RunspacePool(wsman, configuration_name=url["configuration_name"]) as pool:
        ps = PowerShell(pool)
        if server["role"] == "Edge":
            ps.add_cmdlet("Add-PSSnapin").add_parameter(
                "Name", "Microsoft.Exchange.Management.PowerShell.SnapIn"
            )
            ps.add_statement()
        ps.add_cmdlet("Get-ExchangeCertificate")
        output = ps.invoke()
        assert not ps.had_errors
        return output


def test_plain_pypsrp_sees_exchange_shaped_objects(lab):
    password = (lab / ".password").read_text().strip()
    for server in status(lab)["servers"]:
        certificates = _pypsrp(server, password)
        assert certificates, server["name"]
        first = certificates[0]
        assert first.types[0] == (
            "Microsoft.Exchange.Management.SystemConfigurationTasks.ExchangeCertificate"
        )
        # as Exchange sends it: RawData only (X509Certificate2's type data), nothing else
        assert set(first.adapted_properties) == {"RawData"}
        assert x509.load_der_x509_certificate(first.adapted_properties["RawData"])


def test_smtp_listener_presents_the_certificate_transport_uses(lab):
    edge = next(s for s in status(lab)["servers"] if s["role"] == "Edge")
    host, port = edge["smtp"].rsplit(":", 1)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP(host, int(port), timeout=10) as smtp:
        smtp.ehlo("test")
        assert smtp.has_extn("starttls")
        smtp.starttls(context=context)
        der = smtp.sock.getpeercert(binary_form=True)
    served = certs.thumbprint(x509.load_der_x509_certificate(der))
    password = (lab / ".password").read_text().strip()
    installed = {
        certs.thumbprint(x509.load_der_x509_certificate(c.adapted_properties["RawData"]))
        for c in _pypsrp(edge, password)
    }
    assert served in installed


def test_inventory_is_a_valid_parameters_file(lab):
    from edgebook.config import load_inventory

    inventory = load_inventory(lab / "inventory.yaml")
    assert inventory.lab is True
    assert len(inventory.edges) == 2
    raw = yaml.safe_load((lab / "inventory.yaml").read_text())
    assert raw["edges"][0]["credential"]["password"].startswith("file:")


def test_requests_are_counted(lab):
    before = status(lab)["requests"]
    test_plain_pypsrp_sees_exchange_shaped_objects(lab)
    after = status(lab)["requests"]
    assert all(after[name] > before.get(name, 0) for name in after)


def test_send_and_advance(lab, capsys):
    assert main(["lab", "send", "--dir", str(lab), "--edge", "EDGE01", "--count", "2"]) == 0
    assert "2 message(s) submitted to EDGE01" in capsys.readouterr().out
    clock_before = status(lab)["clock"]
    assert main(["lab", "advance", "--dir", str(lab), "--minutes", "90"]) == 0
    assert status(lab)["clock"] > clock_before


def test_a_second_start_is_refused(lab, capsys):
    assert main(["lab", "start", "--dir", str(lab)]) == 2
    assert "already runs" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lab", "status", "--dir", "{missing}"], "holds no lab"),
        (
            ["lab", "advance", "--dir", "{lab}", "--minutes", "-5"],
            "--minutes must be a finite number more than 0",
        ),
        (["lab", "send", "--dir", "{lab}", "--edge", "NOPE"], "no Edge 'NOPE'"),
        (["lab", "send", "--dir", "{lab}", "--edge", "EDGE01", "--count", "0"], "--count"),
        (["lab", "fault", "--dir", "{lab}", "--service", "ADAM_MSExchange"], "needs --server"),
        (["lab", "start", "--dir", "{missing}", "--scenario", "no-such"], "no-such"),
    ],
)
def test_bad_input_is_one_clear_line(lab, tmp_path, capsys, args, message):
    args = [a.format(lab=lab, missing=tmp_path / "none") for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "none" / "state.json").exists()


def test_scenarios_are_listed(capsys):
    assert main(["lab", "scenarios"]) == 0
    out = capsys.readouterr().out
    for name in ("healthy", "seed-incident", "expired", "duplicate-subject", "edge-hub-clash"):
        assert name in out


def test_fault_and_restart_survive(tmp_path):
    directory = tmp_path / "lab"
    control.start(directory, "healthy")
    try:
        assert main(["lab", "fault", "--dir", str(directory), "--cmdlet", "Get-Queue"]) == 0
        control.stop(directory)
        description = control.start(directory)
        assert description["scenario"] == "healthy"
        store = control.require_state(directory)
        assert [f.cmdlet for f in store.read().faults] == ["Get-Queue"]
    finally:
        control.stop(directory)
    assert control.running_description(directory) is None


def test_counters_are_exact_while_running_and_survive_a_restart(tmp_path):
    directory = tmp_path / "lab"
    control.start(directory, "healthy")
    try:
        password, _ = folder.lab_password(directory)
        mailbox = next(s for s in status(directory)["servers"] if s["role"] == "Mailbox")
        _pypsrp(mailbox, password)
        running = LabStore(directory).counters()  # asked of the daemon: every answered request
        assert running[mailbox["name"]]["pipelines"] == 1
        assert running[mailbox["name"]]["requests"] >= 4  # shell, command, receive, delete
        assert status(directory)["requests"] == {n: c["requests"] for n, c in running.items()}
        control.stop(directory)
        assert json.loads((directory / "counters.json").read_text()) == running  # at stop
        control.start(directory)
        assert LabStore(directory).counters() == running  # a restart keeps them
    finally:
        control.stop(directory)


def _openssl_leaf(args: list[str]) -> x509.Certificate:
    done = subprocess.run(
        ["openssl", "s_client", *args, "-showcerts"],
        input="Q\n",
        capture_output=True,
        text=True,
        timeout=20,
    )
    begin = done.stdout.index("-----BEGIN CERTIFICATE-----")
    end = done.stdout.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
    return x509.load_pem_x509_certificate(done.stdout[begin:end].encode())


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_sees_what_the_lab_state_says(lab):
    store = control.require_state(lab)
    for server in status(lab)["servers"]:
        if server["role"] != "Edge":
            continue
        for kind, args in (
            ("smtp", ["-starttls", "smtp", "-connect", server["smtp"]]),
            ("ldaps", ["-connect", server["ldaps"]]),
        ):
            state = listener_state(store.read(), server["name"], kind, store.now())
            chain_pem, _ = state.certificate
            expected = x509.load_pem_x509_certificates(chain_pem)[0]
            assert _openssl_leaf(args) == expected, (server["name"], kind)


def test_edges_also_speak_ntlm(lab):
    edge = next(s for s in status(lab)["servers"] if s["role"] == "Edge")
    port = int(edge["wsman"]["url"].rsplit(":", 1)[1].split("/", 1)[0])
    password = (lab / ".password").read_text().strip()
    wsman = WSMan(
        "127.0.0.1",
        port=port,
        auth="ntlm",
        username=edge["wsman"]["username"],
        password=password,
        cert_validation=edge["wsman"]["ca_file"],
    )
    with wsman, RunspacePool(wsman) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-Service").add_parameter("Name", "MSExchangeTransport")
        (service,) = ps.invoke()
    assert service.extended_properties["Name"] == "MSExchangeTransport"  # an alias: <MS>


def _banner_date(server: dict) -> dt.datetime:
    host, port = server["smtp"].rsplit(":", 1)
    with smtplib.SMTP(timeout=10) as smtp:
        _, reply = smtp.connect(host, int(port))
    banner = reply.decode()
    return email.utils.parsedate_to_datetime(banner.split(" at ", 1)[1])


def test_control_commands_reach_the_running_daemon(lab):
    edge = next(s for s in status(lab)["servers"] if s["role"] == "Edge")
    before = _banner_date(edge)
    done = edgebook("lab", "advance", "--dir", str(lab), "--minutes", str(3 * 24 * 60))
    assert done.returncode == 0, done.stderr
    # the daemon's own clock moved at once: no stale copy of the state in memory
    assert _banner_date(edge) - before >= dt.timedelta(days=3)
    assert stat.S_IMODE((lab / channel.TOKEN_FILE).stat().st_mode) == 0o600


def test_the_control_channel_needs_the_token(lab, tmp_path):
    description = control.running_description(lab)
    (tmp_path / channel.TOKEN_FILE).write_text("0" * 64)
    with pytest.raises(channel.ChannelError, match="wrong control token"):
        channel.request(tmp_path, description["control_port"], "advance", {"minutes": 5})
    with pytest.raises(channel.ChannelError, match="unknown lab operation"):
        channel.request(lab, description["control_port"], "format-disk")
    assert control.running_description(lab) == description


def test_reset_of_a_running_lab_restarts_it_with_the_new_state(tmp_path):
    directory = tmp_path / "lab"
    control.start(directory, "healthy", latency_ms=5)
    try:
        assert main(["lab", "fault", "--dir", str(directory), "--cmdlet", "Get-Queue"]) == 0
        old = control.running_description(directory)
        assert main(["lab", "reset", "--dir", str(directory), "--scenario", "expired"]) == 0
        new = control.running_description(directory)
        assert new is not None and new["pid"] != old["pid"]
        assert new["scenario"] == "expired" and new["latency_ms"] == 5
        assert control.require_state(directory).read().faults == []
    finally:
        control.stop(directory)


def test_latency_applies_to_the_edges_smtp_and_ldaps_too(start_lab):
    """--latency-ms is the network's: the probes pay it per turn, as the WSMan requests do."""
    directory = start_lab("healthy", latency_ms=100)
    description = control.running_description(directory)
    edge = next(s for s in description["servers"] if s["role"] == "Edge")
    smtp_host, smtp_port = edge["smtp"].rsplit(":", 1)
    ldaps_host, ldaps_port = edge["ldaps"].rsplit(":", 1)
    smtp = probes.smtp_certificate(smtp_host, int(smtp_port), 5)
    ldaps = probes.ldaps_certificate(ldaps_host, int(ldaps_port), 5)
    assert smtp.leaf is not None and ldaps.leaf is not None
    assert smtp.elapsed_s >= 5 * 0.1  # banner, EHLO, STARTTLS, the handshake, QUIT
    assert 0.1 <= ldaps.elapsed_s < 0.5
