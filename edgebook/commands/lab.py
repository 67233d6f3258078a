"""`edgebook lab ...`: run the simulated organisation."""

from __future__ import annotations

import argparse
import json
import re
import smtplib
import ssl
from pathlib import Path

from edgebook.lab import control, folder
from edgebook.lab.org.scenarios import list_scenarios
from edgebook.lab.org.store import check_minutes

MAX_NTH = 1_000_000
MAX_MESSAGE = 2000  # characters of an injected error text
MAX_SEND = 1000  # one SMTP session; more would keep the command busy for minutes
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `lab` command group."""
    lab = subparsers.add_parser("lab", help="the simulated Exchange organisation")
    commands = lab.add_subparsers(dest="lab_command", required=True, metavar="COMMAND")

    def command(name: str, func, help: str, directory: bool = True) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help, description=help)
        if directory:
            parser.add_argument("--dir", type=Path, required=True, help="the lab folder")
        parser.set_defaults(func=func)
        return parser

    start = command("start", _start, "start a lab in the background and print its endpoints")
    start.add_argument("--scenario", help="a shipped scenario name or a YAML file")
    start.add_argument(
        "--latency-ms",
        type=int,
        default=0,
        help="round trip of the simulated network: per WSMan request and HTTPS handshake, "
        f"per SMTP/LDAPS turn (0 to {control.MAX_LATENCY_MS})",
    )
    status = command("status", _status, "show the lab's servers, clock and request counts")
    status.add_argument("--json", action="store_true", help="print JSON")
    command("stop", _stop, "stop the lab running in DIR")
    command("scenarios", _scenarios, "list the shipped scenarios", directory=False)
    fault = command("fault", _fault, "make a cmdlet fail, or a service fail to start")
    what = fault.add_mutually_exclusive_group(required=True)
    what.add_argument("--cmdlet", help="the cmdlet that fails (every call, or only the Nth)")
    what.add_argument("--service", help="MSExchangeTransport or ADAM_MSExchange: fails to start")
    what.add_argument("--clear", action="store_true", help="remove every injected fault")
    fault.add_argument("--server", help="only on this server (required with --service)")
    fault.add_argument("--nth", type=int, help=f"only the Nth call (1 = the next; to {MAX_NTH})")
    fault.add_argument(
        "--message", help=f"the error text, at most {MAX_MESSAGE} characters (default: generic)"
    )
    advance = command("advance", _advance, "move the lab clock forward")
    advance.add_argument("--minutes", type=float, required=True)
    send = command("send", _send, "submit test mail to an Edge over SMTP")
    send.add_argument("--edge", required=True)
    send.add_argument("--count", type=int, default=1, help=f"messages, 1 to {MAX_SEND}")
    send.add_argument("--to", default="user@contoso.mail.onmicrosoft.com", help="recipient")
    reset = command("reset", _reset, "put the organisation back to a scenario's start")
    reset.add_argument("--scenario", help="a shipped scenario name or a YAML file")


def _print_endpoints(description: dict) -> None:
    for server in description["servers"]:
        line = f"{server['name']:<8} {server['role']:<7} {server['wsman']['url']}"
        if server["smtp"]:
            line += f"  smtp {server['smtp']}  ldaps {server['ldaps']}"
        print(line)


def _scenario(args: argparse.Namespace) -> str | None:
    """--scenario, refused when given empty."""
    if args.scenario is not None and not args.scenario.strip():
        raise control.LabError(
            "--scenario is empty; give a shipped scenario (see edgebook lab scenarios) or the "
            "path of a scenario file, or leave --scenario out"
        )
    return args.scenario


def _start(args: argparse.Namespace) -> int:
    description = control.start(args.dir, _scenario(args), args.latency_ms)
    print(f"lab {description['scenario']!r} running in {args.dir.resolve()}")
    _print_endpoints(description)
    print(f"inventory: {(args.dir / 'inventory.yaml').resolve()}")
    return 0


def _status(args: argparse.Namespace) -> int:
    document = control.status(args.dir)
    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    state = "running" if document["running"] else "stopped"
    print(f"scenario {document['scenario']!r}, {state}, lab clock {document['clock']}")
    for server in document["servers"]:
        url = server["wsman"]["url"] if server["wsman"] else "-"
        requests = document["requests"].get(server["name"], 0)
        mail = server["mail"]
        ledger = (
            f"  mail accepted {mail['accepted']} delivered {mail['delivered']} "
            f"queued {mail['queued']}"
            if mail
            else ""
        )
        print(f"{server['name']:<8} {server['role']:<7} {url}  requests {requests}{ledger}")
    return 0


def _stop(args: argparse.Namespace) -> int:
    directory = folder.check_folder(args.dir, writable=False)
    if not control.has_state(directory) and control.running_description(directory) is None:
        raise control.LabError(
            f"{directory} holds no lab, so there is nothing to stop; check --dir "
            "(a lab folder holds state.json)"
        )
    if control.stop(directory):
        print(f"lab in {directory} stopped")
    else:
        print(f"the lab in {directory} was not running; nothing to stop")
    return 0


def _scenarios(args: argparse.Namespace) -> int:
    for name, description in list_scenarios():
        print(f"{name:<20} {description}")
    return 0


def _fault(args: argparse.Namespace) -> int:
    extra = [f"--{k}" for k in ("server", "nth", "message") if getattr(args, k) is not None]
    if args.clear and extra:
        raise control.LabError(
            f"--clear removes every injected fault and takes no {', '.join(extra)}; "
            "run it alone, then inject the faults you want again"
        )
    if args.service and (args.nth is not None or args.message is not None):
        raise control.LabError(
            "--service makes every start of the service fail; --nth and --message apply "
            "to --cmdlet only"
        )
    if args.message is not None and len(args.message) > MAX_MESSAGE:
        raise control.LabError(
            f"--message is {len(args.message)} characters; give at most {MAX_MESSAGE}"
        )
    if args.nth is not None and not 1 <= args.nth <= MAX_NTH:
        raise control.LabError(f"--nth must be from 1 (the next call) to {MAX_NTH}, not {args.nth}")
    if args.clear:
        control.change(args.dir, "clear-faults")
        print("every injected fault removed")
    elif args.service:
        if not args.server:
            raise control.LabError("--service needs --server (the server whose service fails)")
        done = control.change(args.dir, "service-failure", server=args.server, service=args.service)
        print(f"{done['service']} will fail to start on {done['server']}")
    else:
        done = control.change(
            args.dir,
            "fault",
            cmdlet=args.cmdlet,
            server=args.server,
            nth=args.nth,
            message=args.message,
        )
        where = f" on {done['server']}" if done["server"] else ""
        which = f"call {args.nth}" if args.nth else "every call"
        print(f"{done['cmdlet']} will fail{where} ({which})")
    return 0


def _advance(args: argparse.Namespace) -> int:
    check_minutes(args.minutes)
    done = control.change(args.dir, "advance", minutes=args.minutes)
    print(f"lab clock now {done['clock']}")
    return 0


def _send(args: argparse.Namespace) -> int:
    if not 1 <= args.count <= MAX_SEND:
        raise control.LabError(f"--count must be from 1 to {MAX_SEND}, not {args.count}")
    if not args.to.isascii() or not _ADDRESS.match(args.to):
        raise control.LabError(
            f"--to must be one mail address in ASCII such as user@contoso.com (the lab's SMTP "
            f"offers no SMTPUTF8), not {args.to!r}"
        )
    directory = control.require_state(args.dir).dir.resolve()
    description = control.running_description(directory)
    if description is None:
        raise control.LabError(
            f"the lab in {directory} is not running; start it first "
            f"(edgebook lab start --dir {directory})"
        )
    edges = {s["name"].upper(): s for s in description["servers"] if s["smtp"]}
    edge = edges.get(args.edge.upper())
    if edge is None:
        raise control.LabError(f"no Edge {args.edge!r} in this lab; Edges: {', '.join(edges)}")
    host, port = edge["smtp"].rsplit(":", 1)
    try:
        with smtplib.SMTP(host, int(port), timeout=10) as smtp:
            smtp.ehlo("edgebook.lab")
            if smtp.has_extn("starttls"):
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE  # the lab's certificates are under test
                smtp.starttls(context=context)
                smtp.ehlo("edgebook.lab")
            for number in range(1, args.count + 1):
                message = f"Subject: edgebook lab test {number}\r\n\r\ntest mail {number}\r\n"
                smtp.sendmail("postmaster@contoso.com", [args.to], message)
    except smtplib.SMTPResponseException as exc:
        error = exc.smtp_error
        answer = error.decode(errors="replace") if isinstance(error, bytes) else error
        raise control.LabError(
            f"{edge['name']} at {edge['smtp']} refused the mail: {exc.smtp_code} {answer} "
            f"(is MSExchangeTransport running on {edge['name']}? see edgebook lab status)"
        ) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise control.LabError(
            f"sending to {edge['name']} at {edge['smtp']} failed: {exc}"
        ) from None
    print(f"{args.count} message(s) submitted to {edge['name']}")
    return 0


def _reset(args: argparse.Namespace) -> int:
    description = control.reset(args.dir, _scenario(args))
    scenario = control.require_state(args.dir).read().scenario
    print(f"lab reset to {scenario!r}")
    if description is not None:
        _print_endpoints(description)
    return 0
