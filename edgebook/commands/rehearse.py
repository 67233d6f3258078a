"""`edgebook rehearse`: the lab plus JupyterLab on the notebooks, pointed at it, in one command."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from edgebook.commands.output import Output

STOP_WAIT_S = 30.0
TERMINATE_EVERY_S = 10.0  # not sooner: a second one can cut JupyterLab's own shutdown short


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `rehearse` command."""
    parser = subparsers.add_parser(
        "rehearse",
        help="start a lab and open JupyterLab on the notebooks, pointed at it",
        description=(
            "Start the lab (or reuse the one DIR holds), copy the phase notebooks into "
            "DIR/notebooks once, and run JupyterLab there with EDGEBOOK_LAB_DIR and "
            'EDGEBOOK_OUTPUTS set for its kernels, so `inventory = "lab"` in every notebook '
            "means this lab and the evidence goes to --outputs. The lab stops when JupyterLab "
            "exits (Ctrl-C)."
        ),
    )
    parser.add_argument("--scenario", default="seed-incident", help="lab scenario")
    parser.add_argument(
        "--dir", type=Path, default=Path(".lab-rehearse"), help="lab folder (default .lab-rehearse)"
    )
    parser.add_argument(
        "--outputs",
        type=Path,
        default=Path("outputs-rehearse"),
        help="evidence root for the rehearsal (default outputs-rehearse)",
    )
    parser.add_argument("--port", type=int, default=8888, help="JupyterLab's port on 127.0.0.1")
    parser.add_argument(
        "--no-browser", action="store_true", help="do not open a browser (print the address)"
    )
    parser.set_defaults(func=_rehearse)


def jupyter_command(notebooks: Path, port: int, browser: bool) -> list[str]:
    """JupyterLab on loopback serving the rehearsal notebooks, without language-server
    autodetection: no rehearsal uses one, and the probe ran `npm prefix -g` and friends at
    every start, in a worker thread JupyterLab waits for at exit."""
    return [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={notebooks}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--LanguageServerManager.autodetect=False",
        *([] if browser else ["--no-browser"]),
        *(["--ServerApp.allow_root=True"] if os.geteuid() == 0 else []),  # e.g. in a container
    ]


def _rehearse(args: argparse.Namespace) -> int:
    from edgebook.errors import ConfigError
    from edgebook.evidence.layout import OUTPUTS_ENV, check_folder
    from edgebook.evidence.runner import NOTEBOOKS
    from edgebook.lab import control
    from edgebook.lab.org.scenarios import load_scenario

    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be 1 to 65535, not {args.port}")
    outputs = check_folder(args.outputs.resolve(), "--outputs")
    load_scenario(args.scenario)  # a bad scenario or folder is refused before anything starts
    out = Output()
    lab_dir = args.dir.resolve()
    control.start(lab_dir, args.scenario)
    try:
        notebooks = lab_dir / "notebooks"
        if not notebooks.is_dir():  # once: a rehearsal's edits stay for the next one
            shutil.copytree(NOTEBOOKS, notebooks)
        env = {**os.environ, "EDGEBOOK_LAB_DIR": str(lab_dir), OUTPUTS_ENV: str(outputs)}
        out.line(f"lab: {lab_dir} ({args.scenario}), inventory {lab_dir / 'inventory.yaml'}")
        out.line(f'notebooks: {notebooks} (inventory = "lab" means this lab)')
        out.line(f"evidence: {outputs}; use a rehearsal change id such as CHG-LAB")
        out.line("JupyterLab runs until you stop it (Ctrl-C); the lab stops with it")
        process = subprocess.Popen(
            jupyter_command(notebooks, args.port, not args.no_browser), env=env
        )
        try:
            code = process.wait()
        except KeyboardInterrupt:  # JupyterLab would ask to confirm: stop it (its kernels too)
            _stop(process, out)
            code = 0  # stopped as the operator asked, whatever JupyterLab's own exit code
    finally:
        control.stop(lab_dir)
        out.line(f"lab stopped: {lab_dir}")
    return 0 if code == 0 else 1


def _stop(process: subprocess.Popen[bytes], out: Output) -> None:
    """Stop JupyterLab on the operator's Ctrl-C (a Ctrl-C during its start-up makes it exit 1).
    One that has not ended after STOP_WAIT_S is killed, and that is said."""
    deadline = time.monotonic() + STOP_WAIT_S
    while time.monotonic() < deadline:
        process.terminate()  # again after a while: one that arrives during start-up is lost
        try:
            process.wait(min(TERMINATE_EVERY_S, max(deadline - time.monotonic(), 0.01)))
            return
        except subprocess.TimeoutExpired:
            continue
    process.kill()
    process.wait(STOP_WAIT_S)
    out.line(f"JupyterLab did not stop within {STOP_WAIT_S:.0f} s of Ctrl-C and was killed")
