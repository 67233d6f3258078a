"""Appeared: an undo parameter taken from what the step made, found by comparing its first
postcondition's read before and after the step (New-ExchangeCertificate -GenerateRequest
returns the request's text, not the pending request's thumbprint)."""

from __future__ import annotations

import pytest

from edgebook.change import steps
from edgebook.change.step import Call
from edgebook.change.values import (
    Appeared,
    PlanValueError,
    appeared,
    display,
    from_json,
    sha256_of,
    to_json,
)

SUBJECT = "CN=hybrid.contoso.com, O=Contoso Ltd"
STEP = steps.request_on_edge("EDGE01", SUBJECT, ["hybrid.contoso.com"], "EDGE01 CHG-1")


def cert(thumbprint: str, status: str = "PendingRequest", subject: str = SUBJECT) -> dict:
    return {"Thumbprint": thumbprint, "Subject": subject, "Status": status, "Services": "None"}


def test_the_one_new_matching_object_fills_the_undo():
    first = [[cert("OLD1", "Valid"), cert("PEND1")]]
    after = [[cert("OLD1", "Valid"), cert("PEND1"), cert("NEW2"), cert("X", subject="CN=other")]]
    made = appeared(STEP, first, after)
    assert made == {"Thumbprint": "NEW2"}
    (undo,) = STEP.undo
    filled = undo.filled({"before": {}, "output": {}, "appeared": made})
    assert filled.params == {"Thumbprint": "NEW2"}


@pytest.mark.parametrize(
    "after",
    [
        [cert("PEND1")],  # nothing new (the step made nothing the read-back shows)
        [cert("PEND1"), cert("NEW2"), cert("NEW3")],  # two new: which one is ours is unknown
    ],
)
def test_no_single_new_object_means_no_undo_and_says_so(after):
    made = appeared(STEP, [[cert("PEND1")]], [after])
    assert made == {}
    (undo,) = STEP.undo
    with pytest.raises(PlanValueError, match=r"no single new object.*Thumbprint"):
        undo.filled({"before": {}, "output": {}, "appeared": made})


def test_appeared_is_plan_data():
    call = Call("Remove-ExchangeCertificate", {"Thumbprint": Appeared("Thumbprint")})
    assert to_json(call.params) == {"Thumbprint": {"$appeared": "Thumbprint"}}
    assert from_json(to_json(call.params)) == call.params
    assert sha256_of(call.to_dict()) == sha256_of(Call.from_dict(call.to_dict()).to_dict())
    assert display(Appeared("Thumbprint")) == "<Thumbprint of what the step made, read back>"
    assert STEP.undo[0].text() == (
        "Remove-ExchangeCertificate -Thumbprint <Thumbprint of what the step made, read back>"
    )
