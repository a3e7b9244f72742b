"""Optional bearer-token auth, each token bound to a tenant (or admin).

Tokens come from a TOML file (``--auth-tokens-file`` / ``OTEL_COSTS_AUTH_TOKENS_FILE``)::

    [[token]]
    token = "a-long-random-secret"   # at least 16 characters
    tenant = "acme"                  # spans written with it are stored under acme,
                                     # whatever they claim; queries see only acme
    [[token]]
    token = "another-secret"
    admin = true                     # writes spans as they are, queries see every tenant

Tokens are looked up by their SHA-256 and compared with ``hmac.compare_digest``; they are
never logged. gRPC reads the ``authorization`` metadata, HTTP the ``Authorization``
header, both as ``Bearer <token>``.
"""

from __future__ import annotations

import hashlib
import hmac
import tomllib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Principal", "TokenAuth", "AuthError", "ADMIN"]

_MIN_TOKEN = 16


class AuthError(ValueError):
    """The tokens file is invalid; the message lists every problem (never a token), and
    ``problems`` holds them one a line, each naming the file."""

    def __init__(self, path: str, problems: list[str]):
        self.problems = [f"{path}: {p}" for p in problems]
        super().__init__(f"{path}: invalid auth tokens:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class Principal:
    tenant: str | None  # None: admin, sees and writes every tenant

    @property
    def admin(self) -> bool:
        return self.tenant is None


ADMIN = Principal(None)


class TokenAuth:
    def __init__(self, principals: dict[bytes, Principal]):
        self._by_digest = principals

    @classmethod
    def load(cls, path: str) -> "TokenAuth":
        try:
            doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise AuthError(path, [f"cannot read auth tokens: {_reason(exc)}"]) from None
        problems: list[str] = []
        principals: dict[bytes, Principal] = {}
        entries = doc.get("token")
        if not isinstance(entries, list) or not entries:
            problems.append("expected one or more [[token]] tables")
            entries = []
        for i, entry in enumerate(entries, 1):
            where = f"[[token]] #{i}"
            if not isinstance(entry, dict):
                problems.append(f"{where}: must be a table")
                continue
            unknown = set(entry) - {"token", "tenant", "admin"}
            if unknown:
                problems.append(f"{where}: unknown keys {sorted(unknown)}")
            token = entry.get("token")
            if not isinstance(token, str) or len(token) < _MIN_TOKEN or not token.isprintable() or " " in token:
                problems.append(
                    f"{where}: token must be a printable string of at least {_MIN_TOKEN} characters, no spaces"
                )
                continue
            admin, tenant = entry.get("admin", False), entry.get("tenant")
            if admin is True and tenant is None:
                principal = ADMIN
            elif admin is False and isinstance(tenant, str) and tenant.strip() and len(tenant) <= 256:
                principal = Principal(tenant.strip())
            else:
                problems.append(f'{where}: give either tenant = "…" or admin = true')
                continue
            digest = hashlib.sha256(token.encode()).digest()
            if digest in principals:
                problems.append(f"{where}: the same token appears twice")
            principals[digest] = principal
        if problems:
            raise AuthError(path, problems)
        return cls(principals)

    def check(self, authorization: str | None) -> Principal | None:
        """The principal for an ``Authorization`` value, or None if missing or wrong."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        digest = hashlib.sha256(authorization[7:].strip().encode()).digest()
        for known, principal in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                return principal
        return None


def admin_refusal(auth: TokenAuth | None, authorization: str | None, what: str) -> tuple[int, str] | None:
    """Why a request for the operator's data (the bill, revenue) is refused — (401, …) without a
    known token, (403, "<what> needs an admin token") with a tenant's — or None when allowed
    (no auth, or an admin token)."""
    if auth is None:
        return None
    principal = auth.check(authorization)
    if principal is None:
        return 401, "missing or unknown bearer token"
    if not principal.admin:
        return 403, f"{what} needs an admin token"
    return None


def _reason(exc: Exception) -> str:
    # Never the file's text: a TOML error quotes the line, which may hold a token.
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return type(exc).__name__
