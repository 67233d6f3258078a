"""edgebook: runbooks to replace the certificate on Exchange Edge Transport servers."""

import sys

from edgebook.errors import EdgebookError
from edgebook.findings import Finding, Severity

# jsonschema (under nbformat and papermill) imports rfc3987_syntax when it is installed (jupyter's
# own dependencies install it), which compiles 38 Lark grammars at import: ~2.5 s for every
# process that reads or runs a notebook. Neither nbformat nor papermill checks the IRI formats
# those grammars serve; without the module jsonschema leaves those formats unchecked, exactly as
# where it is not installed. A process that imported it before edgebook keeps it.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

__all__ = ["EdgebookError", "Finding", "Severity"]
__version__ = "0.1.0"
