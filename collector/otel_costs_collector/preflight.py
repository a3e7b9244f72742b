"""What can stop a collector from starting, checked before it changes anything.

A data directory another collector holds, a port in use, TLS files that do not load, a bad
tokens file: each is one line of :class:`StartupError`, found before a directory is made, a
migration runs or a port is bound, so a failed start leaves nothing behind.
"""

from __future__ import annotations

import errno
import socket
import ssl
from typing import TYPE_CHECKING

from otel_costs_collector.auth import AuthError, TokenAuth
from otel_costs_collector.storage.client import owner_note

if TYPE_CHECKING:
    from otel_costs_collector.config import CollectorConfig

__all__ = ["StartupError", "check_startup"]


class StartupError(Exception):
    """The collector cannot start; ``problems`` are one line each, for people."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


def check_startup(cfg: "CollectorConfig") -> TokenAuth | None:
    """Check everything that would stop ``cfg`` from serving; return its loaded tokens (None
    without auth). Raises StartupError listing every problem. Only reads and test-binds."""
    problems: list[str] = []
    target = cfg.target
    if target.kind == "chdb":
        note = owner_note(target.location)
        if note is not None:
            problems.append(
                f"{target.location} is held by a running collector (pid {note.get('pid')}, "
                f"{note.get('url')}): stop it first, or read through it with --url {note.get('url')}"
            )
    for name, port in (("grpc", cfg.grpc_port), ("http", cfg.http_port)):
        problem = _port_problem(str(cfg.host), int(port))
        if problem:
            problems.append(f"{name} port {cfg.host}:{port} {problem}: choose another with --{name}-port")
    if cfg.tls_cert_file:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                str(cfg.tls_cert_file), str(cfg.tls_key_file)
            )
        except (OSError, ssl.SSLError) as exc:
            problems.append(
                f"TLS certificate {cfg.tls_cert_file} with key {cfg.tls_key_file} cannot be loaded: "
                f"{getattr(exc, 'strerror', None) or exc}"
            )
    auth = None
    if cfg.auth_tokens_file:
        try:
            auth = TokenAuth.load(str(cfg.auth_tokens_file))
        except AuthError as exc:
            problems.extend(exc.problems)
    if problems:
        raise StartupError(problems)
    return auth


def _port_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on, or None. Port 0 (any free port) is fine."""
    if port == 0:
        return None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot be resolved ({exc.strerror})"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # As the servers bind: SO_REUSEADDR, so a port in TIME_WAIT from a restart is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
    return None
