"""Bad inputs to the lab process: `edgebook lab start/stop/reset/advance/fault/status` in a folder
that cannot hold a lab, with a stale pid file, another password, a broken state or bad values.

Each case checks the exit code, a one-line message naming the problem and what to do, no
traceback, a bounded time, nothing written outside the lab folder, and the lab unchanged
where it must be (same state bytes, same daemon)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgebook import cli
from edgebook.config import load_inventory
from edgebook.errors import ConfigError
from edgebook.exchange.shell import ExchangeShell
from edgebook.lab import control, folder
from edgebook.lab.org.store import LabStore
from edgebook.secrets import Credential

TIME_BOUND_S = 20.0
UNBUILDABLE = """\
description: passes the schema, fails the build (a queue on a connector not replicated there)
organization: {domain: contoso.com}
servers:
  - {name: EX01, role: Mailbox}
  - {name: EDGE01, role: Edge, queues: {No Such Connector: 3}}
"""


def snapshot(root: Path, skip: Path | None = None) -> dict[str, tuple[int, int]]:
    """Every file under root (outside skip) with its size and mtime."""
    found = {}
    for path in sorted(root.rglob("*")):
        if skip is not None and (path == skip or skip in path.parents):
            continue
        info = path.lstat()
        found[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns)
    return found


def run(capsys, *argv: str | Path, code: int = 2, says: tuple[str, ...] = ()) -> str:
    """Run edgebook in-process; check exit code, time, no traceback, and the message."""
    started = time.monotonic()
    result = cli.main([str(a) for a in argv])
    elapsed = time.monotonic() - started
    out, err = capsys.readouterr()
    assert result == code, (result, out, err)
    assert elapsed < TIME_BOUND_S, f"took {elapsed:.1f} s"
    assert "Traceback" not in out + err
    text = err if code else out
    if code:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("edgebook: error: "), err
    for fragment in says:
        assert fragment in text, (fragment, text)
    return text


@pytest.fixture
def sandbox(tmp_path, monkeypatch) -> Iterator[Path]:
    """A work folder as the current directory, checked for stray writes afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(folder.PASSWORD_ENV, raising=False)
    yield tmp_path


@pytest.fixture(scope="module")
def running(tmp_path_factory) -> Iterator[Path]:
    """A running `healthy` lab (the cases that use it must leave it as it was)."""
    directory = tmp_path_factory.mktemp("running") / "lab"
    control.start(directory, "healthy")
    yield directory
    control.stop(directory)


@pytest.fixture
def stopped(sandbox) -> Path:
    """A `healthy` lab that does not run."""
    directory = sandbox / "lab"
    control.create(directory, "healthy")
    return directory


def lab_files(directory: Path) -> dict[str, bytes]:
    """The files that make the lab what it is."""
    return {name: (directory / name).read_bytes() for name in ("state.json", ".labkey")}


@pytest.mark.parametrize(
    ("scenario", "says"),
    [
        ("helthy", ("no scenario 'helthy'", "shipped scenarios:", "healthy")),
        ("{unbuildable}", ("queues", "No Such Connector")),
    ],
    ids=["mistyped-name", "cannot-be-built"],
)
def test_a_failed_reset_leaves_the_running_lab_as_it_was(running, tmp_path, capsys, scenario, says):
    unbuildable = tmp_path / "unbuildable.yaml"
    unbuildable.write_text(UNBUILDABLE)
    before = lab_files(running)
    description = control.running_description(running)
    outside = snapshot(tmp_path)
    run(
        capsys,
        *("lab", "reset", "--dir", running, "--scenario"),
        scenario.format(unbuildable=unbuildable),
        says=says,
    )
    assert lab_files(running) == before
    assert control.running_description(running) == description  # same daemon, same ports
    assert not (running / ".reset").exists()
    assert snapshot(tmp_path) == outside


def test_a_failed_reset_leaves_a_stopped_lab_readable(stopped, capsys):
    before = lab_files(stopped)
    (stopped.parent / "unbuildable.yaml").write_text(UNBUILDABLE)
    run(capsys, "lab", "reset", "--dir", stopped, "--scenario", stopped.parent / "unbuildable.yaml")
    assert lab_files(stopped) == before
    assert LabStore(stopped).read().scenario == "healthy"  # the key still opens the state


def test_stop_with_a_stale_pid_file_signals_nobody(stopped, capsys):
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        folder.write_json_atomic(
            folder.endpoints_path(stopped),
            {"pid": stranger.pid, "process_start": 1, "control_port": 9, "servers": []},
        )
        before = lab_files(stopped)
        run(capsys, "lab", "stop", "--dir", stopped, code=0, says=("was not running",))
        time.sleep(0.2)
        assert stranger.poll() is None, "an unrelated process was signalled"
        assert not folder.endpoints_path(stopped).exists()  # the stale file is gone
        assert lab_files(stopped) == before
    finally:
        stranger.kill()
        stranger.wait()


def test_stop_on_a_folder_without_a_lab_fails(sandbox, capsys):
    (sandbox / "empty").mkdir()
    before = snapshot(sandbox)
    run(capsys, "lab", "stop", "--dir", sandbox / "empty", says=("holds no lab", "check --dir"))
    run(capsys, "lab", "stop", "--dir", sandbox / "missing", says=("holds no lab",))
    assert snapshot(sandbox) == before


def test_restart_with_another_password_is_refused(sandbox, monkeypatch, capsys):
    directory = sandbox / "lab"
    monkeypatch.setenv(folder.PASSWORD_ENV, "First-Passw0rd!")
    control.create(directory, "healthy")
    before = snapshot(sandbox)
    monkeypatch.setenv(folder.PASSWORD_ENV, "Second-Passw0rd!")
    run(
        capsys,
        *("lab", "start", "--dir", directory),
        says=("another password", "$EDGEBOOK_LAB_PASSWORD", "edgebook lab reset"),
    )
    assert control.running_description(directory) is None
    assert snapshot(sandbox) == before
    monkeypatch.setenv(folder.PASSWORD_ENV, "First-Passw0rd!")
    control.start(directory)  # the right password still starts it
    control.stop(directory)


def test_a_lab_password_basic_auth_cannot_carry_is_refused(sandbox, monkeypatch, capsys):
    monkeypatch.setenv(folder.PASSWORD_ENV, "Пароль-2024")
    run(
        capsys,
        *("lab", "start", "--dir", sandbox / "lab"),
        says=("EDGEBOOK_LAB_PASSWORD", "Latin-1", "Basic"),
    )
    assert not (sandbox / "lab").exists()


def test_a_folder_that_is_a_file_is_refused(sandbox, capsys):
    target = sandbox / "notes.txt"
    target.write_text("not a lab")
    before = snapshot(sandbox)
    for command in ("start", "status", "stop", "reset"):
        run(capsys, "lab", command, "--dir", target, says=("is a file, not a folder",))
    run(capsys, "lab", "start", "--dir", target / "lab", says=("is a file",))
    assert snapshot(sandbox) == before


def test_a_folder_that_cannot_be_written_is_refused(sandbox, capsys):
    run(capsys, "lab", "start", "--dir", "/proc/edgebook-lab", says=("/proc",))
    assert not Path("/proc/edgebook-lab").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_a_read_only_lab_folder_is_refused(stopped, capsys):
    before = lab_files(stopped)
    stopped.chmod(0o500)
    try:
        run(capsys, "lab", "start", "--dir", stopped, says=("not writable",))
        run(capsys, "lab", "advance", "--dir", stopped, "--minutes", "5", says=("cannot write",))
    finally:
        stopped.chmod(0o700)
    assert lab_files(stopped) == before


def test_a_folder_name_that_is_not_utf8_is_refused(sandbox, capsys):
    name = os.fsdecode(b"lab-\xff")
    run(capsys, "lab", "start", "--dir", name, says=("not valid UTF-8", "lab-\\xff"))
    assert os.listdir(sandbox) == []


@pytest.mark.parametrize("minutes", ["nan", "inf", "-inf", "-5", "0", "1e12"])
def test_advance_takes_finite_positive_minutes(stopped, capsys, minutes):
    before = lab_files(stopped)
    text = run(capsys, "lab", "advance", "--dir", stopped, f"--minutes={minutes}")
    assert "--minutes must be" in text
    assert lab_files(stopped) == before


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b'{"hello": "world"}', "not an edgebook lab state"),
        (b"[1, 2, 3]", "not an edgebook lab state"),
        (b"\xff\xfe garbage", "not valid JSON"),
        (b'{"scenario": "x", "domain": "y", "servers": [{"name": 1}]}', "not an edgebook"),
    ],
    ids=["foreign-object", "foreign-list", "not-utf8", "wrong-shape"],
)
def test_a_foreign_or_corrupt_state_is_named(stopped, capsys, content, says):
    (stopped / "state.json").write_bytes(content)
    for argv in (("status",), ("start",), ("advance", "--minutes", "5"), ("reset",)):
        run(capsys, "lab", argv[0], "--dir", stopped, *argv[1:], says=(says, "lab reset --dir"))
    assert (stopped / "state.json").read_bytes() == content
    run(capsys, "lab", "reset", "--dir", stopped, "--scenario", "healthy", code=0)
    assert LabStore(stopped).read().scenario == "healthy"


def test_a_fault_on_an_unknown_cmdlet_lists_the_lab_cmdlets(stopped, running, capsys):
    for directory in (stopped, running):
        before = lab_files(directory)
        run(
            capsys,
            *("lab", "fault", "--dir", directory, "--cmdlet", "Get-Quue"),
            says=("no cmdlet 'Get-Quue'", "Get-Queue", "Get-ExchangeCertificate"),
        )
        assert lab_files(directory) == before
    run(
        capsys,
        "lab",
        "fault",
        "--dir",
        running,
        "--cmdlet",
        "get-queue",
        code=0,
        says=("Get-Queue",),
    )
    assert [f.cmdlet for f in LabStore(running).read().faults] == ["Get-Queue"]
    run(capsys, "lab", "fault", "--dir", running, "--clear", code=0)
    assert LabStore(running).read().faults == []


def test_a_password_basic_auth_cannot_carry_is_named_before_any_request(running):
    edge = load_inventory(running / "inventory.yaml").edges[0]
    before = LabStore(running).counters()
    shell = ExchangeShell(
        edge.name, edge.winrm, Credential(edge.credential.username, "Пароль-2024"), role="Edge"
    )
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"outside Latin-1.*winrm\.auth: ntlm"):
        shell.run("Get-Date")
    assert time.monotonic() - started < TIME_BOUND_S
    assert LabStore(running).counters() == before  # nothing was sent
