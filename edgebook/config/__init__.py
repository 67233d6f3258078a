"""Parameters files (YAML) → a validated, frozen Inventory.

Format (parameters/example-contoso.yaml is the annotated reference)::

    lab: false                      # true only in inventories written by `edgebook lab start`
    organisation:
      name: Contoso
      ad_site: Default-First-Site-Name        # the AD site of the Edge Subscriptions
      mailbox_servers:                        # at least one
        - name: MBX01
          fqdn: mbx01.contoso.com
          winrm: {scheme: http, auth: kerberos}   # defaults: host=fqdn, port 80/443,
                                                  # path PowerShell, Microsoft.Exchange
          credential: {username: admin@contoso.com, password: env:EDGEBOOK_MBX_PASSWORD}
    edges:                                    # at least one
      - name: EDGE01
        fqdn: edge01.contoso.com
        winrm: {ca_file: ca.pem}              # defaults: https, ntlm, port 5986 (http 5985),
                                              # path wsman, Microsoft.PowerShell
        credential: {username: EDGE01\\Administrator, password: keyring:edgebook/EDGE01}
        smtp: {host: edge01.contoso.com, port: 25}        # defaults: fqdn, 25
        ldaps: {host: edge01.contoso.com, port: 50636}    # defaults: fqdn, 50636
    change:                                   # optional; all keys have defaults
      warning_days: 30
      expected_fqdns: [mail.contoso.com]
      hybrid: false
      tls_domain_capabilities: mail.protection.outlook.com:AcceptCloudServicesMail
      event_days: 7
      certificates:                           # the renewal per Edge (notebook 02's default)
        EDGE01: {pfx: renewal/EDGE01.pfx, password: env:PFX_PASSWORD, chain: chain.pem}

winrm keys: host, port, path, scheme (http|https), auth (kerberos|ntlm|negotiate|basic|
certificate), ca_file, verify_tls (default true), configuration_name, and for certificate
auth certificate_pem, certificate_key_pem, certificate_key_password (a reference).

Rules: unknown keys are refused; a value for any key named like a secret (edgebook.secrets.
SECRET_WORDS: password, secret, passphrase, token, private_key, credential)
must be a secret reference (env:NAME, keyring:service/user, prompt, file:PATH; see
edgebook.secrets); relative paths resolve against the parameters file's folder; Basic over
plain http only in a lab inventory on a loopback address; certificate auth only over https.
"""

from edgebook.config.loader import load_inventory
from edgebook.config.model import (
    AUTH_METHODS,
    EDGE,
    MAILBOX,
    CertificateSource,
    ChangeSettings,
    CredentialRef,
    EdgeServer,
    Inventory,
    MailboxServer,
    Organisation,
    Server,
    SocketAddress,
    WinRMEndpoint,
    is_loopback,
)
from edgebook.config.resolve import resolve_inventory

__all__ = [
    "AUTH_METHODS",
    "EDGE",
    "MAILBOX",
    "CertificateSource",
    "ChangeSettings",
    "CredentialRef",
    "EdgeServer",
    "Inventory",
    "MailboxServer",
    "Organisation",
    "Server",
    "SocketAddress",
    "WinRMEndpoint",
    "is_loopback",
    "load_inventory",
    "resolve_inventory",
]
