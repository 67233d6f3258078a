"""The steps a certificate change is made of (docs/domain.md §9), each with its checks and undo.

Phase 02 stages a certificate on a Mailbox server (F9), asks the Edge for a request and
completes it there with the issued certificate; the others are the first form of phase 03's
steps: drain and resume transport, import and enable on the Edge answering No to the default
question (F12), TlsCertificateName on the send and receive connectors, and the send
connectors' source servers after a resubscription (F10).
"""

from __future__ import annotations

from edgebook.change.step import Call, Check, Step, contains
from edgebook.change.values import Appeared, Before, FileBytes, Secret
from edgebook.exchange.questions import ExpectedQuestion

TRANSPORT = "MSExchangeTransport"
DEFAULT_QUESTION = "Overwrite the existing default SMTP certificate?"
FRIENDLY_NAME_LIMIT = 63  # Microsoft: -FriendlyName "must be less than 64 characters"
_CERT_PROPS = ("Thumbprint", "Services", "Subject", "Issuer", "Status")


def fit_friendly_name(text: str) -> str:
    """A -FriendlyName Exchange takes: the text, cut to FRIENDLY_NAME_LIMIT characters."""
    return text if len(text) <= FRIENDLY_NAME_LIMIT else text[: FRIENDLY_NAME_LIMIT - 3] + "..."


def _certificates(server: str | None) -> Call:
    params = {"Server": server} if server else {}
    return Call("Get-ExchangeCertificate", params, _CERT_PROPS)


def _default(server: str | None) -> Call:
    params = {"Identity": server} if server else {}
    return Call("Get-TransportService", params, ("Name", "InternalTransportCertificateThumbprint"))


def _removal_question(thumbprint: str) -> ExpectedQuestion:
    return ExpectedQuestion(
        match=thumbprint, answer="Yes", why="rollback removes the certificate this change imported"
    )


def stage_certificate(
    server: str,
    thumbprint: str,
    pfx: FileBytes,
    password: Secret | None,
    friendly_name: str,
    *,
    remote: bool = True,
) -> Step:
    """Import a certificate (PFX with its chain, or the bare certificate) on a Mailbox server
    without enabling any service: Set-SendConnector can then name it (F9), and it never
    becomes that server's default (F1)."""
    target = server if remote else None
    # exportable on the Mailbox server: the internal copy a PFX can be made from again (F5);
    # the Edge gets it non-exportable (phase 03)
    params: dict = {
        "FileData": pfx,
        "FriendlyName": fit_friendly_name(friendly_name),
        "PrivateKeyExportable": True,
    }
    if password is not None:
        params["Password"] = password
    if remote:
        params["Server"] = server
    return Step(
        id=f"stage-{server.lower()}",
        server=server,
        does=(
            f"import {thumbprint} on {server} with no service enabled, only so that "
            "Set-SendConnector can name it (F9); never as its default (F1)"
        ),
        calls=(Call("Import-ExchangeCertificate", params),),
        pre=(
            Check(
                f"{server}'s default transport certificate is not {thumbprint} (F1)",
                _default(target),
                {"InternalTransportCertificateThumbprint": thumbprint},
                "absent",
            ),
        ),
        post=(
            Check(
                f"{thumbprint} is on {server} with no service",
                _certificates(target),
                {"Thumbprint": thumbprint, "Services": "None"},
            ),
            Check(
                f"{server}'s default transport certificate is still not {thumbprint}",
                _default(target),
                {"InternalTransportCertificateThumbprint": thumbprint},
                "absent",
            ),
        ),
        undo=(Call("Remove-ExchangeCertificate", {"Thumbprint": thumbprint, **_server(target)}),),
        undo_questions=(_removal_question(thumbprint),),
    )


def _server(target: str | None) -> dict[str, str]:
    return {"Server": target} if target else {}


def request_on_edge(edge: str, subject: str, domains: list[str], friendly_name: str) -> Step:
    """New-ExchangeCertificate -GenerateRequest on the Edge: the key is made and stays there. The
    cmdlet returns the request's text only (journalled with the step); the undo removes the
    pending request that the read-back shows and the read before did not (Appeared)."""
    return Step(
        id=f"request-{edge.lower()}",
        server=edge,
        does=f"make a key and a certificate request for {subject} on {edge} (exportable key)",
        calls=(
            Call(
                "New-ExchangeCertificate",
                {
                    "GenerateRequest": True,
                    "SubjectName": subject,
                    "DomainName": list(domains),
                    "KeySize": 2048,
                    "PrivateKeyExportable": True,
                    "FriendlyName": fit_friendly_name(friendly_name),
                },
            ),
        ),
        post=(
            Check(
                f"a pending request for {subject} is on {edge}",
                _certificates(None),
                {"Subject": subject, "Status": "PendingRequest"},
            ),
        ),
        undo=(Call("Remove-ExchangeCertificate", {"Thumbprint": Appeared("Thumbprint")}),),
        undo_questions=(
            ExpectedQuestion(
                match="certificate",
                answer="Yes",
                why="rollback removes the pending request this change made",
            ),
        ),
        journals_text=True,  # the request: public, and what the consultant sends to the CA
    )


COMPLETED_NO_UNDO = (
    "completing consumes the pending request: the certificate now holds the key made on the "
    "Edge, and removing it would destroy that key (the issued certificate would be worthless). "
    "It serves nothing until phase 03 enables it, so rollback leaves it; remove it by hand only "
    "if it will never be used"
)


def complete_request_on_edge(
    edge: str, thumbprint: str, pending: str, certificate: FileBytes
) -> Step:
    """Import-ExchangeCertificate on the Edge with the certificate the CA issued for its pending
    request: the request is completed with the key made there (no service is enabled: safe
    before the drain; phase 03 enables SMTP)."""
    read = Call(
        "Get-ExchangeCertificate", {}, ("Thumbprint", "Status", "HasPrivateKey", "Services")
    )
    return Step(
        id=f"complete-{edge.lower()}",
        server=edge,
        does=(
            f"complete the pending request {pending} on {edge} with {thumbprint} issued for it "
            "(the key made there stays there; no service enabled)"
        ),
        calls=(Call("Import-ExchangeCertificate", {"FileData": certificate}),),
        pre=(
            Check(
                f"the pending request {pending} is on {edge}",
                read,
                {"Thumbprint": pending, "Status": "PendingRequest"},
            ),
        ),
        post=(
            Check(
                f"{thumbprint} is on {edge} with its private key and no service",
                read,
                {"Thumbprint": thumbprint, "HasPrivateKey": True, "Services": "None"},
            ),
        ),
        no_undo=COMPLETED_NO_UNDO,
    )


def set_service(server: str, service: str, status: str, action: str, undo: str) -> Step:
    """A Windows service to a state (Suspend-/Resume-/Start-/Stop-Service), undone the other way;
    the status it had when the plan was made is its precondition."""
    wanted = {"Suspend-Service": "Paused", "Resume-Service": "Running", "Start-Service": "Running"}
    wanted |= {"Stop-Service": "Stopped"}
    read = Call("Get-Service", {"Name": service}, ("Name", "Status"))
    return Step(
        id=f"{action.split('-')[0].lower()}-{service.lower()}-{server.lower()}",
        server=server,
        does=f"{action} {service} on {server} (now {status})",
        calls=(Call(action, {"Name": service}),),
        pre=(Check(f"{service} is {status}", read, {"Name": service, "Status": status}),),
        post=(Check(f"{service} is {wanted[action]}", read, {"Status": wanted[action]}),),
        undo=(Call(undo, {"Name": service}),),
    )


def enable_smtp_keeping_default(edge: str, thumbprint: str, default: str) -> Step:
    """Enable SMTP on the new certificate and answer No to replacing the default (F12)."""
    return Step(
        id=f"enable-smtp-{edge.lower()}",
        server=edge,
        does=f"enable SMTP on {thumbprint}; the default {default} stays (KB2989382)",
        calls=(Call("Enable-ExchangeCertificate", {"Thumbprint": thumbprint, "Services": "SMTP"}),),
        post=(
            Check(
                f"{thumbprint} serves SMTP",
                _certificates(None),
                {"Thumbprint": thumbprint, "Services": contains("SMTP")},
            ),
            Check(
                f"the default is still {default}",
                _default(None),
                {"InternalTransportCertificateThumbprint": default},
            ),
        ),
        no_undo=(
            "Exchange cannot take a service away from a certificate; removing the certificate "
            "(the undo of its import) takes SMTP with it"
        ),
        questions=(
            ExpectedQuestion(
                match=DEFAULT_QUESTION,
                answer="No",
                why="the Edge default stays: it is the one the subscription pins (F12, KB2989382)",
            ),
        ),
    )


def set_send_connector_tls_name(server: str, connector: str, tls_name: str) -> Step:
    """TlsCertificateName of an organisation send connector (run on a Mailbox server)."""
    read = Call("Get-SendConnector", {"Identity": connector}, ("Identity", "TlsCertificateName"))
    return Step(
        id=f"tls-name-{_slug(connector)}",
        server=server,
        does=f"set TlsCertificateName of send connector {connector} (replicates to the Edges)",
        calls=(Call("Set-SendConnector", {"Identity": connector, "TlsCertificateName": tls_name}),),
        before=read,
        post=(Check(f"{connector} names {tls_name}", read, {"TlsCertificateName": tls_name}),),
        undo=(
            Call(
                "Set-SendConnector",
                {"Identity": connector, "TlsCertificateName": Before("TlsCertificateName")},
            ),
        ),
    )


def set_receive_connector_tls_name(edge: str, connector: str, tls_name: str) -> Step:
    """TlsCertificateName of an Edge receive connector (not replicated: set on the Edge)."""
    props = ("Identity", "TlsCertificateName")
    read = Call("Get-ReceiveConnector", {"Identity": connector}, props)
    return Step(
        id=f"receive-tls-name-{edge.lower()}",
        server=edge,
        does=f"set TlsCertificateName of receive connector {connector}",
        calls=(
            Call("Set-ReceiveConnector", {"Identity": connector, "TlsCertificateName": tls_name}),
        ),
        before=read,
        post=(Check(f"{connector} names {tls_name}", read, {"TlsCertificateName": tls_name}),),
        undo=(
            Call(
                "Set-ReceiveConnector",
                {"Identity": connector, "TlsCertificateName": Before("TlsCertificateName")},
            ),
        ),
    )


def restore_source_servers(server: str, connector: str, servers: list[str]) -> Step:
    """Put Edges back among a send connector's source servers (F10, after a resubscription)."""
    read = Call(
        "Get-SendConnector", {"Identity": connector}, ("Identity", "SourceTransportServers")
    )
    return Step(
        id=f"sources-{_slug(connector)}",
        server=server,
        does=f"add {', '.join(servers)} back to the source servers of {connector} (F10)",
        calls=(
            Call(
                "Set-SendConnector",
                {"Identity": connector, "SourceTransportServers": {"Add": list(servers)}},
            ),
        ),
        before=read,
        post=tuple(
            Check(
                f"{name} is a source of {connector}",
                read,
                {"SourceTransportServers": contains(name)},
            )
            for name in servers
        ),
        undo=(
            Call(
                "Set-SendConnector",
                {"Identity": connector, "SourceTransportServers": Before("SourceTransportServers")},
            ),
        ),
    )


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")[:60]
