"""Facts read back from their JSON judge the same (issue #12: saved records judged again): every
fact type, bad saved facts refused by place, and every shipped lab scenario inspected over the
wire, its facts through JSON text and back."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from edgebook.config import load_inventory
from edgebook.errors import EdgebookError
from edgebook.facts import FactsError, facts_from_dict, facts_to_dict
from edgebook.lab import control
from edgebook.lab.org.scenarios import list_scenarios
from edgebook.phases.inspect import InspectResult, inspect, judge_saved
from edgebook.probes import LdapsProbe, SmtpProbe
from edgebook.rules import evaluate
from tests.support.certs import NOW
from tests.support.orgs import cert_record, clean_world, ldaps_probe, of, pki, public_leaf

# Not facts: how the reading went. They are recorded beside the facts, not found in them.
READ_FAILURES = {"read-failed", "server-unreachable"}


def _as_recorded(value: object) -> object:
    """What edgebook.evidence.records.record() keeps of a value."""
    return json.loads(json.dumps(value, default=str))


def _varied_world():
    """The clean world with what the JSON must keep apart: unknown view properties, an event
    without a time, a failed probe without certificates, an expiring certificate (a finding)."""
    world = clean_world()
    record = world.edges["EDGE1"]["certificates"][1]
    record.update(Services=None, Status=None, RootCAType="ThirdParty", FriendlyName="public")
    world.edges["EDGE2"]["certificates"].append(
        cert_record(public_leaf(cn="old.contoso.com", days_valid=5), Services="None")
    )
    world.edges["EDGE2"]["events"].append({"EventID": 12018, "Message": "expires soon"})
    world.edges["EDGE2"]["services"][1]["Status"] = "Stopped"
    world.ldaps_probes["EDGE2"] = ldaps_probe("EDGE2", None, error="connection refused")
    return world


def test_every_fact_reads_back_equal_from_json_text():
    org, edges = _varied_world().facts()
    saved = facts_to_dict(org, edges)
    org_back, edges_back = facts_from_dict(json.loads(json.dumps(saved)))
    assert facts_to_dict(org_back, edges_back) == saved
    assert org_back == org and edges_back == edges  # dataclass equality, field by field
    assert org_back.settings.roots == (pki().root.cert,)
    assert org_back.settings.now == NOW
    public = edges_back[0].certificates[1]
    assert (public.services, public.status, public.root_ca_type) == (None, None, "ThirdParty")
    assert public.cert == pki().public.cert
    assert isinstance(edges_back[0].smtp_probe, SmtpProbe)
    assert edges_back[0].smtp_probe.chain == [pki().public.cert, pki().ica.cert]
    failed = edges_back[1].ldaps_probe
    assert isinstance(failed, LdapsProbe) and failed.leaf is None
    assert failed.error == "connection refused"
    assert edges_back[1].events[-1].time is None


def test_saved_facts_are_judged_again_alike_and_for_one_edge():
    org, edges = _varied_world().facts()
    saved = json.loads(json.dumps(facts_to_dict(org, edges)))
    everything = [f.to_dict() for f in evaluate(org, edges)]
    assert [f.to_dict() for f in judge_saved(saved)] == everything
    assert {"service-not-running", "cert-facts-unknown", "probe-failed"} <= {
        f["slug"] for f in everything
    }
    only_edge1 = judge_saved(saved, "edge1")  # any case, as the run's edge parameter
    assert only_edge1 and all(f.server != "EDGE2" for f in only_edge1)
    assert of(only_edge1, "cert-facts-unknown", "EDGE1")
    assert [f.to_dict() for f in only_edge1] == [f for f in everything if f["server"] != "EDGE2"]


def _set(path: str, value: object) -> Callable[[dict], None]:
    """A change to saved facts at a dotted path (list indexes as numbers)."""

    def change(facts: dict) -> None:
        *parents, last = path.split(".")
        node: Any = facts  # a JSON object or list
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is KeyError:
            del node[last]
        else:
            node[int(last) if isinstance(node, list) else last] = value

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set("edges", KeyError), r"^the saved facts cannot be read back: edges is missing"),
        (_set("org", []), r"org is list, not a JSON object"),
        (
            _set("edges.0.certificates.1.not_after", "yesterday"),
            r"edges\[0\]\.certificates\[1\]\.not_after is 'yesterday', not an ISO 8601 time",
        ),
        (_set("edges.0.certificates.0.pem", "garbage"), r"certificates\[0\]\.pem is not PEM"),
        (_set("edges.0.certificates.0.thumbprint", KeyError), r"\.thumbprint is missing"),
        (_set("edges.0.certificates.0.services", "SMTP"), r"services is str, not a JSON array"),
        (_set("edges.1.smtp_probe.kind", "imap"), r"edges\[1\]\.smtp_probe\.kind is 'imap'"),
        (_set("edges.0.smtp_probe.leaf.pem", None), r"smtp_probe\.leaf\.pem is NoneType"),
        (_set("edges.0.smtp_probe.chain.1", None), r"smtp_probe\.chain\[1\] is NoneType"),
        (_set("edges.0.smtp_probe.elapsed_s", "fast"), r"elapsed_s is 'fast', not float"),
        (_set("edges.0.services.ADAM_MSExchange", 4), r"services\.ADAM_MSExchange is 4, not str"),
        (_set("edges.1.queues.0.message_count", True), r"message_count is True, not int"),
        (_set("edges.1.queues.0.identity", KeyError), r"queues\[0\]\.identity is missing"),
        (_set("org.settings.hybrid", 1), r"org\.settings\.hybrid is 1, not bool"),
        (_set("org.settings.now", None), r"org\.settings\.now is None, not an ISO 8601 time"),
        (
            _set("org.settings.roots", ["CN=Contoso Test Root, C=US"]),
            r"roots\[0\] is a subject name only .* inspect again",
        ),
        (_set("org.subscriptions.0.is_valid", "yes"), r"is_valid is 'yes', not bool"),
    ],
)
def test_bad_saved_facts_are_refused_naming_the_place(change, message):
    org, edges = clean_world().facts()
    facts = copy.deepcopy(json.loads(json.dumps(facts_to_dict(org, edges))))
    change(facts)
    with pytest.raises(FactsError, match=message) as caught:
        judge_saved(facts)
    assert isinstance(caught.value, EdgebookError)  # the CLI's one line, exit 2
    assert str(caught.value).endswith("of notebook 01's records, unchanged")


def test_a_whole_inspect_document_is_refused_with_the_way_out() -> None:
    org, edges = clean_world().facts()
    document = {"findings": [], "facts": facts_to_dict(org, edges)}
    with pytest.raises(FactsError, match="whole `inspect --json` document: give its 'facts'"):
        facts_from_dict(document)
    with pytest.raises(FactsError, match="facts is str, not a JSON object"):
        facts_from_dict("facts")  # type: ignore[arg-type]


@pytest.fixture(scope="module", params=[name for name, _ in list_scenarios()])
def result(request, tmp_path_factory) -> Iterator[InspectResult]:
    directory = tmp_path_factory.mktemp(request.param) / "lab"
    control.start(directory, request.param)
    try:
        yield inspect(load_inventory(directory / "inventory.yaml"), "EDGE01")
    finally:
        control.stop(directory)


def test_facts_read_back_from_json_text_give_the_same_facts_and_findings(result):
    saved = result.facts_dict()
    org, edges = facts_from_dict(json.loads(json.dumps(saved)))
    assert facts_to_dict(org, edges) == saved
    again = [f.to_dict() for f in evaluate(org, edges)]
    first = [f.to_dict() for f in evaluate(result.org, result.edges)]
    assert again == first
    assert {f.slug for f in result.findings} - READ_FAILURES <= {f["slug"] for f in again}


def test_judge_saved_on_the_notebook_records_finds_what_the_run_reported(result):
    records = _as_recorded(
        {
            "edge": result.edge,
            "findings": [f.to_dict() for f in result.findings],
            "facts": result.facts_dict(),
        }
    )
    judged = judge_saved(records["facts"], records["edge"])
    reported = [f for f in records["findings"] if f["slug"] not in READ_FAILURES]
    assert _as_recorded([f.to_dict() for f in judged]) == reported
    assert all(f.server != "EDGE02" for f in judged)
