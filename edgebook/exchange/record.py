"""PSRecord: an Exchange object received over PSRP, as a dict of its properties."""

from __future__ import annotations

from typing import Any


class PSRecord(dict[str, Any]):
    """An Exchange object as a dict of properties; `.type_names`, `.to_string`, attribute access."""

    def __init__(
        self,
        properties: dict[str, Any] | None = None,
        type_names: tuple[str, ...] = (),
        to_string: str | None = None,
    ) -> None:
        super().__init__(properties or {})
        self.type_names = type_names
        self.to_string = to_string

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def is_type(self, type_name: str) -> bool:
        """Whether the object is (or derives from) this .NET type (wire name)."""
        return type_name in self.type_names

    def __str__(self) -> str:
        """The object's ToString() (an ADObjectId gives the name), as PowerShell prints it."""
        return self.to_string if self.to_string is not None else dict.__repr__(self)

    def __repr__(self) -> str:
        kind = self.type_names[0].rpartition(".")[2] if self.type_names else "object"
        return f"PSRecord<{kind}>({dict.__repr__(self)})"
