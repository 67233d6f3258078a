"""edgebook's PSRP host: answers the questions a step expects, refuses every other one.

A client that declares a host UI receives Exchange's questions (ShouldContinue, ShouldProcess)
as PipelineHostCalls (PromptForChoice, method 26). QuestionHost answers a question only when a
question the running call expects matches its message and names one of the offered choices; it
records every question it is asked, and refuses any other with the answer the .NET client gives
when its host method throws: a host response carrying an ErrorRecord (``me``), which makes the
cmdlet fail instead of acting. It never picks a choice on its own. Any other prompt (Read-Host,
Get-Credential) is refused the same way; Write* calls are logged.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from pypsrp.complex_objects import HostMethodIdentifier
from pypsrp.host import PSHost, PSHostUserInterface
from pypsrp.powershell import RunspacePool

from edgebook.exchange.questions import AnsweredQuestion, ExpectedQuestion

log = logging.getLogger(__name__)

PROMPT_FOR_CHOICE = 26
WRITE_METHODS = range(13, 23)  # Write, WriteLine, WriteErrorLine ... WriteWarningLine
HOST_EXCEPTION = ["System.Management.Automation.Host.HostException", "System.Exception"]
PERMISSION_DENIED = 18  # System.Management.Automation.ErrorCategory


class QuestionRefused(Exception):
    """edgebook did not answer a host call (raised inside pypsrp's host-call handling)."""


def choice_label(choice: Any) -> str:
    """The label of a ChoiceDescription as pypsrp deserialises it ("&Yes")."""
    for properties in ("adapted_properties", "extended_properties"):
        values = getattr(choice, properties, None) or {}
        for key, value in values.items():
            if str(key).casefold() == "label":
                return str(value)
    return str(choice)


def plain(label: str) -> str:
    """A choice label without its '&' accelerator, casefolded ("Yes to &All" -> "yes to all")."""
    return label.replace("&", "").strip().casefold()


class _QuestionUI(PSHostUserInterface):
    """The UI part of QuestionHost (pypsrp calls the method named after the host call)."""

    def __init__(self, host: QuestionHost) -> None:
        super().__init__(raw_ui=None)
        self._host = host

    def PromptForChoice(  # PSRP's method name
        self,
        runspace: RunspacePool,
        pipeline: Any,
        caption: str,
        message: str,
        choices: list[Any],
        default_choice: int,
    ) -> int:
        """Answer from the expected questions, or refuse (QuestionRefused)."""
        return self._host.choose(str(caption or ""), str(message or ""), choices)


class QuestionHost(PSHost):
    """A pypsrp PSHost with a UI that answers only the questions the running call expects."""

    def __init__(self, server: str) -> None:
        super().__init__(None, None, False, "edgebook", None, _QuestionUI(self), "1.0")
        self.server = server
        self.expected: tuple[ExpectedQuestion, ...] = ()
        self.answers: list[AnsweredQuestion] = []  # every question of the session, in order

    def run_method(
        self,
        method_identifier: HostMethodIdentifier,
        args: list[Any],
        runspace: RunspacePool,
        pipeline: Any = None,
    ) -> Any:
        """Dispatch a host call: PromptForChoice is answered or refused, Write* is logged,
        PSHost's own getters are answered by pypsrp, every other prompt is refused."""
        method = method_identifier.value or 0
        if method == PROMPT_FOR_CHOICE or method < 11:
            return super().run_method(method_identifier, args, runspace, pipeline)
        if method in WRITE_METHODS:
            text = " ".join(str(arg) for arg in args if isinstance(arg, str))
            log.info("%s: host output: %s", self.server, text)
            return None
        name = str(method_identifier)
        question = AnsweredQuestion(self.server, name, _text(args), (), "", expected=False)
        self.answers.append(question)
        raise QuestionRefused(
            f"edgebook does not answer {name} host calls: a runbook step answers only the "
            "questions it expects"
        )

    def choose(self, caption: str, message: str, choices: Sequence[Any]) -> int:
        """The index of the choice the matching expected question names; else QuestionRefused."""
        labels = tuple(choice_label(choice).replace("&", "") for choice in choices)
        for question in self.expected:
            if not question.matches(message):
                continue
            for index, label in enumerate(labels):
                if plain(label) == plain(question.answer):
                    self.answers.append(
                        AnsweredQuestion(self.server, caption, message, labels, label, True)
                    )
                    log.info("%s: answered %r to %r", self.server, label, message)
                    return index
        self.answers.append(AnsweredQuestion(self.server, caption, message, labels, "", False))
        raise QuestionRefused(
            "edgebook refused to answer this question: the running step does not expect it (or "
            "expects an answer that is not among the choices offered)"
        )


class HostedRunspacePool(RunspacePool):
    """pypsrp's RunspacePool, sending an error host response when the host refuses a call
    (pypsrp would otherwise let the exception escape and never answer the server)."""

    def _process_host_call(self, message: Any, response_obj: Any, pipeline: Any = None) -> Any:
        try:
            return super()._process_host_call(message, response_obj, pipeline)
        except QuestionRefused as refusal:
            host_call = message.data
            response = response_obj()
            response.ci = host_call.ci
            response.mi = host_call.mi
            response.me = _error_record(str(refusal))
            pipeline_id = pipeline.id if pipeline is not None else None
            for fragment in self._fragmenter.fragment(response, self.id, pipeline_id):
                self.shell.send("pr", fragment)
            return host_call


def _error_record(text: str) -> ET.Element:
    """The ErrorRecord of a HostException as the .NET client encodes a failed host method, as a
    raw CLIXML element (pypsrp serialises it as is; its ErrorRecord class drops the Nil members
    a PowerShell server reads). Its RefIds stay clear of the ones pypsrp numbers from 0."""
    record = _obj(["System.Management.Automation.ErrorRecord", "System.Object"], text, 1000)
    members = ET.SubElement(record, "MS")
    exception = _obj([*HOST_EXCEPTION, "System.Object"], text, 1001, name="Exception")
    ET.SubElement(ET.SubElement(exception, "Props"), "S", N="Message").text = text
    members.append(exception)
    ET.SubElement(members, "Nil", N="TargetObject")
    ET.SubElement(members, "S", N="FullyQualifiedErrorId").text = "EdgebookQuestionRefused"
    ET.SubElement(members, "Nil", N="InvocationInfo")
    ET.SubElement(members, "I32", N="ErrorCategory_Category").text = str(PERMISSION_DENIED)
    category = {
        "Activity": "",
        "Reason": "HostException",
        "TargetName": "",
        "TargetType": "",
        "Message": "PermissionDenied: (:) [], HostException",
    }
    for key, value in category.items():
        ET.SubElement(members, "S", N=f"ErrorCategory_{key}").text = value
    ET.SubElement(members, "B", N="SerializeExtendedInfo").text = "false"
    return record


def _obj(type_names: list[str], text: str, ref_id: int, name: str | None = None) -> ET.Element:
    attributes = {"RefId": str(ref_id)} | ({"N": name} if name else {})
    element = ET.Element("Obj", attributes)
    names = ET.SubElement(element, "TN", RefId=str(ref_id))
    for type_name in type_names:
        ET.SubElement(names, "T").text = type_name
    ET.SubElement(element, "ToString").text = text
    return element


def _text(args: Sequence[Any]) -> str:
    return " ".join(str(arg) for arg in args if isinstance(arg, str))
