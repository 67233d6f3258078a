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
