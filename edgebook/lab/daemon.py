"""The lab process: one WSMan endpoint per lab server and SMTP/LDAPS listeners per Edge.

Started in the background by `edgebook lab start`. It holds DIR/.daemon.lock for its lifetime,
keeps the organisation in memory (ResidentStore: each change persisted before it is answered),
takes the CLI's changes over the control channel (edgebook.lab.channel), writes
DIR/endpoints.json when ready (with its pid and process start time, so nobody signals another
process that reused the pid) and DIR/inventory.yaml (a parameters file the notebooks accept as
is), and stops on SIGTERM or a `stop` request.
"""

from __future__ import annotations

import argparse
import base64
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from edgebook.errors import EdgebookError
from edgebook.exchange.wire_types import EDGE_SHAPE, MAILBOX_SHAPE
from edgebook.lab import folder, operations
from edgebook.lab.backend import LabBackend
from edgebook.lab.channel import ChannelServer
from edgebook.lab.net.listeners import CertSource, LdapsListener, RunningSource, SmtpListener
from edgebook.lab.org.listener_state import ListenerState, Materials, listener_state
from edgebook.lab.org.mailflow import accept_mail
from edgebook.lab.org.model import Org
from edgebook.lab.org.store import ResidentStore
from edgebook.lab.winrm.endpoint_tls import EndpointTls
from edgebook.lab.winrm.httpserver import serve
from edgebook.lab.winrm.wsman import WSManEndpoint


class LabProcess:
    """Everything one running lab serves; start() returns when all sockets listen."""

    def __init__(self, directory: Path, latency_ms: int = 0) -> None:
        self.directory = directory
        self.store = ResidentStore(directory)
        self.backend = LabBackend(self.store)
        self.latency_s = latency_ms / 1000
        self.tls = EndpointTls.create(directory)
        self.stopped = threading.Event()
        self._materials: Materials = {}
        self._stoppers: list[Any] = []

    def start(self) -> dict[str, Any]:
        """Start every endpoint, listener and the control channel; return their description."""
        org = self.store.read()
        channel = ChannelServer(self.directory, self._control)
        channel.start()
        self._stoppers.append(channel)
        servers = []
        for server in org.servers:
            path, configuration = MAILBOX_SHAPE if server.role == "Mailbox" else EDGE_SHAPE
            endpoint = WSManEndpoint(
                self.backend,
                server.name,
                path=path,
                configuration_names={configuration},
                latency_s=self.latency_s,
                # Edges are reached with NTLM in real life (workgroup, DMZ); Basic for simplicity
                auth=("basic",) if server.role == "Mailbox" else ("negotiate", "basic"),
            )
            running = serve(endpoint, tls=self.tls.server_context())
            self._stoppers.append(running)
            entry = {
                "name": server.name,
                "role": server.role,
                "fqdn": server.fqdn,
                "wsman": {
                    "url": f"https://127.0.0.1:{running.port}/{path}",
                    "port": running.port,
                    "path": path,
                    "configuration_name": configuration,
                    "auth": "basic",
                    "username": server.admin_username,
                    "ca_file": str(self.tls.ca_file),
                },
                "smtp": None,
                "ldaps": None,
            }
            if server.role == "Edge":
                entry["smtp"], entry["ldaps"] = self._listen(server.name, server.fqdn)
            servers.append(entry)
        return {
            "pid": os.getpid(),
            "process_start": folder.process_start(os.getpid()),
            "control_port": channel.port,
            "latency_ms": round(self.latency_s * 1000),
            "scenario": org.scenario,
            "organisation": org.domain,
            "ad_site": org.site,
            "change": self._change_settings(org),
            "servers": servers,
        }

    def _change_settings(self, org: Org) -> dict[str, Any]:
        """The inventory's change section: what this organisation expects."""
        fqdns = {c.fqdn for e in org.edges for c in e.receive_connectors if c.fqdn}
        fqdns |= {c.fqdn for c in org.send_connectors if c.fqdn and c.cloud_services_mail_enabled}
        anchors = self.directory / "trust-anchors.pem"
        roots = [base64.b64decode(ca.der_b64) for ca in org.cas if ca.parent is None]
        pem = b"".join(
            x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
            for der in roots
        )
        folder.write_atomic(anchors, pem)
        return {
            "warning_days": 30,
            "expected_fqdns": sorted(fqdns),
            "hybrid": org.hybrid_domain is not None,
            "tls_domain_capabilities": "mail.protection.outlook.com:AcceptCloudServicesMail",
            "event_days": 7,
            "trust_anchors": str(anchors),
        }

    def _listen(self, edge: str, fqdn: str) -> tuple[str, str]:
        def source(kind: Literal["smtp", "ldaps"]) -> tuple[CertSource, RunningSource]:
            def state() -> ListenerState:
                with self.store.view() as org:
                    return listener_state(org, edge, kind, self.store.now(), self._materials)

            return (lambda: state().certificate), (lambda: state().accepting)

        def deliver(mail_from: str, rcpt_tos: list[str], data: bytes) -> None:
            accept_mail(self.store, edge, mail_from, rcpt_tos, data)

        smtp_cert, smtp_running = source("smtp")
        ldaps_cert, ldaps_running = source("ldaps")
        clock = self.store.now
        latency_s = self.latency_s
        smtp = SmtpListener(
            smtp_cert, deliver, fqdn=fqdn, running=smtp_running, clock=clock, latency_s=latency_s
        )
        ldaps = LdapsListener(
            ldaps_cert, running=ldaps_running, dns_host_name=fqdn, clock=clock, latency_s=latency_s
        )
        smtp.start()
        ldaps.start()
        self._stoppers += [smtp, ldaps]
        return f"127.0.0.1:{smtp.port}", f"127.0.0.1:{ldaps.port}"

    def _control(self, op: str, args: dict[str, Any]) -> Any:
        """A control channel request: stop, the counters, or one of edgebook.lab.operations."""
        if op == "stop":
            self.stopped.set()
            return {"pid": os.getpid()}
        if op == "counters":
            return self.store.counters()
        return operations.apply(self.store, op, args)

    def stop(self) -> None:
        """Stop every socket and persist what is left; safe to call twice."""
        while self._stoppers:
            self._stoppers.pop().stop()
        self.store.flush()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the background process."""
    parser = argparse.ArgumentParser(prog="edgebook-lab-daemon")
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--latency-ms", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        lock = folder.hold_daemon_lock(args.dir)
    except EdgebookError as exc:
        print(f"edgebook-lab-daemon: {exc}", file=sys.stderr)
        return 2
    with lock:
        lab = LabProcess(args.dir, args.latency_ms)
        signal.signal(signal.SIGTERM, lambda *_: lab.stopped.set())
        signal.signal(signal.SIGINT, lambda *_: lab.stopped.set())
        try:
            description = lab.start()
            folder.write_inventory(args.dir, description)
            folder.write_json_atomic(folder.endpoints_path(args.dir), description)
            lab.stopped.wait()
        finally:
            folder.endpoints_path(args.dir).unlink(missing_ok=True)
            lab.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
