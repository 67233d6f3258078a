"""LabStore: atomic persistence under a lock, transactions, the lab clock, counters, lab files."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12
from lab_support import PASSWORD, lab_copy

from edgebook.errors import EdgebookError
from edgebook.lab.org.store import LabStateError, LabStore


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
    with pytest.raises(EdgebookError, match="only moves forward"):
        store.advance(-1)


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
