"""The `edgebook` process itself: closed, full or vanished stdout, a plugin's unknown option,
and hang-prone inputs run as a real process under a hard time limit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

LIMIT_S = 60


def edgebook(*argv: str, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgebook.cli", *argv],
        cwd=cwd,
        capture_output="stdout" not in kwargs,
        timeout=LIMIT_S,
        check=False,
        **kwargs,
    )


def test_a_vanished_reader_is_a_quiet_exit(tmp_path):
    """`edgebook lab scenarios | head -0`: BrokenPipeError ends quietly (CPython's recipe)."""
    command = (
        f"{sys.executable} -m edgebook.cli lab scenarios | (exec 0<&-; true); "
        "echo rc=${PIPESTATUS[0]} >&2"
    )
    done = subprocess.run(
        ["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=LIMIT_S
    )
    assert "Traceback" not in done.stderr
    assert "BrokenPipeError" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] in ("rc=0", "rc=1")


def test_a_closed_stdout_is_no_traceback(tmp_path):
    done = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m edgebook.cli lab scenarios >&-"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=LIMIT_S,
    )
    assert "Traceback" not in done.stderr
    assert done.returncode in (0, 1)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_stdout_is_one_error_line(tmp_path):
    with open("/dev/full", "wb") as full:
        done = edgebook("lab", "scenarios", cwd=tmp_path, stdout=full, stderr=subprocess.PIPE)
    err = done.stderr.decode()
    assert done.returncode == 1
    assert "Traceback" not in err
    assert err.strip() == (
        "edgebook: error: cannot write the output (No space left on device); check where it goes"
    )


def test_check_with_an_unknown_option_is_unknown_not_a_usage_error(tmp_path):
    done = edgebook("check", "p.yaml", "--colour", "red", cwd=tmp_path, text=True)
    assert done.returncode == 3
    assert done.stdout.strip() == ("EDGEBOOK UNKNOWN - usage: unrecognized arguments: --colour red")


def test_an_alias_bomb_ends_in_a_real_process(tmp_path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
    )
    (tmp_path / "p.yaml").write_text(bomb)
    done = edgebook("inspect", "p.yaml", cwd=tmp_path, text=True)
    assert done.returncode == 2
    assert "alias bomb" in done.stderr and "Traceback" not in done.stderr


class _VanishedReader:
    """A stdout whose reader went away: every write raises BrokenPipeError."""

    closed = False

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self) -> int:
        raise OSError("no file descriptor here")


def test_broken_pipe_is_caught_at_the_top(monkeypatch, capsys):
    """Deterministic twin of the pipe test: the command's first print breaks the pipe."""
    from edgebook import cli

    monkeypatch.setattr(sys, "stdout", _VanishedReader())
    assert cli.main(["lab", "scenarios"]) == 1
    assert capsys.readouterr().err == ""
