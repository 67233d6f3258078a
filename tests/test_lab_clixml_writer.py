"""The lab's direct CLIXML writer (edgebook.lab.winrm.clixml_writer) against psrpcore: the same
bytes for every object the lab outputs in every scenario, and for hand-written edge cases."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import psrpcore
import pytest
from psrpcore.types import serialize

from edgebook.lab.winrm.clixml_writer import Unsupported, clixml
from edgebook.lab.winrm.objects import (
    MVP_STRING,
    ExEnum,
    ExList,
    ExObject,
    ExPrimitive,
    Int64,
    exchange_object,
)
from edgebook.lab.winrm.wire import to_wire
from tests.support.clixml_corpus import SCENARIOS, lab_values

CIPHER = psrpcore.PSRemotingCrypto()
STATUS = "System.ServiceProcess.ServiceControllerStatus"
RUNNING = ExEnum(STATUS, "Running", 4)
STOPPED = ExEnum(STATUS, "Stopped", 1)
FLAGS = ExEnum("Microsoft.Exchange.Data.AllowedServices", "IMAP, POP, SMTP", 14)
WIDE = ExEnum("Microsoft.Exchange.Data.Wide", "High", 2**31)
STRINGS = [
    "",
    "plain",
    "_x0041_ and _X0041_ and a_b",
    "&<>\"' ]]>",
    "line\nbreak\ttab\rreturn",
    "\x00\x01\x1f\x7f\x85\x9f",
    "astral \U0001f600 and BMP é ✓",
    "lone \ud800 and \ud900 and \udfff",
]
DATES = [
    dt.datetime(2026, 12, 2, 13, 5, 9, tzinfo=dt.UTC),
    dt.datetime(2026, 12, 2, 13, 5, 9, 120, tzinfo=dt.UTC),
    dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
    dt.datetime(2026, 6, 30, 23, 59, 59, 999999, tzinfo=dt.timezone(-dt.timedelta(hours=8))),
    dt.datetime(2026, 6, 30, tzinfo=dt.timezone(dt.timedelta(seconds=3661))),
]
DURATIONS = [
    dt.timedelta(0),
    dt.timedelta(days=3),
    dt.timedelta(days=1, hours=2, minutes=3, seconds=4, microseconds=5),
    dt.timedelta(seconds=-90.5),
    dt.timedelta(microseconds=1),
]
NUMBERS = [0, -1, 2**31 - 1, 2**31, -(2**40), Int64(5), Int64(-(2**63))]
FLOATS = [0.0, -0.0, 1.5, 1e20, 1e-7, float("inf"), float("nan")]
SCALARS: list[Any] = [
    None,
    True,
    False,
    b"",
    b"\x00\xff binary",
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    *STRINGS,
    *DATES,
    *DURATIONS,
    *NUMBERS,
    *FLOATS,
    RUNNING,
    FLAGS,
    WIDE,
]


def theirs(value: Any) -> bytes:
    """What the lab sent before the writer: psrpcore's serialisation of to_wire(value)."""
    return ElementTree.tostring(serialize(to_wire(value), CIPHER), encoding="utf-8")


def service(name: str, status: ExEnum, **extra: Any) -> ExObject:
    return ExObject(
        ["System.ServiceProcess.ServiceController", "System.Object"],
        {"Name": name, "Status": status, **extra},
        to_string=f"System.ServiceProcess.ServiceController ({name})",
    )


EDGE_CASES: dict[str, Any] = {
    "nested lists": [[1, [2, []]], (), [None, "x"], ExList("System.String[]", [[], ["a"]])],
    "multi-valued property": ExList(MVP_STRING, ["mail.contoso.com", "_x", "&"]),
    "empty multi-valued property": ExList(MVP_STRING),
    "an enum value met again is a Ref": [RUNNING, STOPPED, RUNNING, [ExEnum(STATUS, "Running", 4)]],
    "refs inside objects": service("A", RUNNING, StartType=RUNNING, Other=STOPPED, Again=RUNNING),
    "repeated types are TNRefs": [
        service("A", RUNNING),
        service("B", STOPPED),
        service("A", RUNNING),
    ],
    "the same object twice is written twice": [service("A", RUNNING)] * 2,
    "exchange object with SerializationData": exchange_object(
        ["Microsoft.Exchange.Data.Directory.SystemConfiguration.X509Identifier", "System.Object"],
        {"Issuer": 'CN=<CA> & "co"', "Serial": Int64(7), "When": DATES[3]},
        to_string="CN=<CA> & co\x01",
    ),
    "adapted subset and notes": ExObject(
        ["T.Narrow"],
        {"Shown": 1, "Hidden": 2, "Note": "n"},
        adapted=("Shown",),
        notes=("Note",),
    ),
    "no properties, no ToString, empty ToString": [
        ExObject(["T.Empty"], {}),
        ExObject(["T.Empty"], {}, to_string=""),
        ExObject([], {"A": 1}),
    ],
    "awkward property and type names": ExObject(
        ["Ns.Generic`1[[A & <B>]]", "Ns.\u00e9"],
        {'q"uote': 1, "a&b<c>": 2, "new\nline\ttab\r": 3, "_x0041_": 4, "": 5, "\U0001f600": 6},
    ),
    "hashtables": {"key": "value", 1: [RUNNING], "nested": {"inner": None}, "empty": {}},
    "every scalar as a property": ExObject(["T.All"], {f"P{i}": v for i, v in enumerate(SCALARS)}),
    "every scalar in a list": list(SCALARS),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    directory: Path = tmp_path_factory.mktemp("corpus")
    return [value for scenario in SCENARIOS for value in lab_values(scenario, directory / scenario)]


def test_every_lab_output_is_written_as_psrpcore_writes_it(corpus):
    assert len(corpus) > 600
    # ExPrimitive: Get-Date's DateTime with its DisplayHint note
    assert {type(v) for v in corpus} >= {ExObject, str, ExPrimitive}
    different = [v for v in corpus if clixml(v) != theirs(v)]
    assert different == []


HINT = ExEnum("Microsoft.PowerShell.Commands.DisplayHintType", "Time", 1)
NOTED_VALUES: list[Any] = [
    *STRINGS,
    *DATES,
    *DURATIONS,
    *NUMBERS,
    -(2**31),
    *FLOATS,
    b"",
    b"\x00\xff",
]


@pytest.mark.parametrize("value", NOTED_VALUES, ids=repr)
def test_primitives_with_notes(value):
    """<Obj> with the primitive's element and <MS>, as psrpcore's wrapper classes are written."""
    noted = ExPrimitive(value, {"DisplayHint": HINT, "_x0041_ & <n>": value, "Other": [HINT]})
    written = clixml(noted)
    assert written.startswith(b'<Obj RefId="0"><') and b"<MS>" in written
    assert written == theirs(noted)


PRIMITIVE_EDGE_CASES: dict[str, Any] = {
    "Get-Date's output": ExPrimitive(DATES[1], {"DisplayHint": HINT}),
    "no notes is the primitive alone": [ExPrimitive(DATES[0], {}), ExPrimitive("x", {})],
    "as a property and in a list": ExObject(
        ["T.Holder"], {"When": ExPrimitive(DATES[0], {"N": 1}), "All": [ExPrimitive(7, {"N": 2})]}
    ),
    "an equal value met again is a Ref, whatever its notes": [
        ExPrimitive(DATES[0], {"N": 1}),
        ExPrimitive(DATES[0], {"N": 2}),
        ExPrimitive(DATES[0].astimezone(dt.timezone(dt.timedelta(hours=3))), {"N": 3}),
    ],
    "0.0 and -0.0 are equal, an equal Guid is a Ref": [
        ExPrimitive(0.0, {"N": 1}),
        ExPrimitive(-0.0, {"N": 1}),
        ExPrimitive(uuid.UUID(int=7), {"N": 1}),
        ExPrimitive(uuid.UUID(int=7), {"N": 1}),
    ],
    "ints, bytes and durations are never Refs": [
        ExPrimitive(v, {"N": 1})
        for v in (5, 5, Int64(5), 5.0, b"x", b"x", DURATIONS[1], DURATIONS[1])
    ],
    "the same NaN twice is no Ref": [ExPrimitive(FLOATS[-1], {"N": 1})] * 2,
    "a plain value equal to a noted one is written plain": [
        ExPrimitive("x", {"N": 1}),
        "x",
        ExPrimitive("x", {"N": 1}),
    ],
    "the notes' enum is a Ref the second time": [
        ExPrimitive(DATES[0], {"DisplayHint": HINT}),
        ExPrimitive(DATES[1], {"DisplayHint": HINT}),
    ],
    "notes that are themselves noted": ExPrimitive(
        "outer", {"Inner": ExPrimitive(DURATIONS[2], {"Deep": ExObject(["T.Deep"], {"A": 1})})}
    ),
}


@pytest.mark.parametrize("value", PRIMITIVE_EDGE_CASES.values(), ids=PRIMITIVE_EDGE_CASES.keys())
def test_primitive_edge_cases(value):
    assert clixml(value) == theirs(value)


def test_refs_of_primitives_and_enums_share_the_ref_ids():
    written = clixml(PRIMITIVE_EDGE_CASES["the notes' enum is a Ref the second time"])
    assert written.count(b"<Ref ") == 1 and b'<Ref RefId="2" N="DisplayHint" />' in written
    again = clixml(PRIMITIVE_EDGE_CASES["an equal value met again is a Ref, whatever its notes"])
    assert again.count(b'<Ref RefId="1" />') == 2


def test_a_naive_datetime_with_notes_is_left_to_psrpcore():
    with pytest.raises(Unsupported):
        clixml([ExPrimitive(dt.datetime(2026, 1, 1), {"N": 1})])


@pytest.mark.parametrize("value", SCALARS, ids=repr)
def test_scalars(value):
    assert clixml(value) == theirs(value)


@pytest.mark.parametrize("value", EDGE_CASES.values(), ids=EDGE_CASES.keys())
def test_edge_cases(value):
    assert clixml(value) == theirs(value)


def test_an_enum_met_again_is_a_ref_and_types_once():
    written = clixml([RUNNING, STOPPED, RUNNING])
    assert written.count(b"<Ref ") == 1
    assert written.count(b"<TN ") == 2 and written.count(b"<TNRef ") == 1  # Object[], Status


class Text(str):
    """A str subclass: psrpcore decides how to write it, not the writer."""


class Colour(enum.Enum):
    RED = 1


@pytest.mark.parametrize(
    "value",
    [dt.datetime(2026, 1, 1), Text("x"), Colour.RED, {1, 2}, ExObject(["T"], {"A": {3}})],
    ids=["naive datetime", "str subclass", "python enum", "set", "set inside an object"],
)
def test_other_values_are_left_to_psrpcore(value):
    with pytest.raises(Unsupported):
        clixml(value)
