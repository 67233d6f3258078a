"""Batched reads: grouping a batch's outputs by type (edgebook.exchange.batch)."""

from __future__ import annotations

from edgebook.exchange.batch import by_type
from edgebook.exchange.record import PSRecord

EVENT = "System.Diagnostics.EventLogEntry"


def test_outputs_group_by_their_first_type_name_without_powershells_view_suffix():
    """Get-EventLog names each entry <class>#<log>/<source>/<InstanceId>, so one Select-Object
    gives as many type names as there are sources and events: they are one group."""
    first = PSRecord(
        {"EventID": 12014}, (f"Selected.{EVENT}#Application/MSExchangeTransport/3221237486",)
    )
    second = PSRecord(
        {"EventID": 1003}, (f"Selected.{EVENT}#Application/MSExchange ADAccess/1003",)
    )
    certificate = PSRecord(
        {}, ("Microsoft.Exchange.Management.SystemConfigurationTasks.ExchangeCertificate",)
    )
    grouped = by_type([first, certificate, second])
    assert grouped == {
        f"Selected.{EVENT}": [first, second],
        "Microsoft.Exchange.Management.SystemConfigurationTasks.ExchangeCertificate": [certificate],
    }
