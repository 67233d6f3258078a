"""The change engine on a fake Exchange: plan hashing, approval, journal, resume, rollback,
lock (the lab runs the same engine over pypsrp in test_prepare_lab.py)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from edgebook.change import steps
from edgebook.change.approval import NotApproved, approve, load_plan, save_plan
from edgebook.change.engine import Engine
from edgebook.change.journal import Journal
from edgebook.change.lock import EdgeLock, LockHeld, LockInfo
from edgebook.change.plan import Plan
from edgebook.change.reads import round_trips
from edgebook.change.rollback import rollback
from edgebook.change.step import Call, Check, Step, Wait
from edgebook.change.values import Carried, FileBytes, Secret
from edgebook.errors import ConfigError
from edgebook.exchange.errors import ExchangeConnectionError
from edgebook.exchange.questions import ExpectedQuestion
from tests.support.change import LOCK_FILE, FakeShell, World, _Error, shells

HYBRID = "Outbound to Office 365"
OLD_NAME = "<I>CN=Old CA<S>CN=hybrid.contoso.com"
NEW_NAME = "<I>CN=New CA<S>CN=hybrid.contoso.com"


@pytest.fixture
def world() -> World:
    return World(
        certificates={"EX01": {"SELF": "SMTP"}, "EDGE01": {"DEFAULT": "SMTP"}},
        defaults={"EX01": "SELF", "EDGE01": "DEFAULT"},
        connectors={HYBRID: {"TlsCertificateName": OLD_NAME, "SourceTransportServers": ["EDGE01"]}},
    )


@pytest.fixture
def pfx(tmp_path) -> FileBytes:
    path = tmp_path / "renewal.pfx"
    path.write_bytes(b"NEWTHUMB")
    return FileBytes.of(path)


def make_plan(pfx: FileBytes, facts: dict | None = None, password: str = "env:PFX_PW") -> Plan:
    return Plan(
        change="CHG-1",
        edge="EDGE01",
        phase="prepare",
        facts=facts or {"edge": {"default": "DEFAULT"}, "mailbox": {"EX01": ["SELF"]}},
        steps=(
            steps.stage_certificate("EX01", "NEWTHUMB", pfx, Secret(password), "renewal"),
            steps.set_send_connector_tls_name("EX01", HYBRID, NEW_NAME),
            steps.set_service(
                "EDGE01", "MSExchangeTransport", "Running", "Suspend-Service", "Resume-Service"
            ),
        ),
        notes=("phase 03: certificate only",),
    )


def journal(tmp_path) -> Journal:
    return Journal(tmp_path / "out" / "CHG-1" / "EDGE01" / "journal.jsonl", who="alice@pc1")


# --- the plan and its hash --------------------------------------------------------------------


def test_hash_is_canonical_over_key_order_and_whitespace(pfx):
    plan = make_plan(pfx, facts={"b": 1, "a": {"y": [1, 2], "x": "z"}})
    reordered = make_plan(pfx, facts={"a": {"x": "z", "y": [1, 2]}, "b": 1})
    assert plan.sha256 == reordered.sha256
    pretty = json.dumps(plan.to_dict(), indent=4)  # whitespace and key order of a file
    assert Plan.from_dict(json.loads(pretty)).sha256 == plan.sha256
    assert plan.canonical_json() == reordered.canonical_json()
    assert b" " not in plan.canonical_json().split(b'"facts"')[1][:40]


def test_secrets_are_references_in_the_plan_and_masked_in_its_text(pfx, monkeypatch):
    monkeypatch.setenv("PFX_PW", "s3cret-one")
    plan = make_plan(pfx)
    first = plan.sha256
    monkeypatch.setenv("PFX_PW", "s3cret-two")  # the secret is not part of the hash ...
    assert make_plan(pfx).sha256 == first
    assert make_plan(pfx, password="env:OTHER").sha256 != first  # ... its reference is
    for text in (plan.canonical_json().decode(), plan.text(), json.dumps(plan.rows())):
        assert "s3cret" not in text
    assert "******** (env:PFX_PW)" in plan.text()
    assert plan.text().splitlines()[-1] == f"plan sha256: {plan.sha256}"


def test_a_changed_fact_or_file_changes_the_hash(pfx, tmp_path):
    plan = make_plan(pfx)
    changed = make_plan(pfx, facts={"edge": {"default": "OTHER"}, "mailbox": {"EX01": ["SELF"]}})
    assert changed.sha256 != plan.sha256 and changed.facts_sha256 != plan.facts_sha256
    assert plan.differences(changed) == ['facts edge.default: "DEFAULT" -> "OTHER"']
    (tmp_path / "renewal.pfx").write_bytes(b"ANOTHER")
    assert make_plan(FileBytes.of(tmp_path / "renewal.pfx")).sha256 != plan.sha256


def test_a_step_without_undo_must_say_why():
    read = Call("Get-Service", {"Name": "X"}, ("Status",))
    with pytest.raises(ValueError, match="say why"):
        Step("x", "EDGE01", "does", (Call("Stop-Service"),), (Check("ok", read, {}),))
    step = steps.enable_smtp_keeping_default("EDGE01", "NEW", "DEFAULT")
    row = Plan("C", "EDGE01", "prepare", {}, (step,)).rows()[0]
    assert row["undo"].startswith("none: Exchange cannot take a service away")
    assert "'Overwrite the existing default SMTP certificate?' -> No" in row["questions"]


# --- journal ----------------------------------------------------------------------------------


def test_journal_cut_mid_line_is_read_to_the_last_whole_record_and_repaired(tmp_path):
    log = journal(tmp_path)
    log.append("apply-started", plan_sha256="a" * 64)
    log.append("step-started", step="one")
    with log.path.open("ab") as handle:
        handle.write(b'{"seq": 3, "event": "step-do')  # the crash
    read = log.read()
    assert [r["event"] for r in read.records] == ["apply-started", "step-started"]
    assert read.truncated and read.cut_bytes == 28
    assert "cut record (28 bytes after record 2 (step-started))" in read.notice()
    log.append("step-failed", step="one", error="x")
    repaired = log.read()
    assert not repaired.truncated
    assert [r["event"] for r in repaired.records][-2:] == ["journal-repaired", "step-failed"]
    assert [r["seq"] for r in repaired.records] == [1, 2, 3, 4]
    assert all(r["operator"] == "alice@pc1" for r in repaired.records)


# --- apply, resume, rollback ------------------------------------------------------------------


def test_apply_runs_every_step_and_journals_state_before_and_after(
    world, pfx, tmp_path, monkeypatch
):
    monkeypatch.setenv("PFX_PW", "pfx-secret")
    plan, log = make_plan(pfx), journal(tmp_path)
    result = Engine(plan, shells(world), log).apply()
    assert result.completed, result.error
    assert [o.status for o in result.outcomes] == ["done", "done", "done"]
    assert world.certificates["EX01"]["NEWTHUMB"] == "None" and world.defaults["EX01"] == "SELF"
    assert world.connectors[HYBRID]["TlsCertificateName"] == NEW_NAME
    assert world.secrets_seen == ["pfx-secret"]  # sent as a SecureText
    text = log.path.read_text()
    assert "pfx-secret" not in text
    done = {r["step"]: r for r in log.read().events("step-done")}
    assert done["tls-name-outbound-to-office-365"]["before"] == {
        "Identity": HYBRID,
        "TlsCertificateName": OLD_NAME,
    }
    assert done["tls-name-outbound-to-office-365"]["undo"][0]["params"]["TlsCertificateName"] == (
        OLD_NAME
    )


def test_resume_skips_done_steps_and_continues_after_the_failed_one(
    world, pfx, tmp_path, monkeypatch
):
    monkeypatch.setenv("PFX_PW", "pw")
    plan, log = make_plan(pfx), journal(tmp_path)
    world.fail["Set-SendConnector"] = "The connector is busy."
    first = Engine(plan, shells(world), log).apply()
    assert not first.completed and "The connector is busy." in first.error
    assert [o.status for o in first.outcomes] == ["done", "failed"]
    assert world.services["MSExchangeTransport"] == "Running"  # nothing after the failure
    second = Engine(plan, shells(world), log).apply()
    assert second.completed
    assert [o.status for o in second.outcomes] == ["skipped", "done", "done"]
    imports = [c for c in world.calls if c[1] == "Import-ExchangeCertificate"]
    assert len(imports) == 1  # not imported twice
    started = list(log.read().events("apply-started"))
    assert started[1]["resumed"] == ["stage-ex01"]


def test_a_done_step_whose_postcondition_was_undone_stops_the_resume(
    world, pfx, tmp_path, monkeypatch
):
    monkeypatch.setenv("PFX_PW", "pw")
    plan, log = make_plan(pfx), journal(tmp_path)
    world.fail["Set-SendConnector"] = "busy"
    Engine(plan, shells(world), log).apply()
    del world.certificates["EX01"]["NEWTHUMB"]  # someone removed it meanwhile
    result = Engine(plan, shells(world), log).apply()
    assert "the journal says it was done, but its postcondition no longer holds" in result.error
    assert [c for c in world.calls if c[1] == "Import-ExchangeCertificate"].__len__() == 1


def test_precondition_failure_runs_nothing(world, pfx, tmp_path, monkeypatch):
    monkeypatch.setenv("PFX_PW", "pw")
    world.defaults["EX01"] = "NEWTHUMB"  # F1: it is EX01's default already
    result = Engine(make_plan(pfx), shells(world), journal(tmp_path)).apply()
    assert "precondition not met" in result.error and "(F1)" in result.error
    assert not any(c[1] == "Import-ExchangeCertificate" for c in world.calls)


def test_rollback_reverts_completed_steps_newest_first(world, pfx, tmp_path, monkeypatch):
    monkeypatch.setenv("PFX_PW", "pw")
    plan, log = make_plan(pfx), journal(tmp_path)
    Engine(plan, shells(world), log).apply()
    result = rollback(log, shells(world))
    assert result.completed, result.error
    assert [(o.step, o.status) for o in result.outcomes] == [
        ("suspend-msexchangetransport-edge01", "rolled-back"),
        ("tls-name-outbound-to-office-365", "rolled-back"),
        ("stage-ex01", "rolled-back"),
    ]
    assert world.services["MSExchangeTransport"] == "Running"
    assert world.connectors[HYBRID]["TlsCertificateName"] == OLD_NAME
    assert "NEWTHUMB" not in world.certificates["EX01"]
    assert result.outcomes[1].message == "state before the step restored"
    (answer,) = result.answers  # Remove-ExchangeCertificate asked; answered on purpose
    assert answer.answer == "Yes" and answer.expected
    assert [r["event"] for r in log.read().records].count("answer") == 1
    again = rollback(log, shells(world))  # nothing left to revert
    assert again.completed and again.outcomes == []


def test_rollback_reports_a_step_without_undo_and_stops_at_a_failing_undo(world, pfx, tmp_path):
    log = journal(tmp_path)
    world.certificates["EDGE01"]["NEW"] = "None"
    plan = Plan(
        "CHG-1",
        "EDGE01",
        "prepare",
        {},
        (
            steps.set_send_connector_tls_name("EX01", HYBRID, NEW_NAME),
            steps.enable_smtp_keeping_default("EDGE01", "NEW", "DEFAULT"),
        ),
    )
    shell_for = shells(world)
    assert Engine(plan, shell_for, log).apply().completed
    world.fail["Set-SendConnector"] = "denied"
    result = rollback(log, shell_for)
    assert [(o.step, o.status) for o in result.outcomes] == [
        ("enable-smtp-edge01", "not-reversible"),
        ("tls-name-outbound-to-office-365", "failed"),
    ]
    assert "denied" in result.error
    events = [r["event"] for r in log.read().records]
    assert events[-2:] == ["rollback-skipped", "rollback-failed"]


# --- one pipeline per step ---------------------------------------------------------------------

TRANSPORT = "MSExchangeTransport"
SERVICE = Call("Get-Service", {"Name": TRANSPORT}, ("Name", "Status"))
CERTIFICATES = Call("Get-ExchangeCertificate", {}, ("Thumbprint", "Services"))


class Recording(FakeShell):
    """A fake shell that logs each pipeline (server, statements); a missing connector is an
    error, as in Exchange."""

    def __init__(self, world: World, name: str, log: list) -> None:
        super().__init__(world, name)
        self.log = log

    def run_batch(self, commands, **kw):
        self.log.append((self.name, [c.name for c in commands]))
        return super().run_batch(commands, **kw)

    def _get_sendconnector(self, params, questions, result):
        if params["Identity"] not in self.world.connectors:
            raise _Error(f"The object '{params['Identity']}' couldn't be found.")
        return super()._get_sendconnector(params, questions, result)


STAGE_THEN_NAME = ["Import-ExchangeCertificate", "Set-SendConnector"]


def recording(world: World) -> tuple:
    log: list[tuple[str, list[str]]] = []
    opened: dict[str, Recording] = {}
    return lambda server: opened.setdefault(server, Recording(world, server, log)), log


def on(log: list, server: str) -> list[list[str]]:
    return [statements for name, statements in log if name == server]


def service_step(server: str, status: str, action: str, undo: str = "Resume-Service") -> Step:
    return steps.set_service(server, TRANSPORT, status, action, undo)


def test_consecutive_steps_on_one_server_take_one_pipeline_each(world, pfx, tmp_path, monkeypatch):
    monkeypatch.setenv("PFX_PW", "pw")
    plan = Plan(
        "CHG-1",
        "EDGE01",
        "prepare",
        {},
        (
            *make_plan(pfx).steps[:2],  # stage, then TlsCertificateName, on EX01
            service_step("EDGE01", "Running", "Suspend-Service"),
            service_step("EDGE01", "Paused", "Resume-Service", "Suspend-Service"),
        ),
    )
    shell_for, log = recording(world)
    log_file = journal(tmp_path)
    result = Engine(plan, shell_for, log_file).apply()
    assert result.completed, result.error
    ex01, edge = on(log, "EX01"), on(log, "EDGE01")
    # the first step's conditions, then one pipeline per step, its read-back included
    assert [p[0] for p in ex01] == ["Get-ExchangeCertificate", *STAGE_THEN_NAME]
    assert "Get-SendConnector" in ex01[1]  # the next step's reads rode after the import
    # resume's precondition (Paused) was read after the suspend, in the suspend's pipeline
    suspend, resume = ["Suspend-Service", "Get-Service"], ["Resume-Service", "Get-Service"]
    assert edge == [["Get-Service"], suspend, resume]  # one read serves both steps
    assert round_trips(plan) == {"EX01": len(ex01), "EDGE01": len(edge)}
    assert round_trips(plan) == {"EX01": 3, "EDGE01": 3}
    done = {r["step"]: r for r in log_file.read().events("step-done")}
    assert done["tls-name-outbound-to-office-365"]["before"]["TlsCertificateName"] == OLD_NAME


def test_a_precondition_failing_on_the_carried_read_stops_before_the_cmdlet(world, tmp_path):
    plan = Plan(
        "CHG-1",
        "EDGE01",
        "prepare",
        {},
        (
            service_step("EDGE01", "Running", "Suspend-Service"),
            service_step("EDGE01", "Running", "Stop-Service", "Start-Service"),
        ),
    )
    shell_for, log = recording(world)
    result = Engine(plan, shell_for, journal(tmp_path)).apply()
    assert [o.status for o in result.outcomes] == ["done", "failed"]
    assert "precondition not met: MSExchangeTransport is Running; nothing was run" in result.error
    assert not any(c[1] == "Stop-Service" for c in world.calls)
    assert len(on(log, "EDGE01")) == 2  # gated on what the suspend's pipeline read after it


def test_a_resume_after_a_failure_reads_anew(world, tmp_path):
    plan = Plan(
        "CHG-1",
        "EDGE01",
        "prepare",
        {},
        (
            service_step("EDGE01", "Running", "Suspend-Service"),
            steps.set_send_connector_tls_name("EDGE01", HYBRID, NEW_NAME),
        ),
    )
    world.fail["Set-SendConnector"] = "The connector is busy."
    shell_for, log = recording(world)
    engine = Engine(plan, shell_for, journal(tmp_path))
    first = engine.apply()
    assert [o.status for o in first.outcomes] == ["done", "failed"]
    world.connectors[HYBRID]["TlsCertificateName"] = NEW_NAME  # someone did it by hand
    log.clear()
    second = engine.apply()  # the same engine: nothing read in the failed run is used
    assert second.completed, second.error
    assert [(o.status, o.message) for o in second.outcomes][1] == (
        "skipped",
        "its postcondition already holds",
    )
    assert on(log, "EDGE01") == [["Get-Service", "Get-SendConnector"]]  # read once, fresh
    assert [c[1] for c in world.calls].count("Set-SendConnector") == 1


def test_a_step_after_a_step_on_another_server_reads_anew(world, tmp_path):
    plan = Plan(
        "CHG-1",
        "EDGE01",
        "prepare",
        {},
        (
            steps.set_send_connector_tls_name("EX01", HYBRID, NEW_NAME),
            service_step("EDGE01", "Running", "Suspend-Service"),  # the fake world is shared:
            service_step("EX01", "Running", "Stop-Service", "Start-Service"),  # EX01 sees it
        ),
    )
    shell_for, log = recording(world)
    result = Engine(plan, shell_for, journal(tmp_path)).apply()
    assert [o.status for o in result.outcomes] == ["done", "done", "failed"]
    assert "precondition not met" in result.error  # read after EDGE01's step, not before
    assert [p[0] for p in on(log, "EX01")] == [
        "Get-SendConnector",
        "Set-SendConnector",
        "Get-Service",
    ]
    assert on(log, "EX01")[1] == ["Set-SendConnector", "Get-SendConnector"]  # nothing rode


def test_a_polled_step_hands_on_what_its_last_poll_read(world, tmp_path):
    wait = Wait(timeout_s=10, every_s=0.01, what="transport to stop")
    plan = Plan(
        "CHG-1",
        "EDGE01",
        "prepare",
        {},
        (
            Step(
                "pause-edge01",
                "EDGE01",
                "pause transport; stopped by its service manager",
                (Call("Suspend-Service", {"Name": TRANSPORT}),),
                (Check("transport stopped", SERVICE, {"Status": "Stopped"}),),
                no_undo="test",
                wait=wait,
            ),
            Step(
                "remove-late-edge01",
                "EDGE01",
                "remove LATE",
                (Call("Remove-ExchangeCertificate", {"Thumbprint": "LATE"}),),
                (Check("LATE gone", CERTIFICATES, {"Thumbprint": "LATE"}, "absent"),),
                pre=(Check("LATE is there", CERTIFICATES, {"Thumbprint": "LATE"}),),
                no_undo="test",
                questions=(ExpectedQuestion("LATE", "Yes", "the test removes it"),),
            ),
        ),
    )

    def sleep(_: float) -> None:  # while it polls, transport stops and LATE arrives
        world.services[TRANSPORT] = "Stopped"
        world.certificates["EDGE01"]["LATE"] = "None"

    shell_for, log = recording(world)
    result = Engine(plan, shell_for, journal(tmp_path), sleep=sleep).apply()
    assert [o.status for o in result.outcomes] == ["done", "done"], result.error
    assert "LATE" not in world.certificates["EDGE01"]  # not skipped on the stale read-back
    assert [p[0] for p in on(log, "EDGE01")] == [
        "Get-Service",
        "Suspend-Service",
        "Get-Service",  # the poll, carrying the next step's reads
        "Remove-ExchangeCertificate",
    ]
    assert len(on(log, "EDGE01")) == round_trips(plan)["EDGE01"] + 1  # + the one poll


def test_a_failing_read_of_the_next_step_is_that_steps_failure(world, tmp_path):
    missing = steps.set_send_connector_tls_name("EDGE01", "Gone", NEW_NAME)
    plan = Plan(
        "CHG-1", "EDGE01", "prepare", {}, (service_step("EDGE01", "Running", "Suspend-Service"),)
    )
    plan = Plan("CHG-1", "EDGE01", "prepare", {}, (*plan.steps, missing))
    shell_for, log = recording(world)
    result = Engine(plan, shell_for, journal(tmp_path)).apply()
    assert [o.status for o in result.outcomes] == ["done", "failed"]
    assert result.error == (
        "step tls-name-gone on EDGE01 failed: step tls-name-gone: reading its conditions: "
        "The object 'Gone' couldn't be found."
    )
    assert world.services[TRANSPORT] == "Paused"
    assert len(on(log, "EDGE01")) == 3  # read, suspend (its rider dropped), the step's own read


# --- approval ---------------------------------------------------------------------------------


def test_apply_without_or_with_a_wrong_hash_changes_nothing(world, pfx, tmp_path):
    log, edge_dir = journal(tmp_path), tmp_path / "out" / "CHG-1" / "EDGE01"
    approved = make_plan(pfx)
    save_plan(approved, edge_dir)
    fresh = make_plan(pfx, facts={"edge": {"default": "OTHER"}, "mailbox": {"EX01": ["SELF"]}})
    with pytest.raises(NotApproved, match="apply needs approved_plan_sha256"):
        approve(fresh, "", edge_dir, log)
    with pytest.raises(NotApproved) as caught:
        approve(fresh, approved.sha256.upper(), edge_dir, log)
    assert 'facts edge.default: "DEFAULT" -> "OTHER"' in str(caught.value)
    assert "nothing was changed" in str(caught.value)
    with pytest.raises(NotApproved, match="no plan with hash"):
        approve(fresh, "0" * 64, edge_dir, log)
    with pytest.raises(ConfigError, match="64 hex"):
        approve(fresh, "abc", edge_dir, log)
    assert world.calls == [] and not log.path.exists()
    assert approve(approved, approved.sha256, edge_dir, log).plan is approved


def test_a_started_approved_plan_is_resumed_from_its_stored_copy(world, pfx, tmp_path, monkeypatch):
    monkeypatch.setenv("PFX_PW", "pw")
    log, edge_dir = journal(tmp_path), tmp_path / "out" / "CHG-1" / "EDGE01"
    approved = make_plan(pfx)
    save_plan(approved, edge_dir)
    world.fail["Set-SendConnector"] = "busy"
    Engine(approved, shells(world), log).apply()
    moved_on = make_plan(pfx, facts={"edge": {"default": "DEFAULT"}, "mailbox": {"EX01": ["X"]}})
    chosen = approve(moved_on, approved.sha256, edge_dir, log)
    assert chosen.resumed and chosen.plan.sha256 == approved.sha256
    assert load_plan(edge_dir, approved.sha256).to_dict() == approved.to_dict()
    assert Engine(chosen.plan, shells(world), log).apply().completed


# --- lock -------------------------------------------------------------------------------------


def test_a_second_lock_is_refused_and_says_who_holds_it(world, tmp_path):
    edge = FakeShell(world, "EDGE01")
    first = EdgeLock(edge, "CHG-1", journal(tmp_path))
    first.acquire()
    other = Journal(tmp_path / "bob" / "journal.jsonl", who="bob@pc2")
    with pytest.raises(LockHeld) as caught:
        EdgeLock(edge, "CHG-2", other).acquire()
    message = str(caught.value)
    assert "held by alice@pc1 for change CHG-1 since" in message and "wait until it ends" in message
    with pytest.raises(LockHeld):  # naming it does not help while it is fresh
        EdgeLock(edge, "CHG-2", other, take_over="CHG-1").acquire()
    first.release()
    assert LOCK_FILE not in world.files
    with EdgeLock(edge, "CHG-2", other):
        assert json.loads(world.files[LOCK_FILE])["operator"] == "bob@pc2"
    events = [r["event"] for r in first.journal.read().records]
    assert events == ["lock-acquired", "lock-released"]


def test_a_stale_lock_is_taken_over_only_when_named(world, tmp_path):
    edge = FakeShell(world, "EDGE01")
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=9)
    world.files[LOCK_FILE] = LockInfo(
        "EDGE01", "CHG-1", "alice@pc1", old.isoformat(), "t0"
    ).to_json()
    bob = Journal(tmp_path / "journal.jsonl", who="bob@pc2")
    with pytest.raises(LockHeld, match="take_over_lock='CHG-1'"):
        EdgeLock(edge, "CHG-2", bob).acquire()
    assert json.loads(world.files[LOCK_FILE])["token"] == "t0"  # untouched
    lock = EdgeLock(edge, "CHG-2", bob, take_over="CHG-1")
    lock.acquire()
    assert json.loads(world.files[LOCK_FILE])["change"] == "CHG-2"
    (record,) = bob.read().events("lock-taken-over")
    assert record["previous"]["operator"] == "alice@pc1"


def test_the_same_operator_takes_its_own_lock_back_after_a_crash(world, tmp_path):
    edge = FakeShell(world, "EDGE01")
    EdgeLock(edge, "CHG-1", journal(tmp_path)).acquire()  # never released: the crash
    again = EdgeLock(edge, "CHG-1", journal(tmp_path))
    again.acquire()
    assert json.loads(world.files[LOCK_FILE])["token"] == again.info.token
    assert any(again.journal.read().events("lock-resumed"))


# --- data kept in memory (a subscription file) and an interrupted step that used it ---------

SUBSCRIPTION_FILE = r"c:\temp\edge.xml"


class DropsAfterImport(FakeShell):
    """The connection drops after Import-ExchangeCertificate ran (or before, `ran=False`)."""

    def __init__(self, world: World, name: str, ran: bool) -> None:
        super().__init__(world, name)
        self.ran = ran

    def run_batch(self, commands, **kwargs):
        if any(c.name == "Import-ExchangeCertificate" for c in commands):
            if self.ran:
                super().run_batch(commands, **kwargs)
            raise ExchangeConnectionError(self.name, "https://ex01", "connection reset", OSError())
        return super().run_batch(commands, **kwargs)


def kept_then_used() -> Plan:
    read = Step(
        id="read-file",
        server="EDGE01",
        does="read the file into memory",
        calls=(Call("Get-Content", {"Path": SUBSCRIPTION_FILE}),),
        post=(),
        keeps="file",
        no_undo="reading changes nothing",
    )
    use = Step(
        id="use-file",
        server="EX01",
        does="import what the file holds",
        calls=(Call("Import-ExchangeCertificate", {"FileData": Carried("file")}),),
        post=(
            Check(
                "NEWTHUMB is on EX01",
                Call("Get-ExchangeCertificate", {}, ("Thumbprint",)),
                {"Thumbprint": "NEWTHUMB"},
            ),
        ),
        no_undo="test",
        once=True,
    )
    return Plan("CHG-1", "EDGE01", "resubscribe", {}, (read, use))


@pytest.mark.parametrize("took_effect", [True, False])
def test_data_is_not_made_again_for_an_interrupted_step_that_took_effect(
    world, tmp_path, took_effect
):
    """A second subscription file would replace the credentials the first one carried: when the
    interrupted step that used the first took effect, the rerun makes none."""
    world.files[SUBSCRIPTION_FILE] = b"NEWTHUMB"
    plan, log = kept_then_used(), journal(tmp_path)
    opened: dict[str, FakeShell] = {}

    def dropping(server: str) -> FakeShell:
        return opened.setdefault(server, DropsAfterImport(world, server, took_effect))

    first = Engine(plan, dropping, log).apply()
    assert [o.status for o in first.outcomes] == ["done", "failed"]
    reads_before = [c[1] for c in world.calls].count("Get-Content")
    second = Engine(plan, shells(world), log).apply()  # a new run: nothing in memory
    assert second.completed, second.error
    statuses = [(o.step, o.status) for o in second.outcomes]
    if took_effect:
        assert statuses == [("read-file", "skipped"), ("use-file", "skipped")]
        assert "took effect" in second.outcomes[0].message
        assert [c[1] for c in world.calls].count("Get-Content") == reads_before
    else:
        assert statuses == [("read-file", "done"), ("use-file", "done")]
        assert [c[1] for c in world.calls].count("Get-Content") == reads_before + 1
    assert world.certificates["EX01"]["NEWTHUMB"] == "None"


def test_rollback_clears_a_property_that_was_empty_before_the_step(world, tmp_path):
    """An empty TlsCertificateName (a connector that named none) is restored as $null: the plan
    and the journal say so, and the read-back after the undo matches the journalled state."""
    world.connectors[HYBRID]["TlsCertificateName"] = None
    plan = Plan(
        "CHG-1",
        "EDGE01",
        "prepare",
        {},
        (steps.set_send_connector_tls_name("EX01", HYBRID, NEW_NAME),),
    )
    log = journal(tmp_path)
    assert Engine(plan, shells(world), log).apply().completed
    assert world.connectors[HYBRID]["TlsCertificateName"] == NEW_NAME
    (done,) = log.read().events("step-done")
    assert done["before"]["TlsCertificateName"] is None
    assert done["undo"][0]["params"]["TlsCertificateName"] == {"$null": True}
    undone = rollback(log, shells(world))
    assert undone.completed, undone.error
    assert world.connectors[HYBRID]["TlsCertificateName"] is None
    assert [o.message for o in undone.outcomes] == ["state before the step restored"]


def test_every_friendly_name_a_step_sends_is_under_exchanges_64_characters(tmp_path):
    """Microsoft: -FriendlyName "must be less than 64 characters"."""
    pfx = FileBytes(str(tmp_path / "x.pfx"), "0" * 64, 1)
    long = "edgebook CHG-2026-0001234: TlsCertificateName only (CN=hybrid-mail.contoso.com)"
    built = [
        steps.stage_certificate("EX01", "T", pfx, None, long),
        steps.request_on_edge("EDGE01", "CN=x", ["x"], long),
    ]
    names = [
        call.params["FriendlyName"]
        for step in built
        for call in step.calls
        if "FriendlyName" in call.params
    ]
    assert names == [long[:60] + "...", long[:60] + "..."]
    assert all(len(name) == steps.FRIENDLY_NAME_LIMIT for name in names)
    assert steps.fit_friendly_name("short") == "short"
