"""One WSMan shell as a PSRP runspace pool: decode pipelines, run them, queue the replies.

The WSMan layer (edgebook.lab.winrm.wsman) hands over raw PSRP fragments; this module owns the
psrpcore ServerRunspacePool, turns each CreatePipeline into Statement lists, runs Backend.invoke
in a worker thread, and keeps the outgoing fragments per target (pool or pipeline) until a
Receive picks them up. The request that starts a pipeline returns when it has ended or when it
waits for the client's answer to a question: a cmdlet that asks sends a PipelineHostCall
(PromptForChoice) and blocks until the client's PipelineHostResponse comes with a Send on the
"pr" stream, as PowerShell's server does. A client that declared no host UI gets no host call.
A CreatePipeline sent whole in the Command's one fragment, and the Create's SessionCapability
and InitRunspacePool, are read straight from their CLIXML (edgebook.lab.winrm.pipeline_reader,
edgebook.lab.winrm.pool_reader), without psrpcore's PSObjects; any other, or one a reader
refuses, goes through psrpcore.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast

from psrpcore import (
    CreatePipelineEvent,
    EndOfPipelineInputEvent,
    GetAvailableRunspacesEvent,
    PipelineHostResponseEvent,
    PipelineInputEvent,
    PowerShell,
    PSRPPayload,
    ResetRunspaceStateEvent,
    ServerPipeline,
    SetMaxRunspacesEvent,
    SetMinRunspacesEvent,
    StreamType,
)
from psrpcore.types import (
    ErrorCategory,
    ErrorCategoryInfo,
    ErrorRecord,
    NETException,
    PSInvocationState,
)

from edgebook.exchange.wire_types import EXCHANGE_CONFIGURATION
from edgebook.lab.winrm.hostcalls import PipelineHost, Run
from edgebook.lab.winrm.outcache import write_output
from edgebook.lab.winrm.pipeline_reader import (
    HostFlags,
    PipelineRequest,
    Unreadable,
    WireCommand,
    read_create_pipeline,
)
from edgebook.lab.winrm.pool_reader import open_pool, read_opening
from edgebook.lab.winrm.protocol import (
    Backend,
    CommandCall,
    ErrorInfo,
    Invocation,
    Session,
    Statement,
)
from edgebook.lab.winrm.replay import LabRunspacePool, replay
from edgebook.lab.winrm.wire import from_wire

log = logging.getLogger(__name__)

SIGNAL_TERMINATE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate"
NO_LANGUAGE = ErrorInfo(
    message=(
        "The syntax is not supported by this runspace. This can occur if the runspace is in "
        "no-language mode."
    ),
    fully_qualified_error_id="ScriptsNotAllowed",
    category="ParserError",
    exception_type="System.Management.Automation.ParseException",
)
_EXCEPTION_BASES = {
    "System.Management.Automation.ParseException": [
        "System.Management.Automation.RuntimeException",
        "System.SystemException",
    ],
    "System.Management.Automation.ParameterBindingException": [
        "System.Management.Automation.RuntimeException",
        "System.SystemException",
    ],
    "System.Management.Automation.CommandNotFoundException": [
        "System.Management.Automation.RuntimeException",
        "System.SystemException",
    ],
}
_TERMINAL = {PSInvocationState.Completed, PSInvocationState.Failed, PSInvocationState.Stopped}
_NOTHING_SENT = PipelineRequest((), True, None)  # input ended before any CreatePipeline


class UnknownCommandError(LookupError):
    """A WSMan request named a CommandId this shell does not know."""


class PSRPDataError(ValueError):
    """The PSRP bytes a client sent could not be processed."""


@dataclass
class Received:
    """What one Receive returns: PSRP fragments, and whether the command has finished."""

    fragments: list[bytes]
    done: bool


class _CategoryInfo(ErrorCategoryInfo):
    """ErrorCategoryInfo with PowerShell's text: 'Category: (Target:Type) [Activity], Reason'."""

    def __str__(self) -> str:
        return (
            f"{self.Category.name}: ({self.TargetName or ''}:{self.TargetType or ''}) "
            f"[{self.Activity or ''}], {self.Reason or ''}"
        )


def error_record(info: ErrorInfo, activity: str = "") -> ErrorRecord:
    """Build the ErrorRecord PowerShell would write for this error."""
    exception = NETException(Message=info.message)
    bases = _EXCEPTION_BASES.get(info.exception_type, [])
    names = [info.exception_type, *bases, "System.Exception", "System.Object"]
    exception.PSObject.type_names = list(dict.fromkeys(names))
    try:
        category = ErrorCategory[info.category]
    except KeyError:
        category = ErrorCategory.NotSpecified
    category_info = _CategoryInfo(
        Category=category,
        Activity=activity,
        Reason=info.exception_type.rpartition(".")[2],
        TargetName=info.target or "",
        TargetType="String" if info.target is not None else "",
    )
    return ErrorRecord(
        Exception=exception,
        CategoryInfo=category_info,
        TargetObject=info.target,
        FullyQualifiedErrorId=info.fully_qualified_error_id,
    )


def decode_statements(commands: Iterable[WireCommand]) -> list[Statement]:
    """Split a pipeline's commands into statements of CommandCalls."""
    statements: list[Statement] = [[]]
    for command in commands:
        call = CommandCall(name=command.name, is_script=command.is_script)
        seen: set[str] = set()
        for name, value in command.parameters:
            if name is None:
                call.arguments.append(value)
                continue
            name = name.lstrip("-")
            if name.lower() in seen:
                raise _BindingError(name)
            seen.add(name.lower())
            call.parameters[name] = value
        statements[-1].append(call)
        if command.end_of_statement:
            statements.append([])
    return [statement for statement in statements if statement]


def psrpcore_request(pipeline: PowerShell) -> PipelineRequest:
    """What psrpcore made of a CreatePipeline, as the lab runs it (values as plain Python)."""
    commands = tuple(
        WireCommand(
            name=str(command.command_text),
            is_script=bool(command.is_script),
            parameters=tuple(
                (None if name is None else str(name), from_wire(value))
                for name, value in command.parameters
            ),
            end_of_statement=bool(command.end_of_statement),
        )
        for command in pipeline.commands
    )
    info = pipeline.host
    host = HostFlags(bool(info.IsHostNull), bool(info.IsHostUINull), bool(info.UseRunspaceHost))
    return PipelineRequest(commands, bool(pipeline.no_input), host)


class _BindingError(Exception):
    """The same parameter was given twice (PowerShell's ParameterAlreadyBound)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.info = ErrorInfo(
            message=(
                f"Cannot bind parameter because parameter '{name}' is specified more than once. "
                "To provide multiple values to parameters that can accept multiple values, use the "
                'array syntax. For example, "-parameter value1,value2,value3".'
            ),
            fully_qualified_error_id="ParameterAlreadyBound",
            category="InvalidArgument",
            exception_type="System.Management.Automation.ParameterBindingException",
        )


class ShellRunspace:
    """A WSMan shell: one psrpcore runspace pool, its Session, its pipelines and reply queues."""

    def __init__(
        self,
        shell_id: str,
        session: Session,
        backend: Backend,
        *,
        max_fragment: int,
        owner: str,
    ) -> None:
        self.shell_id = shell_id
        self.session = session
        self.owner = owner
        self.created = time.monotonic()
        self._backend = backend
        self._max_fragment = max(max_fragment, 1024)
        self._pool = LabRunspacePool()
        self._inputs: dict[uuid.UUID, list[Any]] = {}
        self._requests: dict[uuid.UUID, PipelineRequest] = {}
        self._runs: dict[uuid.UUID, Run] = {}
        self._outgoing: dict[uuid.UUID | None, collections.deque[bytes]] = {}
        self._changed = threading.Condition(threading.RLock())

    def open(self, creation_xml: bytes) -> None:
        """Open the pool with the SessionCapability and InitRunspacePool of the WSMan Create."""
        with self._changed:
            try:
                opening = read_opening(creation_xml, self._pool._cipher)
            except Unreadable:
                self._feed(creation_xml, None, StreamType.default)
                return
            with self._client_data():
                open_pool(self._pool, opening)

    def create_pipeline(self, command_id: str, fragment: bytes) -> None:
        """Start a pipeline from the first CreatePipeline fragment of a WSMan Command."""
        try:
            pipeline_id = uuid.UUID(command_id)
        except ValueError:
            raise PSRPDataError(f"the CommandId {command_id!r} is not a GUID") from None
        with self._changed:
            ServerPipeline(self._pool, pipeline_id)
            self._outgoing.setdefault(pipeline_id, collections.deque())
            try:
                request = read_create_pipeline(fragment, pipeline_id, self._pool._cipher)
            except Unreadable:
                self._feed(fragment, pipeline_id, StreamType.default)
                return
            with self._client_data():
                self._created(pipeline_id, request)

    def send(self, data: bytes, command_id: str | None, stream: str) -> None:
        """Feed fragments a WSMan Send carried to the pool or to one pipeline."""
        with self._changed:
            pipeline_id = self._known(command_id)
            stream_type = StreamType.prompt_response if stream == "pr" else StreamType.default
            self._feed(data, pipeline_id, stream_type)

    def receive(self, command_id: str | None, max_bytes: int, timeout: float) -> Received | None:
        """Take queued fragments for the target, waiting up to timeout; None when none came."""
        deadline = time.monotonic() + timeout
        with self._changed:
            target = self._known(command_id)
            queue = self._outgoing.setdefault(target, collections.deque())
            while not queue and not self._finished(target):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(remaining)
                if target is not None and target not in self._outgoing:
                    raise UnknownCommandError(command_id)
            fragments: list[bytes] = []
            budget = max(max_bytes, 1)
            while queue and (not fragments or len(queue[0]) <= budget):
                fragment = queue.popleft()
                budget -= len(fragment)
                fragments.append(fragment)
            return Received(fragments, target is not None and not queue and self._finished(target))

    def signal(self, command_id: str, code: str) -> None:
        """Handle a WSMan Signal: Terminate closes the pipeline, ctrl_c stops it."""
        with self._changed:
            pipeline_id = self._pipeline(command_id)
            pipe = self._pool.pipeline_table.get(pipeline_id)
            if pipe is not None and pipe.state in (
                PSInvocationState.Running,
                PSInvocationState.Stopping,
            ):
                pipe.stop()
            if code.lower() == SIGNAL_TERMINATE:
                if pipe is not None:
                    pipe.close()
                self._inputs.pop(pipeline_id, None)
                self._requests.pop(pipeline_id, None)
                self._outgoing.pop(pipeline_id, None)
            self._flush()

    def close(self) -> None:
        """Stop and close every pipeline, then the pool (WSMan Delete)."""
        with self._changed:
            for pipe in list(self._pool.pipeline_table.values()):
                if pipe.state in (PSInvocationState.Running, PSInvocationState.Stopping):
                    pipe.stop()
                pipe.close()
            self._pool.close()
            self._outgoing.clear()
            self._requests.clear()
            self._changed.notify_all()

    def _known(self, command_id: str | None) -> uuid.UUID | None:
        return None if command_id is None else self._pipeline(command_id)

    def _pipeline(self, command_id: str) -> uuid.UUID:
        try:
            pipeline_id = uuid.UUID(command_id)
        except ValueError:
            raise UnknownCommandError(command_id) from None
        if pipeline_id not in self._outgoing:
            raise UnknownCommandError(command_id)
        return pipeline_id

    def _finished(self, target: uuid.UUID | None) -> bool:
        if target is None:
            return False
        pipe = self._pool.pipeline_table.get(target)
        return pipe is None or pipe.state in _TERMINAL

    def _feed(self, data: bytes, pipeline_id: uuid.UUID | None, stream_type: StreamType) -> None:
        with self._client_data():
            self._pool.receive_data(PSRPPayload(data, stream_type, pipeline_id))
            while (event := self._pool.next_event()) is not None:
                self._on_event(event)

    @contextlib.contextmanager
    def _client_data(self) -> Iterator[None]:
        """Process what a client sent: a failure is a PSRPDataError; the replies are queued."""
        try:
            yield
        except Exception as exc:  # psrpcore raises several types on malformed client data
            raise PSRPDataError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            self._flush()

    def _created(self, pipeline_id: uuid.UUID, request: PipelineRequest) -> None:
        """A pipeline's CreatePipeline came: run it now, or when its input has ended."""
        self._requests[pipeline_id] = request
        if request.no_input:
            self._run(pipeline_id, [])
        else:
            self._inputs[pipeline_id] = []

    def _on_event(self, event: Any) -> None:
        if isinstance(event, CreatePipelineEvent):
            # psrpcore has set the pipeline's metadata (event.pipeline would convert again)
            metadata = self._pool.pipeline_table[event.pipeline_id].metadata
            self._created(event.pipeline_id, psrpcore_request(cast(PowerShell, metadata)))
        elif isinstance(event, PipelineHostResponseEvent):
            run = self._runs.get(event.pipeline_id)
            if run is not None and run.asking == event.ci:
                run.answer = event
        elif isinstance(event, PipelineInputEvent):
            self._inputs.setdefault(event.pipeline_id, []).append(from_wire(event.data))
        elif isinstance(event, EndOfPipelineInputEvent):
            self._run(event.pipeline_id, self._inputs.pop(event.pipeline_id, []))
        elif isinstance(
            event, SetMaxRunspacesEvent | SetMinRunspacesEvent | ResetRunspaceStateEvent
        ):
            self._pool.runspace_availability_response(event.ci, True)
        elif isinstance(event, GetAvailableRunspacesEvent):
            self._pool.runspace_availability_response(event.ci, max(self._pool.max_runspaces, 1))

    def _run(self, pipeline_id: uuid.UUID, input_values: list[Any]) -> None:
        """Start the pipeline's worker; return when it has ended or waits for an answer."""
        pipe = self._pool.pipeline_table[pipeline_id]
        pipe.start()
        request = self._requests.get(pipeline_id, _NOTHING_SENT)
        run = self._runs[pipeline_id] = Run()
        host = (
            None
            if self._host_ui_null(request.host)
            else PipelineHost(self._changed, self._flush, pipe, run)
        )
        threading.Thread(
            target=self._work,
            args=(pipe, request.commands, input_values, host, run),
            name=f"lab-pipeline-{pipeline_id}",
            daemon=True,
        ).start()
        while not run.done and run.asking is None:
            self._changed.wait()

    def _work(
        self,
        pipe: ServerPipeline,
        commands: tuple[WireCommand, ...],
        input_values: list[Any],
        host: PipelineHost | None,
        run: Run,
    ) -> None:
        activity = commands[0].name if commands else ""
        try:
            invocation = self._invoke(commands, input_values, host)
            with self._changed:
                if pipe.state == PSInvocationState.Running:
                    _write(pipe, invocation, activity)
        except Exception as exc:  # a lab bug must fail the pipeline, not the HTTP request
            log.exception(
                "pipeline %s on %s failed inside the lab", pipe.pipeline_id, self.session.server
            )
            internal = ErrorInfo(
                message=f"The lab failed to run this pipeline: {type(exc).__name__}: {exc}",
                fully_qualified_error_id="EdgebookLabInternalError",
                exception_type="System.InvalidOperationException",
            )
            with self._changed:
                if pipe.state == PSInvocationState.Running:
                    pipe._change_state(PSInvocationState.Failed, error_record(internal, activity))
        finally:
            with self._changed:
                run.done = True
                self._runs.pop(pipe.pipeline_id, None)
                self._flush()

    def _host_ui_null(self, flags: HostFlags | None) -> bool:
        """Whether the client declared no host UI for this pipeline (pypsrp's default)."""
        if flags is None or flags.use_runspace_host:
            info = self._pool.host
            return info is None or bool(info.IsHostNull) or bool(info.IsHostUINull)
        return flags.is_host_null or flags.is_host_ui_null

    def _invoke(
        self,
        commands: tuple[WireCommand, ...],
        input_values: list[Any],
        host: PipelineHost | None,
    ) -> Invocation:
        try:
            statements = decode_statements(commands)
        except _BindingError as exc:
            return Invocation(terminating=exc.info)
        scripts = any(call.is_script for statement in statements for call in statement)
        if scripts and self.session.configuration_name == EXCHANGE_CONFIGURATION:
            return Invocation(terminating=NO_LANGUAGE)
        return self._backend.invoke(self.session, statements, input_values, host)

    def _flush(self) -> None:
        while (payload := self._pool.data_to_send(self._max_fragment)) is not None:
            self._outgoing.setdefault(payload.pipeline_id, collections.deque()).append(payload.data)
        self._changed.notify_all()


def _write(pipe: ServerPipeline, invocation: Invocation, activity: str) -> None:
    """Write an Invocation's streams to the pipeline and end it (Completed or Failed)."""
    for value in invocation.output:
        write_output(pipe, value)
    for info in invocation.errors:
        _write_error(pipe, info, info.command or activity)
    for warning in invocation.warnings:
        pipe.write_warning(warning)
    if invocation.terminating is not None:
        failure = invocation.terminating
        pipe._change_state(
            PSInvocationState.Failed, error_record(failure, failure.command or activity)
        )
    else:
        pipe.complete()


def _write_error(pipe: ServerPipeline, info: ErrorInfo, activity: str) -> None:
    """pipe.write_error() of the error's ErrorRecord, replayed when written before."""

    def send() -> None:
        record = error_record(info, activity)
        pipe.write_error(
            record.Exception,
            record.CategoryInfo,
            target_object=record.TargetObject,
            fully_qualified_error_id=record.FullyQualifiedErrorId,
        )

    if info.target is not None and type(info.target) is not str:
        send()  # (a target of another type: its CLIXML is not keyed)
        return
    key = (ErrorRecord, activity, info.message, info.fully_qualified_error_id, info.category)
    replay(pipe.runspace_pool, (*key, info.target, info.exception_type), pipe.pipeline_id, send)
