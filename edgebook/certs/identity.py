"""A certificate's identity as Exchange shows it, for any holder of an X.509 `cert`."""

from __future__ import annotations

from cryptography import x509

from edgebook.certs.names import issuer_name, subject_name, thumbprint, tls_certificate_name


class CertificateIdentity:
    """Thumbprint, subject, issuer and TlsCertificateName of `self.cert`, the Windows way."""

    cert: x509.Certificate

    @property
    def thumbprint(self) -> str:
        """SHA-1 thumbprint, upper-case hex, as Exchange shows it."""
        return thumbprint(self.cert)

    @property
    def subject(self) -> str:
        """The subject as Windows renders X509Certificate2.Subject."""
        return subject_name(self.cert)

    @property
    def issuer(self) -> str:
        """The issuer as Windows renders X509Certificate2.Issuer."""
        return issuer_name(self.cert)

    @property
    def tls_name(self) -> str:
        """`<I>issuer<S>subject`, as a TlsCertificateName names this certificate."""
        return tls_certificate_name(self.cert)
