"""A scripted Backend for the WSMan/PSRP endpoint tests: records calls, answers by cmdlet name."""

from __future__ import annotations

import datetime
import threading
from dataclasses import dataclass, field
from typing import Any

from edgebook.exchange.wire_types import EXCHANGE_CERTIFICATE
from edgebook.lab.winrm.objects import MVP_STRING, ExEnum, ExList, ExObject
from edgebook.lab.winrm.protocol import ErrorInfo, Invocation, Session, Statement

USERNAME = "LAB\\Administrator"
PASSWORD = "Lab-Pa55word!"
NOT_AFTER = datetime.datetime(2027, 1, 1, 12, 30, tzinfo=datetime.UTC)
SERVICES_TYPE = "Microsoft.Exchange.Management.SystemConfigurationTasks.AllowedServices"


def certificate(thumbprint: str = "A1B2C3", raw: bytes = b"\x30\x82\x01\x0a") -> ExObject:
    """An ExchangeCertificate-shaped object with every kind of value the wire must carry."""
    return ExObject(
        type_names=[EXCHANGE_CERTIFICATE, "System.Object"],
        properties={
            "Thumbprint": thumbprint,
            "Services": ExEnum(SERVICES_TYPE, "IMAP, POP, IIS, SMTP", 27),
            "CertificateDomains": ExList(MVP_STRING, ["edge01.contoso.com", "mail.contoso.com"]),
            "NotAfter": NOT_AFTER,
            "IsSelfSigned": False,
            "RawData": raw,
            "Lifetime": datetime.timedelta(days=365),
            "Issuer": ExObject(
                ["System.Security.Cryptography.X509Certificates.X500DistinguishedName"],
                {"Name": "CN=Lab CA"},
                "CN=Lab CA",
            ),
        },
        to_string=f"[Subject]\n  CN=edge01.contoso.com\n\n[Thumbprint]\n  {thumbprint}\n",
    )


@dataclass
class Call:
    """One Backend.invoke call as the endpoint made it."""

    session: Session
    statements: list[Statement]
    input: list[Any]


@dataclass
class FakeBackend:
    """Answers: Get-ExchangeCertificate, Echo (returns what it got), Soft-Fail, Hard-Fail, Big."""

    password: str = PASSWORD
    calls: list[Call] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def authenticate(self, server: str, username: str, password: str) -> bool:
        """Only USERNAME with the configured password."""
        return username == USERNAME and password == self.password

    def credential(self, server: str) -> tuple[str, str] | None:
        """The account NTLM checks: USERNAME with the configured password, on every server."""
        return USERNAME, self.password

    def count_request(self, server: str) -> None:
        """Count per server."""
        with self._lock:
            self.requests[server] = self.requests.get(server, 0) + 1

    def invoke(
        self, session: Session, statements: list[Statement], input: list[Any], host: Any = None
    ) -> Invocation:
        """Run the statements in order; output is concatenated, the first failure ends it."""
        with self._lock:
            self.calls.append(Call(session, statements, input))
        result = Invocation()
        for statement in statements:
            for call in statement:
                if call.name == "Get-ExchangeCertificate":
                    result.output.append(certificate(call.parameters.get("Thumbprint", "A1B2C3")))
                elif call.name == "Big":
                    result.output.append(bytes(range(256)) * (call.parameters["Size"] // 256))
                elif call.name == "Soft-Fail":
                    result.output.append("before")
                    result.errors.append(
                        ErrorInfo(
                            message="The specified certificate was not found.",
                            fully_qualified_error_id="ABC123,Soft-Fail",
                            category="ObjectNotFound",
                            target="EDGE01",
                            exception_type="Microsoft.Exchange.Configuration.Tasks."
                            "ManagementObjectNotFoundException",
                        )
                    )
                    result.warnings.append("The certificate expires soon.")
                elif call.name == "Hard-Fail":
                    result.terminating = ErrorInfo(
                        message="The operation couldn't be performed.",
                        fully_qualified_error_id="DEF456,Hard-Fail",
                        category="InvalidOperation",
                    )
                    return result
                else:
                    result.output.append(
                        {
                            "Name": call.name,
                            "IsScript": call.is_script,
                            "Parameters": call.parameters,
                            "Arguments": call.arguments,
                            "Input": input,
                        }
                    )
        return result
