"""The process jupyter_client starts and manages for a kernel a zygote forks.

    python -m edgebook.evidence.forked SOCKET -- KERNEL COMMAND...

It hands its standard streams, environment and working directory to the zygote
(edgebook.evidence.zygote), which forks the kernel with them, then stands in for it: signals
it gets (an interrupt, a terminate) go on to the kernel, and it ends as the kernel ends, with
its exit code or by its signal. If it is killed, the zygote sees its connection close and
kills the kernel. When the zygote cannot be reached, or the command is not ipykernel's
launcher, it becomes the command itself (the kernel starts the usual way).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys

LAUNCHER = ["-m", "ipykernel_launcher"]
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1)


def main(arguments: list[str]) -> int:
    """Have the zygote fork the kernel, then wait for it; exec the command if it cannot."""
    if len(arguments) < 3 or arguments[1] != "--":
        print("usage: python -m edgebook.evidence.forked SOCKET -- COMMAND...", file=sys.stderr)
        return 2
    path, command = arguments[0], arguments[2:]
    if command[1:3] != LAUNCHER:
        os.execv(command[0], command)
    try:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.connect(path)
        socket.send_fds(connection, [b"\0"], [0, 1, 2])
        request = {"argv": command[3:], "env": dict(os.environ), "cwd": os.getcwd()}
        connection.sendall(json.dumps(request).encode() + b"\n")
        reader = connection.makefile("rb")
        pid = int(json.loads(reader.readline())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        os.execv(command[0], command)  # no zygote: start the kernel the usual way

    def forward(number: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, number)

    for number in FORWARDED:
        signal.signal(number, forward)
    line = reader.readline()
    if not line:
        return 1  # the zygote went away (and took the kernel with it)
    code = int(json.loads(line)["exit"])
    if code < 0:  # killed by a signal: end the same way
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
