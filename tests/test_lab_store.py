"""LabStore and ResidentStore: atomic persistence, transactions, the lab clock, counters, lab
files, and the daemon's in-memory organisation (scoped catch-up, nothing written on a read)."""

from __future__ import annotations

import datetime as dt
import json
import math
import multiprocessing
import os
import stat
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from edgebook.errors import EdgebookError
from edgebook.lab import folder
from edgebook.lab.channel import ChannelServer
from edgebook.lab.org import store as store_module
from edgebook.lab.org.model import org_to_json
from edgebook.lab.org.store import LabStateError, LabStore, ResidentStore
from tests.support.lab import PASSWORD, Lab, lab_copy


@pytest.fixture
def store(tmp_path) -> LabStore:
    return lab_copy("healthy", tmp_path / "lab")


def test_create_refuses_an_existing_lab_unless_reset(tmp_path):
    directory = tmp_path / "fresh"
    LabStore.create(directory, "edge-hub-clash", PASSWORD)
    with pytest.raises(LabStateError, match="already holds a lab"):
        LabStore.create(directory, "healthy", PASSWORD)
    LabStore.create(directory, "edge-hub-clash", PASSWORD, reset=True)
    assert LabStore(directory).read().scenario == "edge-hub-clash"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "state.json").stat().st_mode) == 0o600


def test_transaction_saves_only_on_success(store):
    with store.transaction() as org:
        org.description = "changed"
    assert store.read().description == "changed"
    with pytest.raises(RuntimeError), store.transaction() as org:
        org.description = "lost"
        raise RuntimeError("boom")
    assert store.read().description == "changed"
    store.read().description = "not saved"
    assert LabStore(store.dir).read().description == "changed"


def test_lab_clock_advances_and_survives_a_restart(store):
    before = store.now()
    later = store.advance(90)
    assert later - before >= dt.timedelta(minutes=90)
    assert LabStore(store.dir).now() - before >= dt.timedelta(minutes=90)
    for bad in (-1, 0, math.nan, math.inf, 1e12):
        with pytest.raises(EdgebookError, match="--minutes must be"):
            store.advance(bad)
    assert LabStore(store.dir).now() - later < dt.timedelta(minutes=1)


def _count(directory: str) -> None:
    store = LabStore(Path(directory))
    for _ in range(25):
        store.count("EDGE01", "requests")


def test_counters_are_safe_across_processes(store):
    processes = [multiprocessing.Process(target=_count, args=(str(store.dir),)) for _ in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    store.count("EDGE01", "pipelines")
    assert store.counters()["EDGE01"] == {"requests": 75, "pipelines": 1}


def test_seed_incident_writes_the_renewal_pfx(tmp_path):
    store = lab_copy("seed-incident", tmp_path / "lab")
    data = (store.dir / "renewal" / "EDGE01.pfx").read_bytes()
    key, cert, chain = pkcs12.load_key_and_certificates(data, PASSWORD.encode())
    assert key is not None and cert is not None
    assert "DigiCert Global G2 TLS RSA SHA256 2020 CA1" in cert.issuer.rfc4514_string()
    assert len(chain) == 2
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(data, b"wrong")


def test_missing_state_is_a_clear_error(tmp_path):
    with pytest.raises(LabStateError, match="holds no lab"):
        LabStore(tmp_path).read()


def test_a_failed_reset_keeps_the_old_state_and_key(store, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "description: x\norganization: {domain: contoso.com}\nservers:\n"
        "  - {name: EDGE01, role: Edge, queues: {Nope: 1}}\n"
    )
    before = {n: (store.dir / n).read_bytes() for n in ("state.json", ".labkey")}
    with pytest.raises(EdgebookError, match="Nope"):
        LabStore.create(store.dir, bad, PASSWORD, reset=True)
    assert {n: (store.dir / n).read_bytes() for n in before} == before
    assert store.read().scenario == "healthy"


def test_a_file_store_refuses_changes_while_a_daemon_runs(store):
    with folder.hold_daemon_lock(store.dir):
        assert folder.daemon_running(store.dir)
        with pytest.raises(LabStateError, match="a lab daemon runs"), store.transaction():
            pass
        assert store.read().scenario == "healthy"  # reading stays possible
    assert not folder.daemon_running(store.dir)


def test_resident_reads_write_nothing_and_changes_are_persisted_at_once(store):
    resident = ResidentStore(store.dir)
    written = store.state_path.stat().st_mtime_ns
    with resident.transaction(["EDGE01"]) as org:
        assert org.server("EDGE01").name == "EDGE01"
    assert store.state_path.stat().st_mtime_ns == written
    with resident.transaction(["EDGE01"]) as org:
        org.server("EDGE01").traffic["Outbound to Office 365"] = 7.0
    assert LabStore(store.dir).read().server("EDGE01").traffic["Outbound to Office 365"] == 7.0
    with resident.transaction(()) as org:
        org.description = "org-wide fields are always compared"
    assert LabStore(store.dir).read().description == "org-wide fields are always compared"


def test_resident_transaction_that_fails_returns_to_the_saved_state(store):
    resident = ResidentStore(store.dir)
    with pytest.raises(RuntimeError), resident.transaction(["EDGE01"]) as org:
        org.server("EDGE01").queues.clear()
        raise RuntimeError("boom")
    assert resident.read().server("EDGE01").queues
    assert resident.read().server("EDGE01").queues == store.read().server("EDGE01").queues


def test_resident_change_outside_its_scope_is_saved_by_flush(store):
    resident = ResidentStore(store.dir)
    with resident.transaction(["EDGE01"]) as org:
        org.server("EDGE02").traffic.clear()  # outside the declared scope
    assert store.read().server("EDGE02").traffic
    resident.flush()
    assert store.read().server("EDGE02").traffic == {}


def test_resident_change_outside_its_scope_is_saved_when_a_transaction_names_it(store):
    resident = ResidentStore(store.dir)
    with resident.transaction(["EDGE01"]) as org:
        org.server("EDGE02").traffic.clear()  # outside the declared scope
    with resident.transaction(["EDGE02"]):
        pass  # compared with EDGE02 as last persisted, not as it was when this block began
    assert store.read().server("EDGE02").traffic == {}


def test_resident_state_is_the_organisation_json_after_each_change(store):
    resident = ResidentStore(store.dir)
    changes = [
        (["EDGE01"], lambda org: org.server("EDGE01").traffic.clear()),
        (["EDGE02"], lambda org: setattr(org.server("EDGE02"), "mail_accepted", 41)),
        ((), lambda org: setattr(org, "clock_offset_s", 90.0)),
        (None, lambda org: org.server("EX01").events.clear()),
        (["EDGE01"], lambda org: org.server("EDGE01").queues.clear()),
    ]
    for scope, change in changes:
        with resident.transaction(scope) as org:
            change(org)
        expected = json.dumps(org_to_json(resident.read())).encode()
        assert store.state_path.read_bytes() == expected
    assert org_to_json(LabStore(store.dir).read()) == org_to_json(resident.read())
    written = store.state_path.stat().st_ino  # each write renames a new file into place
    resident.flush()  # nothing differs: the joined text is the whole document's
    assert store.state_path.stat().st_ino == written


def test_resident_transactions_from_many_threads_all_persist(store):
    resident = ResidentStore(store.dir)
    start = store.read().clock_offset_s  # a copied template's clock is turned back by its age

    def bump() -> None:
        for _ in range(20):
            with resident.transaction(()) as org:
                org.clock_offset_s += 1

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.read().clock_offset_s == start + 80


def test_an_edge_pipeline_catches_up_that_edge_only(store):
    resident = ResidentStore(store.dir)
    lab = Lab(resident)
    lab.ok("EDGE01", "Get-Queue")
    lab.ok("EDGE02", "Get-Queue")
    resident.advance(30)  # traffic: 2 + 3 messages a lab minute per Edge
    before = store.read().server("EDGE02")
    lab.ok("EDGE01", "Get-Queue")
    after = store.read()
    assert after.server("EDGE01").traffic_at > before.traffic_at
    assert after.server("EDGE02").traffic_at == before.traffic_at
    assert after.server("EDGE02").queues == before.queues
    lab.ok("EX01", "Get-EdgeSubscription")  # the Mailbox side sees every Edge: all catch up
    assert store.read().server("EDGE02").traffic_at > before.traffic_at


def test_resident_counters_are_written_at_a_low_rate_and_at_stop(store, monkeypatch):
    monkeypatch.setattr(store_module, "COUNTERS_INTERVAL_S", 3600.0)
    resident = ResidentStore(store.dir)
    resident.count("EDGE01", "requests")
    resident.count("EDGE01", "pipelines")
    assert resident.counters()["EDGE01"] == {"requests": 1, "pipelines": 1}
    assert "EDGE01" not in LabStore(store.dir).counters()  # within the interval: not written
    resident._counts_due = 0.0  # the interval has passed
    resident.count("EDGE01", "requests")
    assert LabStore(store.dir).counters()["EDGE01"] == {"requests": 2, "pipelines": 1}
    resident.count("EDGE02", "requests")  # the next write is an hour away
    assert "EDGE02" not in LabStore(store.dir).counters()
    resident.flush()  # the daemon stops: everything counted is written
    assert LabStore(store.dir).counters() == resident.counters()
    assert LabStore(store.dir).counters()["EDGE02"] == {"requests": 1, "pipelines": 0}
    assert ResidentStore(store.dir).counters() == resident.counters()  # a restart keeps them
    assert stat.S_IMODE(store.counters_path.stat().st_mode) == 0o600


def test_resident_counters_are_never_read_half_written(store, monkeypatch):
    monkeypatch.setattr(store_module, "COUNTERS_INTERVAL_S", 0.0)  # write at every count
    resident = ResidentStore(store.dir)
    names = [f"EDGE{n:03d}" for n in range(40)]  # a file the size of a large lab's
    counting = threading.Event()

    def count() -> None:
        for n in range(400):
            resident.count(names[n % len(names)], "requests")
        counting.set()

    worker = threading.Thread(target=count)
    worker.start()
    seen = 0
    while not counting.is_set():
        counters = LabStore(store.dir).counters()
        total = sum(c["requests"] for c in counters.values())
        assert total >= seen and (counters or not seen)  # a torn file would read as {}
        seen = total
    worker.join()
    assert sum(c["requests"] for c in LabStore(store.dir).counters().values()) == 400


class _FakeDaemon:
    """What a reader of a running lab's counters meets: the daemon lock held and, once it
    listens, endpoints.json naming a control channel that answers with its counts."""

    def __init__(self, directory: Path, counts: dict) -> None:
        self.directory = directory
        self.lock = folder.hold_daemon_lock(directory)
        self.channel = ChannelServer(directory, self._control)
        self.counts = counts

    def _control(self, op: str, args: dict) -> dict:
        assert op == "counters"
        return self.counts

    def listen(self) -> None:
        self.channel.start()
        endpoints = folder.endpoints_path(self.directory)
        me = os.getpid()  # the daemon's endpoints.json names its process, as the real one's
        description = {"control_port": self.channel.port, "pid": me}
        folder.write_json_atomic(
            endpoints, {**description, "process_start": folder.process_start(me)}
        )

    def end(self) -> None:
        folder.endpoints_path(self.directory).unlink(missing_ok=True)
        self.channel.stop()
        self.lock.close()


def test_counters_of_a_running_lab_come_from_its_daemon(store):
    daemon = _FakeDaemon(store.dir, {"EDGE01": {"requests": 7, "pipelines": 2}})
    try:
        daemon.listen()
        assert LabStore(store.dir).counters() == daemon.counts  # not counters.json's {}
    finally:
        daemon.end()
    assert LabStore(store.dir).counters() == {}  # stopped: counters.json again


def test_counters_wait_for_a_daemon_that_starts_or_stops(store):
    daemon = _FakeDaemon(store.dir, {"EDGE01": {"requests": 3, "pipelines": 1}})
    threading.Timer(0.3, daemon.listen).start()  # starting: no endpoints.json yet
    try:
        assert LabStore(store.dir).counters() == daemon.counts
    finally:
        daemon.end()
    daemon = _FakeDaemon(store.dir, {})  # stopping: its channel closed, counters.json not final

    def stop() -> None:
        store.counters_path.write_text('{"EDGE01": {"requests": 9, "pipelines": 1}}')
        daemon.end()

    stopping = threading.Timer(0.3, stop)
    stopping.start()
    assert LabStore(store.dir).counters() == {"EDGE01": {"requests": 9, "pipelines": 1}}
    stopping.join()


def test_counters_name_a_daemon_that_never_answers(store, monkeypatch):
    monkeypatch.setattr(store_module, "DAEMON_WAIT_S", 0.2)
    daemon = _FakeDaemon(store.dir, {})
    try:
        with pytest.raises(LabStateError, match=r"runs but did not give its counters.*endpoints"):
            LabStore(store.dir).counters()
    finally:
        daemon.end()
