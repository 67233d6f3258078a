"""Wire type names of the objects Exchange cmdlets return; the lab emits them, the shell
tells batched outputs apart by them. Names are as on the wire (no `Deserialized.` prefix)."""

EXCHANGE_CERTIFICATE = "Microsoft.Exchange.Management.SystemConfigurationTasks.ExchangeCertificate"
TRANSPORT_SERVICE = (
    "Microsoft.Exchange.Data.Directory.SystemConfiguration.TransportServerPresentationObject"
)
RECEIVE_CONNECTOR = "Microsoft.Exchange.Data.Directory.SystemConfiguration.ReceiveConnector"
SEND_CONNECTOR = "Microsoft.Exchange.Data.Directory.SystemConfiguration.SmtpSendConnectorConfig"
QUEUE = "Microsoft.Exchange.Data.QueueViewer.ExtensibleQueueInfo"
SERVER_HEALTH = "Microsoft.Exchange.Management.Monitoring.MonitorHealthEntry"
EDGE_SUBSCRIPTION = "Microsoft.Exchange.Management.SystemConfigurationTasks.Subscription"
EDGE_SYNC_STATUS = "Microsoft.Exchange.EdgeSync.Validation.EdgeSubscriptionStatus"
EDGE_SYNC_RESULT = "Microsoft.Exchange.EdgeSync.Common.Internal.EdgeSyncResult"
EVENT_LOG_ENTRY = "System.Diagnostics.EventLogEntry"
SERVICE_CONTROLLER = "System.ServiceProcess.ServiceController"
PS_SNAPIN_INFO = "System.Management.Automation.PSSnapInInfo"

EXCHANGE_SNAPIN = "Microsoft.Exchange.Management.PowerShell.SnapIn"

# The two endpoint shapes (docs/domain.md, "Endpoints"): Mailbox servers at /PowerShell with the
# NoLanguage configuration Microsoft.Exchange; Edges at the default /wsman, Microsoft.PowerShell.
EXCHANGE_CONFIGURATION = "Microsoft.Exchange"
POWERSHELL_CONFIGURATION = "Microsoft.PowerShell"
MAILBOX_SHAPE = ("PowerShell", EXCHANGE_CONFIGURATION)  # (path, configuration name)
EDGE_SHAPE = ("wsman", POWERSHELL_CONFIGURATION)

# Enum and value types of properties (appended for the lab's cmdlets).
ALLOWED_SERVICES = "Microsoft.Exchange.Management.SystemConfigurationTasks.AllowedServices"
CERTIFICATE_STATUS = "Microsoft.Exchange.Management.SystemConfigurationTasks.CertificateStatus"
CERTIFICATE_AUTHORITY_TYPE = (
    "Microsoft.Exchange.Management.SystemConfigurationTasks.CertificateAuthorityType"
)
X509_CERTIFICATE2 = "System.Security.Cryptography.X509Certificates.X509Certificate2"
X509_CERTIFICATE = "System.Security.Cryptography.X509Certificates.X509Certificate"
BINARY_FILE_DATA = "Microsoft.Exchange.Data.BinaryFileDataObject"
SMTP_X509_IDENTIFIER = "Microsoft.Exchange.Data.SmtpX509Identifier"
SMTP_DOMAIN_LIST = (
    "System.Collections.Generic.List`1[[Microsoft.Exchange.Data.SmtpDomainWithSubdomains, "
    "Microsoft.Exchange.Data, Version=15.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35]]"
)
TLS_AUTH_LEVEL = "Microsoft.Exchange.Data.TlsAuthLevel"
QUEUE_STATUS = "Microsoft.Exchange.Data.QueueViewer.QueueStatus"
DELIVERY_TYPE = "Microsoft.Exchange.Data.DeliveryType"
NEXT_HOP_CATEGORY = "Microsoft.Exchange.Data.QueueViewer.NextHopCategory"
VALIDATION_STATUS = "Microsoft.Exchange.EdgeSync.Validation.ValidationStatus"
LEASE_TOKEN_TYPE = "Microsoft.Exchange.EdgeSync.Common.LeaseTokenType"
EDGE_SYNC_RESULT_STATUS = "Microsoft.Exchange.EdgeSync.Common.Internal.SyncResult"
EDGE_SYNC_TYPE = "Microsoft.Exchange.EdgeSync.Common.Internal.SyncTreeType"
EVENT_LOG_ENTRY_TYPE = "System.Diagnostics.EventLogEntryType"
SERVICE_CONTROLLER_STATUS = "System.ServiceProcess.ServiceControllerStatus"
MONITOR_ALERT_STATE = "Microsoft.Office.Datacenter.ActiveMonitoring.MonitorAlertState"
SERVER_ROLE = "Microsoft.Exchange.Data.Directory.SystemConfiguration.ServerRole"

# AllowedServices flags of Get-ExchangeCertificate, in the order Exchange prints them.
SERVICE_FLAGS = {
    "IMAP": 1,
    "POP": 2,
    "UM": 4,
    "IIS": 8,
    "SMTP": 16,
    "Federation": 32,
    "UMCallRouter": 64,
}

# Exchange data objects nested in connectors (captures of Exchange 2016/2019).
AD_OBJECT_ID = "Microsoft.Exchange.Data.Directory.ADObjectId"
AD_OBJECT_ID_MVP = (
    "Microsoft.Exchange.Data.Directory.ADMultiValuedProperty`1[[Microsoft.Exchange.Data.Directory."
    "ADObjectId, Microsoft.Exchange.Data.Directory, Version=15.0.0.0, Culture=neutral, "
    "PublicKeyToken=31bf3856ad364e35]]"
)
ADDRESS_SPACE = "Microsoft.Exchange.Data.AddressSpace"
SMART_HOST = "Microsoft.Exchange.Data.SmartHost"
IP_BINDING = "Microsoft.Exchange.Data.IPBinding"
FQDN = "Microsoft.Exchange.Data.Fqdn"
RECEIVE_DOMAIN_CAPABILITIES = "Microsoft.Exchange.Data.SmtpReceiveDomainCapabilities"
AUTH_MECHANISMS = "Microsoft.Exchange.Data.Directory.SystemConfiguration.AuthMechanisms"
PERMISSION_GROUPS = "Microsoft.Exchange.Data.PermissionGroups"
SELECTED_EXCHANGE_CERTIFICATE = f"Selected.{EXCHANGE_CERTIFICATE}"
SELECTED_SEND_CONNECTOR = f"Selected.{SEND_CONNECTOR}"


def mvp(item_type: str, assembly: str = "Microsoft.Exchange.Data") -> str:
    """The wire name of Exchange's MultiValuedProperty of item_type."""
    return (
        f"Microsoft.Exchange.Data.MultiValuedProperty`1[[{item_type}, {assembly}, "
        "Version=15.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35]]"
    )
