"""`edgebook rehearse`: the lab starts, JupyterLab serves the copied notebooks with the lab and the
outputs in its environment (its kernels inherit it), and Ctrl-C stops both."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from edgebook.cli import main
from edgebook.commands import rehearse
from edgebook.commands.output import Output
from edgebook.lab import control

pytestmark = pytest.mark.timeout(180)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environ_of_child(pid: int, running: bytes) -> dict[str, str]:
    """The environment of the child process of pid whose command line holds `running`."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if running in Path(f"/proc/{child}/cmdline").read_bytes():
                raw = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
                return dict(item.decode().split("=", 1) for item in raw if b"=" in item)
    raise AssertionError(f"no child of {pid} runs {running!r}")


def _interruptible() -> None:
    """Ctrl-C as in a terminal, whatever this test run inherited: a shell starts background
    jobs with SIGINT ignored, and a child would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_rehearse_serves_the_notebooks_against_the_lab_until_interrupted(tmp_path):
    port, token = free_port(), "rehearsal-token-0123456789"
    lab, outputs = tmp_path / "lab", tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "edgebook.cli", "rehearse", "--dir", str(lab), "--outputs",
         str(outputs), "--port", str(port), "--no-browser"],
        env={**os.environ, "JUPYTER_TOKEN": token},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches the whole group, as in a terminal
        preexec_fn=_interruptible,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stdout.read().decode()
            try:
                answer = requests.get(
                    f"http://127.0.0.1:{port}/api/contents?token={token}", timeout=2
                )
                if answer.ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "JupyterLab did not answer"
            time.sleep(0.5)
        names = {item["name"] for item in answer.json()["content"]}
        assert {"01-inspect.ipynb", "04-verify-hybrid.ipynb"} <= names
        assert control.running_description(lab) is not None
        jupyter = environ_of_child(process.pid, b"jupyterlab")
        assert jupyter["EDGEBOOK_LAB_DIR"] == str(lab.resolve())
        assert jupyter["EDGEBOOK_OUTPUTS"] == str(outputs.resolve())
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
        # rehearse's own bound: SIGTERMs for STOP_WAIT_S, then a kill; then the lab stops
        output = process.communicate(timeout=2 * rehearse.STOP_WAIT_S + 30)[0].decode()
    assert process.returncode == 0, output
    assert "lab stopped" in output
    assert control.running_description(lab) is None


def test_rehearse_refuses_a_bad_scenario_before_starting_anything(tmp_path, capsys):
    assert main(["rehearse", "--dir", str(tmp_path / "lab"), "--scenario", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert not (tmp_path / "lab").exists()


def _child(code: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline() == b"ready\n"
    return process


def test_a_jupyterlab_that_exits_on_the_stop_is_waited_for(capsys):
    """A Ctrl-C during JupyterLab's start-up makes it exit 1 (the full rehearse test above shows
    that rehearse still exits 0: the operator asked to stop)."""
    process = _child(
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    rehearse._stop(process, Output())
    assert process.returncode == 1
    assert "was killed" not in capsys.readouterr().out


def test_a_jupyterlab_that_ignores_the_stop_is_killed_and_said(monkeypatch, capsys):
    monkeypatch.setattr(rehearse, "STOP_WAIT_S", 0.5)
    monkeypatch.setattr(rehearse, "TERMINATE_EVERY_S", 0.2)
    process = _child(
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    rehearse._stop(process, Output())
    assert process.returncode == -signal.SIGKILL
    assert "was killed" in capsys.readouterr().out
