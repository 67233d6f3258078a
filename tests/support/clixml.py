"""The shape of CLIXML objects: property names and element types, nested types resolved.

Used to compare what the lab puts on the wire with captures of real Exchange objects.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

NS = "{http://schemas.microsoft.com/powershell/2004/04}"
# Added by the PowerShell client that received the objects (remoting), not sent by the server.
CLIENT_NOTES = frozenset({"PSComputerName", "RunspaceId", "PSShowComputerName"})


@dataclass
class Shape:
    """An object's type names and, per property, its element tag ("Obj:<first type>" for objects,
    with the item shapes of a collection)."""

    type_names: tuple[str, ...]
    adapted: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    items: list[Shape] = field(default_factory=list)
    nested: dict[str, Shape] = field(default_factory=dict)
    to_string: str | None = None


class Reader:
    """Reads one CLIXML document; TN/TNRef and Obj/Ref resolved across its objects."""

    def __init__(self, root: ET.Element) -> None:
        self.type_names: dict[str, tuple[str, ...]] = {}
        self.objects: dict[str, ET.Element] = {}
        for element in root.iter():
            tag = _tag(element)
            if tag == "TN":
                self.type_names[element.get("RefId", "")] = tuple(
                    t.text or "" for t in element if _tag(t) == "T"
                )
            elif tag == "Obj" and element.get("RefId") is not None:
                self.objects.setdefault(element.get("RefId", ""), element)

    def types_of(self, obj: ET.Element) -> tuple[str, ...]:
        """The object's type names (TN or TNRef)."""
        for child in obj:
            if _tag(child) == "TN":
                return self.type_names[child.get("RefId", "")]
            if _tag(child) == "TNRef":
                return self.type_names[child.get("RefId", "")]
        return ()

    def shape(self, obj: ET.Element) -> Shape:
        """The shape of an <Obj> element."""
        found = Shape(self.types_of(obj))
        for child in obj:
            tag = _tag(child)
            if tag == "ToString":
                found.to_string = child.text
            elif tag in ("Props", "MS"):
                target = found.adapted if tag == "Props" else found.notes
                for prop in child:
                    name = prop.get("N", "")
                    if tag == "MS" and name in CLIENT_NOTES:
                        continue
                    target[name], nested = self.element(prop)
                    if nested is not None:
                        found.nested[name] = nested
            elif tag in ("LST", "IE"):
                found.items = [self.element(item)[1] or Shape((_tag(item),)) for item in child]
        return found

    def element(self, element: ET.Element) -> tuple[str, Shape | None]:
        """(element type, nested shape) of a property value."""
        tag = _tag(element)
        if tag == "Ref":
            element, tag = self.objects[element.get("RefId", "")], "Obj"
        if tag != "Obj":
            return tag, None
        nested = self.shape(element)
        return f"Obj:{nested.type_names[0] if nested.type_names else '?'}", nested


def read(path: Path | str) -> tuple[Reader, list[ET.Element]]:
    """The reader and top-level objects of a CLIXML file (<Objs>) or text."""
    text = Path(path).read_text(encoding="utf-8-sig") if isinstance(path, Path) else path
    root = ET.fromstring(text)
    objects = [child for child in root if _tag(child) == "Obj"] if _tag(root) == "Objs" else [root]
    return Reader(root), objects


def shapes(path: Path | str) -> list[Shape]:
    """The shapes of a CLIXML file's top-level objects."""
    reader, objects = read(path)
    return [reader.shape(obj) for obj in objects]


def _tag(element: ET.Element) -> str:
    return element.tag.removeprefix(NS)
