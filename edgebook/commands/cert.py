"""`edgebook cert`: show, tls-name, check, csr and pfx."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgebook.certs import (
    KEY_TYPES,
    CertificateError,
    build_pfx,
    check_certificate,
    days_left,
    describe,
    generate_csr,
    key_matches,
    load_certificate_list,
    load_certificates,
    load_private_key,
    subject_name,
    thumbprint,
    tls_certificate_name,
    write_csr,
    write_pfx,
    write_private_key,
)
from edgebook.certs.load import read_file
from edgebook.findings import Severity, sort_findings, worst
from edgebook.secrets import read_secret

_EXIT_FOR = {Severity.ERROR: 2, Severity.WARNING: 1}


def _password(args: argparse.Namespace) -> str | None:
    """The file password from --password-env (an unset variable is an error)."""
    if not args.password_env:
        return None
    return read_secret(args.password_env, "Password of the certificate file", allow_prompt=False)


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--days wants a whole number, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"--days must not be negative ({value})")
    return value


def _print_view(view: dict, indent: str = "") -> None:
    rows = [
        ("Subject", view["subject"]),
        ("Issuer", view["issuer"]),
        ("Thumbprint", view["thumbprint"]),
        ("Serial", view["serial"]),
        ("Valid from", view["not_before"]),
        ("Valid until", view["not_after"]),
        ("DNS names", ", ".join(view["dns_names"]) or "(none)"),
        ("EKU", ", ".join(view["eku"]) or "(no EKU extension: any purpose)"),
        ("Key", f"{view['key_type']} {view['key_size'] or ''}".strip()),
        ("Signature hash", view["signature_hash"] or "(none)"),
        ("Self-signed", "yes" if view["self_signed"] else "no"),
    ]
    if "has_private_key" in view:
        rows.append(("Private key", "yes" if view["has_private_key"] else "no"))
    rows.append(("TlsCertificateName", view["tls_certificate_name"]))
    for label, value in rows:
        print(f"{indent}{label + ':':<20} {value}")


def _show(args: argparse.Namespace) -> int:
    bundle = load_certificates(args.file, _password(args))
    view = describe(bundle)
    if args.json:
        print(json.dumps(view, indent=2))
        return 0
    print(f"{'File:':<20} {bundle.source}")
    _print_view(view)
    print(f"{'Days left:':<20} {days_left(bundle.leaf)}")
    for number, item in enumerate(view["chain"], start=1):
        print(f"\nChain certificate {number}:")
        _print_view(item, indent="  ")
    return 0


def _tls_name(args: argparse.Namespace) -> int:
    bundle = load_certificates(args.file, _password(args))
    if bundle.unrelated:
        others = "; ".join(subject_name(c) for c in bundle.unrelated)
        raise CertificateError(
            f"{args.file}: holds certificates that are not one chain (besides "
            f"{subject_name(bundle.leaf)}: {others}), so which TlsCertificateName is meant is "
            "unclear: give a file with only the certificate (and its chain)"
        )
    print(tls_certificate_name(bundle.leaf))
    return 0


def _check(args: argparse.Namespace) -> int:
    bundle = load_certificates(args.file, _password(args))
    chain = list(bundle.chain)
    for path in args.chain or []:
        chain += load_certificate_list(path)
    roots = load_certificate_list(args.roots) if args.roots else None
    findings = sort_findings(
        check_certificate(
            bundle.leaf,
            fqdns=args.fqdn,
            warning_days=args.days,
            chain=chain,
            roots=roots,
            private_key=bundle.private_key,
        )
    )
    verdict = worst(findings)
    exit_code = 0 if verdict is None else _EXIT_FOR.get(verdict, 0)
    if args.json:
        report = {
            "file": str(bundle.source),
            "thumbprint": thumbprint(bundle.leaf),
            "tls_certificate_name": tls_certificate_name(bundle.leaf),
            "verdict": str(verdict) if verdict is not None else "ok",
            "findings": [f.to_dict() for f in findings],
        }
        print(json.dumps(report, indent=2))
        return exit_code
    print(f"{bundle.source}: {thumbprint(bundle.leaf)}")
    for finding in findings:
        print(f"  {str(finding.severity).upper():<8} {finding.slug}: {finding.message}")
    errors = sum(f.severity == Severity.ERROR for f in findings)
    warnings = sum(f.severity == Severity.WARNING for f in findings)
    print(f"{errors} error(s), {warnings} warning(s)" if findings else "No findings.")
    return exit_code


def _refuse_existing(*paths: str) -> None:
    """Check every output before anything is written: new files in existing folders."""
    for path in paths:
        if Path(path).exists():
            raise CertificateError(f"{path}: already exists and is never overwritten")
        folder = Path(path).parent
        if not folder.is_dir():
            raise CertificateError(
                f"{path}: the folder {folder} does not exist: create it or choose another path"
            )
    if len({Path(p).resolve() for p in paths}) != len(paths):
        raise CertificateError("the output files must be different files")


def _csr(args: argparse.Namespace) -> int:
    _refuse_existing(args.key_out, args.out)
    passphrase = read_secret(
        args.passphrase_env, "Passphrase for the new private key", confirm=True
    )
    csr, key = generate_csr(args.subject, args.dns, args.key_type)
    key_file = write_private_key(key, args.key_out, passphrase)
    try:
        write_csr(csr, args.out)
    except BaseException:
        key_file.unlink(missing_ok=True)  # a key without its request is of no use
        raise
    print(f"Private key (encrypted PKCS#8, mode 0600): {args.key_out}")
    print(f"Certificate request: {args.out}")
    print(f"Key type: {args.key_type}; DNS names: {', '.join(args.dns)}")
    return 0


def _pfx(args: argparse.Namespace) -> int:
    _refuse_existing(args.out)
    key_passphrase = read_secret(args.key_passphrase_env, "Passphrase of the private key")
    pfx_passphrase = read_secret(args.passphrase_env, "Passphrase for the PFX", confirm=True)
    key = load_private_key(args.key, key_passphrase)
    certs, _ = read_file(args.cert)
    leaf = next((c for c in certs if key_matches(key, c)), None)
    if leaf is None:
        raise CertificateError(
            f"{args.cert}: no certificate in it belongs to the key {args.key}: "
            "use the certificate issued for this key's request"
        )
    chain = [c for c in certs if c != leaf]
    if args.chain:
        chain += [c for c in load_certificate_list(args.chain) if c not in chain]
    pfx = build_pfx(key, leaf, chain, pfx_passphrase, args.friendly_name, aes256=args.aes256)
    write_pfx(pfx, args.out)
    print(f"PFX (mode 0600): {args.out}")
    print(f"Thumbprint: {thumbprint(leaf)}; chain certificates: {len(chain)}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `cert` command group."""
    cert = subparsers.add_parser("cert", help="inspect, check, request and package certificates")
    sub = cert.add_subparsers(dest="cert_command", required=True, metavar="SUBCOMMAND")

    show = sub.add_parser("show", help="show a certificate as Exchange sees it")
    show.add_argument("file", metavar="FILE", help="PEM, DER, .p7b or .pfx/.p12 file")
    show.add_argument("--password-env", metavar="VAR", help="variable holding the file password")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=_show)

    tls = sub.add_parser("tls-name", help="print the TlsCertificateName <I>issuer<S>subject")
    tls.add_argument("file", metavar="FILE")
    tls.add_argument("--password-env", metavar="VAR", help="variable holding the file password")
    tls.set_defaults(func=_tls_name)

    check = sub.add_parser("check", help="check a certificate for the Edge role")
    check.add_argument("file", metavar="FILE")
    check.add_argument("--fqdn", metavar="NAME", action="append", required=True)
    check.add_argument("--chain", metavar="FILE", action="append", help="intermediate CAs")
    check.add_argument("--roots", metavar="FILE", help="trusted roots (default: system store)")
    check.add_argument("--days", metavar="N", type=_days, default=30, help="warning window")
    check.add_argument("--password-env", metavar="VAR", help="variable holding the file password")
    check.add_argument("--json", action="store_true", help="print JSON")
    check.set_defaults(func=_check)

    csr = sub.add_parser("csr", help="create a key (encrypted) and a certificate request")
    csr.add_argument("--subject", required=True, help='e.g. "CN=mail.contoso.com, O=Contoso"')
    csr.add_argument("--dns", metavar="NAME", action="append", required=True)
    csr.add_argument("--key-type", choices=KEY_TYPES, default="rsa2048")
    csr.add_argument("--key-out", metavar="FILE", required=True)
    csr.add_argument("--passphrase-env", metavar="VAR", required=True)
    csr.add_argument("--out", metavar="FILE", required=True)
    csr.set_defaults(func=_csr)

    pfx = sub.add_parser("pfx", help="package key, certificate and chain as a PFX")
    pfx.add_argument("--key", metavar="FILE", required=True)
    pfx.add_argument("--cert", metavar="FILE", required=True)
    pfx.add_argument("--chain", metavar="FILE")
    pfx.add_argument("--key-passphrase-env", metavar="VAR", required=True)
    pfx.add_argument("--passphrase-env", metavar="VAR", required=True)
    pfx.add_argument("--out", metavar="FILE", required=True)
    pfx.add_argument("--friendly-name", metavar="TEXT")
    pfx.add_argument(
        "--aes256", action="store_true", help="AES-256 encryption (Windows Server 2019+)"
    )
    pfx.set_defaults(func=_pfx)
