"""clixml.read gives what psrpcore's parse converted by plain() gives, on every object the lab
sends, on captures of real Exchange, and on hand-written edge cases; what it cannot read falls
back to psrpcore."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from psrpcore.types import deserialize

from edgebook.exchange import clixml
from edgebook.exchange.normalize import (
    _CIPHER,
    PSRecord,
    ReceivedObject,
    ReferenceTolerantSerializer,
    normalize,
    plain,
)
from tests.support.clixml_corpus import SCENARIOS, lab_objects
from tests.test_capture_replay import CAPTURES, wire_objects

FIXTURES = Path(__file__).parent / "fixtures" / "clixml"
TN = '<TN RefId="{}"><T>{}</T><T>System.Object</T></TN>'
ENUM = (
    '<TN RefId="{}"><T>Contoso.Kind</T><T>System.Enum</T><T>System.ValueType</T>'
    "<T>System.Object</T></TN>"
)
EDGE_CASES = {
    "refs and TNRef": (
        f'<Obj RefId="0">{TN.format(0, "Contoso.Outer")}<Props>'
        f'<Obj N="First" RefId="1">{TN.format(1, "Contoso.Id")}<ToString>EDGE01</ToString>'
        '<Props><S N="Name">EDGE01</S></Props></Obj>'
        '<Obj N="Second" RefId="2"><TNRef RefId="1" /><ToString>EDGE02</ToString>'
        '<Props><S N="Name">EDGE02</S></Props></Obj>'
        '<Ref N="Again" RefId="1" /></Props></Obj>'
    ),
    "escapes": (
        f'<Obj RefId="0">{TN.format(0, "Contoso.Text")}<Props>'
        '<S N="Line">a_x000A_b_x005F_x0041_</S><S N="Pair">_xD83D__xDE00_</S>'
        '<S N="Upper">_X000A_</S><S N="Lone">_xD800_</S><S N="Plain">x_y</S>'
        '<S N="N_x0020_ame">named</S></Props></Obj>'
    ),
    "nil, empty and empty Props": (
        f'<Obj RefId="0">{TN.format(0, "Contoso.Empty")}<Props><Nil N="Nothing" /><S N="Empty" />'
        f'<I32 N="Zero" /><Obj N="Bare" RefId="1">{TN.format(1, "Contoso.Bare")}<Props />'
        '</Obj><Obj N="Text" RefId="2"><TNRef RefId="1" /><ToString>shown</ToString><Props />'
        "</Obj></Props></Obj>"
    ),
    "nested LST of Obj": (
        f'<Obj RefId="0">{TN.format(0, "Contoso.Holder")}<Props><Obj N="Items" RefId="1">'
        f"{TN.format(1, 'System.Object[]')}<LST>"
        f'<Obj RefId="2">{TN.format(2, "Contoso.Item")}<Props><I32 N="N">1</I32></Props></Obj>'
        '<Obj RefId="3"><TNRef RefId="2" /><Props><I32 N="N">2</I32></Props></Obj>'
        '<Ref RefId="2" /><S>text</S><Nil /></LST></Obj>'
        '<Obj N="Queue" RefId="4"><TNRef RefId="1" /><QUE><I32>1</I32><I32>2</I32></QUE></Obj>'
        '<Obj N="Stack" RefId="5"><TNRef RefId="1" /><STK><I32>3</I32></STK></Obj>'
        '<Obj N="Enumerable" RefId="6"><TNRef RefId="1" /><IE><B>true</B></IE></Obj>'
        "</Props></Obj>"
    ),
    "enums and flags": (
        f'<Obj RefId="0">{TN.format(0, "Contoso.Config")}<Props>'
        f'<Obj N="Kind" RefId="1">{ENUM.format(1)}<ToString>Internal</ToString><I32>2</I32></Obj>'
        '<Obj N="Flags" RefId="2"><TNRef RefId="1" /><ToString>IMAP, POP, SMTP</ToString>'
        '<I32>7</I32></Obj><Obj N="Number" RefId="3"><TNRef RefId="1" /><ToString />'
        "<I32>9</I32></Obj></Props></Obj>"
    ),
    "scalars": (
        f'<Obj RefId="0">{TN.format(0, "Contoso.Scalars")}<Props>'
        '<SS N="Secret">AAAA</SS><BA N="Bytes">AQID</BA><C N="Char">65</C>'
        '<DT N="Utc">2024-05-01T10:20:30.1234567Z</DT><DT N="Offset">2024-05-01T10:20:30-05:30</DT>'
        '<DT N="Naive">2024-05-01T10:20:30.5</DT><TS N="Span">P1DT2H3M4.5S</TS>'
        '<TS N="Negative">-PT0.0000015S</TS><G N="Guid">{6F9619FF-8B86-D011-B42D-00C04FC964FF}</G>'
        '<Version N="Version">15.1.2507.6</Version><D N="Decimal">1.50</D>'
        '<Db N="Double">2.5</Db><Sg N="Single">-1E3</Sg><I64 N="Long">-9000000000</I64>'
        '<U64 N="ULong">18446744073709551615</U64><By N="Byte">255</By><SB N="SByte">-1</SB>'
        '<URI N="Uri">https://a/_x0041_</URI><XD N="Xml">&lt;a/&gt;</XD><B N="No">False</B>'
        "</Props></Obj>"
    ),
    "hashtable and no TN": (
        '<Obj RefId="0"><ToString>loose</ToString><MS><Obj N="Table" RefId="1">'
        '<TN RefId="0"><T>System.Collections.Hashtable</T><T>System.Object</T></TN><DCT>'
        '<En><S N="Key">a</S><I32 N="Value">1</I32></En>'
        '<En><I32 N="Value">2</I32><I32 N="Key">2</I32></En></DCT></Obj>'
        '<S N="Note">n</S></MS><Props><S N="Note">adapted</S><S N="Only">o</S></Props></Obj>'
    ),
    "primitive with notes": (
        f'<Obj RefId="0">{TN.format(0, "Contoso.Wrapped")}<ToString>7</ToString><I32>7</I32>'
        '<MS><S N="Extra">x</S></MS></Obj>'
    ),
}


def same(ours: Any, theirs: Any) -> bool:
    """Deep equality that also compares types, PSRecord metadata and datetime offsets."""
    if type(ours) is not type(theirs):
        return False
    if isinstance(ours, PSRecord) and (ours.type_names, ours.to_string) != (
        theirs.type_names,
        theirs.to_string,
    ):
        return False
    if isinstance(ours, dict):
        return list(ours) == list(theirs) and all(same(ours[k], theirs[k]) for k in ours)
    if isinstance(ours, list):
        return len(ours) == len(theirs) and all(map(same, ours, theirs))
    if isinstance(ours, dt.datetime):
        return ours == theirs and ours.utcoffset() == theirs.utcoffset()
    return bool(ours == theirs)


def assert_read_like_psrpcore(text: str) -> None:
    element = ET.fromstring(text)
    theirs = plain(deserialize(element, _CIPHER))
    ours = clixml.read(element)
    assert same(ours, theirs), f"{ours!r}\n!=\n{theirs!r}\nfor {text[:300]}"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_object_the_lab_sends(scenario: str, tmp_path: Path) -> None:
    corpus = lab_objects(scenario, tmp_path / "lab")
    assert len(corpus) > 40
    for text in corpus:
        assert_read_like_psrpcore(text)


@pytest.mark.parametrize("name", sorted(p.name for p in CAPTURES.glob("*.xml")))
def test_real_exchange_captures(name: str) -> None:
    for text in wire_objects(name):
        assert_read_like_psrpcore(text)


@pytest.mark.parametrize("name", ["exchange_certificate.xml", "send_connector.xml"])
def test_fixtures(name: str) -> None:
    assert_read_like_psrpcore((FIXTURES / name).read_text())


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
def test_edge_cases(case: str) -> None:
    assert_read_like_psrpcore(EDGE_CASES[case])


def test_a_reference_is_a_fresh_copy() -> None:
    record = clixml.read(ET.fromstring(EDGE_CASES["refs and TNRef"]))
    assert record["Again"] == record["First"] and record["Again"] is not record["First"]


PROGRESS = (
    "<AV>Copying</AV><AI>1</AI><Nil /><PI>-1</PI><PC>50</PC><T>Processing</T><SR>-1</SR>"
    "<SD>half</SD>"
)


@pytest.mark.parametrize(
    "text",
    [
        # a tag the reader does not know (psrpcore makes a ProgressRecord of it)
        f'<Obj RefId="0">{TN.format(0, "Contoso.Odd")}<MS><PR N="P">{PROGRESS}</PR></MS></Obj>',
        (FIXTURES / "error_record.xml").read_text(),  # a type psrpcore rehydrates
        f'<Obj RefId="0">{TN.format(0, "Contoso.Odd")}<DT>2024-5-1T10:20:30Z</DT></Obj>',
        f'<Obj RefId="0">{ENUM.format(0)}<S>5</S></Obj>',  # an enum without its text
    ],
)
def test_what_the_reader_leaves_goes_to_psrpcore(text: str) -> None:
    element = ET.fromstring(text)
    with pytest.raises(clixml.Unreadable):
        clixml.read(element)
    received = ReferenceTolerantSerializer().deserialize(text)
    assert isinstance(received, ReceivedObject) and received.parsed is not None
    assert same(normalize(received), plain(deserialize(element, _CIPHER)))
