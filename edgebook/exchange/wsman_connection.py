"""The WSMan connection of one Exchange endpoint, built from the inventory's WinRM settings.

check_endpoint refuses settings that would send credentials readable over plain http (lab
loopback excepted); build_wsman checks the files the settings name, resolves the credential and
the client certificate key's password, and makes pypsrp's WSMan with edgebook's time bounds:
connection_timeout to connect, operation_timeout + READ_MARGIN_S for each answer.
ExchangeShell (edgebook.exchange.shell) calls both; everything else it does is the session.
"""

from __future__ import annotations

from pathlib import Path

from pypsrp.wsman import WSMan

from edgebook.config import CredentialRef, WinRMEndpoint
from edgebook.errors import ConfigError
from edgebook.secrets import Credential

READ_MARGIN_S = 10  # an answer may come this long after the WSMan OperationTimeout


def check_endpoint(name: str, winrm: WinRMEndpoint, lab: bool) -> None:
    """Refuse Basic or certificate authentication over plain http (lab loopback excepted)."""
    if winrm.scheme != "http" or winrm.auth not in ("basic", "certificate"):
        return
    if winrm.auth == "basic" and lab and winrm.is_loopback:
        return
    raise ConfigError(
        f"{name} ({winrm.url}): {winrm.auth} authentication over plain http is refused "
        "(the credentials would cross the network readable); use scheme https, or kerberos/"
        "ntlm/negotiate which encrypt the messages"
    )


def build_wsman(
    name: str,
    winrm: WinRMEndpoint,
    credential: Credential | CredentialRef | None,
    *,
    operation_timeout: int,
    connection_timeout: float,
) -> WSMan:
    """pypsrp's WSMan for server name at winrm; a credential reference is resolved (it may
    prompt). Missing files and passwords Basic cannot carry raise ConfigError."""
    for key in ("ca_file", "certificate_pem", "certificate_key_pem"):
        path: Path | None = getattr(winrm, key)
        if path is not None and not path.is_file():
            problem = "is a folder, not a file" if path.is_dir() else "does not exist"
            raise ConfigError(f"{name}: winrm.{key} {path} {problem}")
    username = password = None
    if isinstance(credential, CredentialRef):
        credential = credential.resolve(what=f"{name} ({winrm.url})")
    if credential is not None:
        username, password = credential.username, credential.password
        if winrm.auth == "basic" and not f"{username}:{password}".isascii():
            try:  # requests sends Basic credentials as Latin-1
                f"{username}:{password}".encode("latin-1")
            except UnicodeEncodeError:
                raise ConfigError(
                    f"{name}: the username or password of {username} has a character "
                    "outside Latin-1, which Basic authentication cannot carry; use "
                    "winrm.auth: ntlm (or negotiate) for this server, or such a password"
                ) from None
    key_password = None
    if winrm.certificate_key_password is not None:
        key_password = (
            CredentialRef("", winrm.certificate_key_password)
            .resolve(what=f"{name} certificate key")
            .password
        )
    http = winrm.scheme == "http"
    return WSMan(
        winrm.host,
        port=winrm.port,
        path=winrm.path,
        ssl=not http,
        auth=winrm.auth,
        username=username,
        password=password,
        # pypsrp annotates bool, but also takes a CA bundle path (it goes to requests' verify)
        cert_validation=winrm.cert_validation,  # type: ignore[arg-type]
        encryption="never" if http and winrm.auth == "basic" else "auto",
        operation_timeout=operation_timeout,
        # pypsrp annotates int; the value goes to requests' timeout, which takes float seconds
        connection_timeout=connection_timeout,  # type: ignore[arg-type]
        read_timeout=operation_timeout + READ_MARGIN_S,
        no_proxy=winrm.is_loopback,
        certificate_pem=_str(winrm.certificate_pem),
        certificate_key_pem=_str(winrm.certificate_key_pem),
        certificate_key_password=key_password,
    )


def _str(path: Path | None) -> str | None:
    return str(path) if path is not None else None
