"""edgebook: runbooks to replace the certificate on Exchange Edge Transport servers."""

from edgebook.errors import EdgebookError
from edgebook.findings import Finding, Severity

__all__ = ["EdgebookError", "Finding", "Severity"]
__version__ = "0.1.0"
