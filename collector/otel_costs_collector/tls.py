"""TLS on both ports from the configured PEM files (``tls_cert_file`` / ``tls_key_file``)."""

from __future__ import annotations

import ssl

from otel_costs_collector.config import CollectorConfig

__all__ = ["tls_pems", "ssl_context"]


def tls_pems(cfg: CollectorConfig) -> tuple[bytes, bytes] | None:
    """(certificate chain, private key) as PEM bytes for gRPC; None without TLS.
    Raises OSError for a file that cannot be read."""
    if not cfg.tls_cert_file:
        return None
    with open(str(cfg.tls_cert_file), "rb") as cert, open(str(cfg.tls_key_file), "rb") as key:
        return cert.read(), key.read()


def ssl_context(cfg: CollectorConfig) -> ssl.SSLContext | None:
    """The HTTP port's server-side context; None without TLS. Raises ssl.SSLError for a bad
    certificate or key."""
    if not cfg.tls_cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cfg.tls_cert_file), str(cfg.tls_key_file))
    return context
