"""The steps of phase 03 for one Edge (docs/domain.md §9), each checked before the next.

Service steps are `once`: later steps move the service on (paused, stopped, started), so a
rerun skips them by the journal rather than by the state. The subscription file is read into
memory (`keeps`) and never journalled; the Mailbox import uses it (`Carried`).
"""

from __future__ import annotations

from edgebook.change import steps
from edgebook.change.lock import EDGEBOOK_FOLDER, MAKE_FOLDER
from edgebook.change.step import Call, Check, Probe, Step, Wait, contains, differs
from edgebook.change.values import Before, Carried, FileBytes, Secret
from edgebook.exchange.questions import ExpectedQuestion

TRANSPORT = "MSExchangeTransport"
ADAM = "ADAM_MSExchange"
SUBSCRIPTION = "subscription file"
SUBSCRIPTION_PATH = EDGEBOOK_FOLDER + r"\EdgeSubscription-{change}.xml"
# Lab wording (Exchange's text is not public): both the first and the repeated subscription
# end with this; docs/lab-scenarios.md.
SUBSCRIBE_QUESTION = "before the bootstrap account expires"
_CERT_PROPS = ("Thumbprint", "Services", "Subject", "Issuer")

# Restart-Service -Force is what this step means, not an answer to a question: it restarts a
# service that others depend on (MSExchangeTransport and the other Exchange services depend on
# AD LDS), which Restart-Service otherwise refuses; Exchange asks nothing here. PowerShell then
# starts again the dependents that were running; transport, paused by the drain, stays stopped.
_RESTART_ADAM = Call("Restart-Service", {"Name": ADAM, "Force": True})


def _service(name: str) -> Call:
    return Call("Get-Service", {"Name": name}, ("Name", "Status"))


def _queues() -> Call:
    return Call("Get-Queue", {}, ("Identity", "Status", "MessageCount", "LastError"))


def _certificates(server: str | None = None) -> Call:
    return Call("Get-ExchangeCertificate", {"Server": server} if server else {}, _CERT_PROPS)


def _transport(identity: str | None = None) -> Call:
    params = {"Identity": identity} if identity else {}
    return Call("Get-TransportService", params, ("Name", "InternalTransportCertificateThumbprint"))


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")[:48]


def _queues_empty() -> Check:
    return Check("every queue is empty", _queues(), {"MessageCount": differs(0)}, "absent")


def drain(edge: str, timeout_s: float, every_s: float) -> Step:
    """Pause transport (no new connections) and wait until every queue is empty."""
    e = edge.lower()
    return Step(
        id=f"drain-{e}",
        server=edge,
        does=f"pause {TRANSPORT} on {edge} and wait until its queues are empty",
        calls=(Call("Suspend-Service", {"Name": TRANSPORT}),),
        pre=(Check(f"{TRANSPORT} runs", _service(TRANSPORT), {"Status": "Running"}),),
        post=(
            Check(f"{TRANSPORT} is paused", _service(TRANSPORT), {"Status": "Paused"}),
            _queues_empty(),
        ),
        undo=(Call("Resume-Service", {"Name": TRANSPORT}),),
        wait=Wait(timeout_s, every_s, f"the queues of {edge} to empty"),
        once=True,
    )


def stop_transport(edge: str, allow_queued: bool) -> Step:
    """Stop transport, refused while messages are queued unless allowed on purpose."""
    pre = () if allow_queued else (_queues_empty(),)
    return Step(
        id=f"stop-transport-{edge.lower()}",
        server=edge,
        does=f"stop {TRANSPORT} on {edge}"
        + (" (messages may be queued: allowed by stop_with_queued)" if allow_queued else ""),
        calls=(Call("Stop-Service", {"Name": TRANSPORT}),),
        pre=pre,
        before=_service(TRANSPORT),
        post=(Check(f"{TRANSPORT} is stopped", _service(TRANSPORT), {"Status": "Stopped"}),),
        undo=(
            Call("Start-Service", {"Name": TRANSPORT}),
            Call("Suspend-Service", {"Name": TRANSPORT}),
        ),
        once=True,
    )


def import_on_edge(
    edge: str,
    thumbprint: str,
    pfx: FileBytes,
    password: Secret | None,
    friendly_name: str,
    exportable: bool,
) -> Step:
    """Import the PFX on the Edge (key not exportable unless asked), no service yet."""
    params: dict = {
        "FileData": pfx,
        "FriendlyName": steps.fit_friendly_name(friendly_name),
        "PrivateKeyExportable": exportable,
    }
    if password is not None:
        params["Password"] = password
    return Step(
        id=f"import-{edge.lower()}",
        server=edge,
        does=f"import {thumbprint} on {edge}"
        + (" (key exportable, as asked)" if exportable else " (key not exportable)"),
        calls=(Call("Import-ExchangeCertificate", params),),
        post=(Check(f"{thumbprint} is on {edge}", _certificates(), {"Thumbprint": thumbprint}),),
        undo=(Call("Remove-ExchangeCertificate", {"Thumbprint": thumbprint}),),
        undo_questions=(
            ExpectedQuestion(
                match=thumbprint,
                answer="Yes",
                why="rollback removes the certificate this change imported",
            ),
        ),
    )


def enable_smtp(edge: str, thumbprint: str, default: str, replace_default: bool) -> Step:
    """Enable SMTP; the default question answered from replace_default_certificate (F12)."""
    if not replace_default:
        return steps.enable_smtp_keeping_default(edge, thumbprint, default)
    return Step(
        id=f"enable-smtp-{edge.lower()}",
        server=edge,
        does=f"enable SMTP on {thumbprint} and make it the default (replace_default_certificate)",
        calls=(Call("Enable-ExchangeCertificate", {"Thumbprint": thumbprint, "Services": "SMTP"}),),
        before=_transport(),
        post=(
            Check(
                f"{thumbprint} serves SMTP",
                _certificates(),
                {"Thumbprint": thumbprint, "Services": contains("SMTP")},
            ),
            Check(
                f"the default is now {thumbprint}",
                _transport(),
                {"InternalTransportCertificateThumbprint": thumbprint},
            ),
        ),
        undo=(
            Call(
                "Enable-ExchangeCertificate",
                {
                    "Thumbprint": Before("InternalTransportCertificateThumbprint"),
                    "Services": "SMTP",
                },
            ),
            _RESTART_ADAM,
        ),
        questions=(
            ExpectedQuestion(
                match=steps.DEFAULT_QUESTION,
                answer="Yes",
                why="replace_default_certificate: the Edge default changes, so the subscription "
                "is made again below (F12)",
            ),
        ),
        undo_questions=(
            ExpectedQuestion(
                match=steps.DEFAULT_QUESTION,
                answer="Yes",
                why="rollback makes the previous default the default again",
            ),
        ),
    )


def restart_adam(edge: str, presents: str) -> Step:
    """Restart AD LDS so that it presents the intended certificate on 50636 (F7), probed."""
    return Step(
        id=f"restart-adam-{edge.lower()}",
        server=edge,
        does=f"restart {ADAM} on {edge}: AD LDS picks its LDAPS certificate at start (F7)",
        calls=(_RESTART_ADAM,),
        post=(Check(f"{ADAM} runs", _service(ADAM), {"Status": "Running"}),),
        probes=(Probe(f"{edge} presents {presents} on 50636", edge, "ldaps", presents),),
        no_undo=(
            "a restart changes nothing by itself; rollback of the default certificate restarts "
            "AD LDS again"
        ),
    )


def remove_subscription(mailbox: str, edge: str) -> Step:
    """Remove-EdgeSubscription first (optional; resubscribing overwrites, edge-proc)."""
    return Step(
        id=f"remove-subscription-{edge.lower()}",
        server=mailbox,
        does=f"remove the Edge Subscription of {edge} (F10: the source servers are restored below)",
        calls=(Call("Remove-EdgeSubscription", {"Identity": edge}),),
        post=(
            Check(
                f"{edge} has no subscription",
                Call("Get-EdgeSubscription", {}, ("Name", "Site")),
                {"Name": edge},
                "absent",
            ),
        ),
        no_undo=(
            "the old subscription cannot come back: once this step started, rollback stops and "
            "says to finish forward (the next steps subscribe again and put the Edge back in the "
            "send connectors, F10)"
        ),
        questions=(
            ExpectedQuestion(
                match=f'Edge Subscription "{edge}"',
                answer="Yes",
                why="remove_subscription_first: removed on purpose, made again below",
            ),
        ),
        once=True,
        final=True,
    )


def subscription_file(edge: str, change: str) -> Step:
    """New-EdgeSubscription -FileName on the Edge (in edgebook's folder, made if missing), read
    back as bytes, deleted at once."""
    path = SUBSCRIPTION_PATH.format(change=change)
    return Step(
        id=f"subscription-file-{edge.lower()}",
        server=edge,
        does=(
            f"write a new subscription file on {edge}, read it into memory (it holds clear-text "
            "credentials: never written here) and delete it from the Edge"
        ),
        calls=(
            # New-EdgeSubscription does not create the file's folder (.NET's file write); the
            # lock made it, but the step stands on its own (MAKE_FOLDER: "unless it exists")
            Call("New-Item", dict(MAKE_FOLDER)),
            Call("New-EdgeSubscription", {"FileName": path}),
            Call("Get-Content", {"Path": path, "Encoding": "Byte", "ReadCount": 0}),
            Call("Remove-Item", {"Path": path}),
        ),
        post=(),
        keeps=SUBSCRIPTION,
        no_undo="the next step imports the file; the bootstrap account expires by itself",
        questions=(
            ExpectedQuestion(
                match=SUBSCRIBE_QUESTION,
                answer="Yes",
                why="the subscription is renewed on purpose; the file is imported at once (F8)",
            ),
        ),
    )


def subscribe(mailbox: str, edge: str, site: str, default: str) -> Step:
    """Import the subscription file on a Mailbox server without creating connectors (F10)."""
    return Step(
        id=f"subscribe-{edge.lower()}",
        server=mailbox,
        does=(
            f"import {edge}'s subscription on {mailbox} (site {site}) without creating send "
            "connectors"
        ),
        calls=(
            Call(
                "New-EdgeSubscription",
                {
                    "FileData": Carried(SUBSCRIPTION),
                    "Site": site,
                    "CreateInboundSendConnector": False,
                    "CreateInternetSendConnector": False,
                },
            ),
        ),
        post=(
            Check(
                f"the organisation holds {default} as {edge}'s certificate",
                _transport(),  # all of them: without a subscription the Edge's is not found
                {"Name": edge, "InternalTransportCertificateThumbprint": default},
            ),
        ),
        no_undo=(
            "the old subscription cannot come back (the new one carries the Edge's default "
            "certificate of now): once this step started, rollback stops and says to finish "
            "forward; undoing the steps before it would leave EdgeSync broken"
        ),
        once=True,
        final=True,
    )


def sources(mailbox: str, connector: str, edge: str) -> Step:
    """Put the Edge back among a send connector's source servers (F10); no undo: the snapshot
    before the change had it there, and taking it out again would stop mail through it."""
    step = steps.restore_source_servers(mailbox, connector, [edge])
    return Step(
        id=step.id,
        server=mailbox,
        does=step.does,
        calls=step.calls,
        post=step.post,
        no_undo=(
            f"{edge} was a source of {connector} before the change (the snapshot): it stays one"
        ),
    )


def tls_name(mailbox: str, connector: str, name: str, edge: str, subject: str, issuer: str) -> Step:
    """TlsCertificateName on a Mailbox server holding the certificate (F9); its undo restores
    the name and synchronises again."""
    step = steps.set_send_connector_tls_name(mailbox, connector, name)
    holds = Check(
        f"{mailbox} holds a certificate with this issuer and subject (F9)",
        _certificates(mailbox),
        {"Subject": subject, "Issuer": issuer},
    )
    sync = Call("Start-EdgeSynchronization", {"TargetServer": edge, "ForceFullSync": True})
    return Step(
        id=step.id,
        server=mailbox,
        does=step.does,
        calls=step.calls,
        pre=(holds,),
        before=step.before,
        post=step.post,
        undo=(*step.undo, sync),
    )


def synchronise(mailbox: str, edge: str, timeout_s: float, every_s: float) -> Step:
    """Start-EdgeSynchronization -ForceFullSync, then poll Test-EdgeSynchronization."""
    status = Call(
        "Test-EdgeSynchronization",
        {"TargetServer": edge, "ExcludeRecipientTest": True},
        ("Name", "SyncStatus", "FailureDetail"),
    )
    return Step(
        id=f"sync-{edge.lower()}",
        server=mailbox,
        does=f"synchronise {edge} now (full) and wait until EdgeSync reports Normal",
        calls=(Call("Start-EdgeSynchronization", {"TargetServer": edge, "ForceFullSync": True}),),
        post=(Check(f"EdgeSync to {edge} is Normal", status, {"SyncStatus": "Normal"}),),
        no_undo="the undo of the TlsCertificateName step synchronises again",
        wait=Wait(timeout_s, every_s, f"EdgeSync to {edge} to be Normal"),
        once=True,
    )


def replicated(edge: str, connector: str, name: str, timeout_s: float, every_s: float) -> Step:
    """Wait until the Edge's replica of a send connector names the new certificate (F4)."""
    read = Call("Get-SendConnector", {"Identity": connector}, ("Identity", "TlsCertificateName"))
    return Step(
        id=f"replicated-{_slug(connector)}-{edge.lower()}",
        server=edge,
        does=f"check that {connector} reached {edge} with the new TlsCertificateName",
        calls=(read,),
        post=(
            Check(f"{edge}'s copy of {connector} names {name}", read, {"TlsCertificateName": name}),
        ),
        no_undo="reads only",
        wait=Wait(timeout_s, every_s, f"{connector} to replicate to {edge}"),
    )


def receive_tls_name(edge: str, connector: str, name: str) -> Step:
    """TlsCertificateName of an Edge receive connector (not replicated)."""
    step = steps.set_receive_connector_tls_name(edge, connector, name)
    return Step(
        id=f"receive-tls-{_slug(connector.split(chr(92))[-1])}",
        server=edge,
        does=step.does,
        calls=step.calls,
        before=step.before,
        post=step.post,
        undo=step.undo,
    )


def remove_old(edge: str, thumbprint: str, subject: str) -> Step:
    """Remove the old certificate with the same subject (F2), after the connectors moved (F21)."""
    return Step(
        id=f"remove-old-{thumbprint[:12].lower()}-{edge.lower()}",
        server=edge,
        does=(
            f"remove the old {thumbprint} ({subject}) from {edge}: two certificates with one "
            "subject break TLS (F2); no connector names it any more (F21)"
        ),
        calls=(Call("Remove-ExchangeCertificate", {"Thumbprint": thumbprint}),),
        post=(
            Check(f"{thumbprint} is gone", _certificates(), {"Thumbprint": thumbprint}, "absent"),
        ),
        no_undo="a removed certificate cannot be put back without its PFX",
        questions=(
            ExpectedQuestion(
                match=thumbprint, answer="Yes", why="F2: the old certificate shares the subject"
            ),
        ),
        final=True,
    )


def start_transport(edge: str) -> Step:
    """Start transport and keep it paused until it is verified."""
    return Step(
        id=f"start-transport-{edge.lower()}",
        server=edge,
        does=f"start {TRANSPORT} on {edge}, still paused (it binds the new certificates, F11)",
        calls=(
            Call("Start-Service", {"Name": TRANSPORT}),
            Call("Suspend-Service", {"Name": TRANSPORT}),
        ),
        pre=(Check(f"{TRANSPORT} is stopped", _service(TRANSPORT), {"Status": "Stopped"}),),
        post=(Check(f"{TRANSPORT} is paused", _service(TRANSPORT), {"Status": "Paused"}),),
        undo=(Call("Stop-Service", {"Name": TRANSPORT}),),
        once=True,
    )


def resume(edge: str, smtp: str, ldaps: str, timeout_s: float, every_s: float) -> Step:
    """Resume transport; probe 25 and 50636; wait until no queue retries."""
    return Step(
        id=f"resume-{edge.lower()}",
        server=edge,
        does=f"resume {TRANSPORT} on {edge}; verify what it presents on 25 and 50636",
        calls=(Call("Resume-Service", {"Name": TRANSPORT}),),
        post=(
            Check(f"{TRANSPORT} runs", _service(TRANSPORT), {"Status": "Running"}),
            Check("no queue retries", _queues(), {"Status": "Retry"}, "absent"),
        ),
        probes=(
            Probe(f"{edge} presents {smtp} on 25 (STARTTLS)", edge, "smtp", smtp),
            Probe(f"{edge} presents {ldaps} on 50636", edge, "ldaps", ldaps),
        ),
        undo=(Call("Suspend-Service", {"Name": TRANSPORT}),),
        wait=Wait(timeout_s, every_s, f"{edge} to deliver"),
    )
