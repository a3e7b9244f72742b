"""Where the data lives: one clickhouse-connect client for embedded chDB and servers.

``--storage`` forms:

* ``./otel-costs-data`` or ``chdb:///abs/path``: ClickHouse's engine in this process
  (chDB). One process holds a data path at a time: while the collector runs, others read
  through its query API.
* ``http(s)://user:password@host:8123/database``: a ClickHouse server or cluster.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["StorageTarget", "parse_storage", "open_client", "write_owner", "clear_owner", "running_owner"]

# While a collector holds an embedded data directory it leaves this note in it, so that
# `otel-costs report` knows to ask its query API instead of opening the engine.
_OWNER_FILE = ".otel-costs-collector.json"

_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True)
class StorageTarget:
    kind: str  # "chdb" or "http"
    location: str  # absolute data path (chdb) or the DSN without the database (http)
    database: str | None  # named in the DSN, if any

    def describe(self) -> str:
        """For logs: never includes a password."""
        if self.kind == "chdb":
            return f"chdb:{self.location}"
        parts = urlsplit(self.location)
        return f"{parts.scheme}://{parts.hostname}:{parts.port or ''}"


def parse_storage(value: str) -> StorageTarget:
    """Parse a --storage value. Raises ValueError with the reason."""
    value = value.strip()
    if not value:
        raise ValueError("storage must not be empty")
    if value.startswith(("http://", "https://")):
        parts = urlsplit(value)
        if not parts.hostname:
            raise ValueError(f"storage URL has no host: {value.split('@')[-1]}")
        database = parts.path.strip("/") or None
        if database is not None and not _DB_NAME.match(database):
            raise ValueError(f"storage URL database {database!r} is not a valid name")
        return StorageTarget("http", parts._replace(path="").geturl(), database)
    if "://" in value and not value.startswith("chdb://"):
        raise ValueError(f"storage must be a path, chdb:///path or http(s)://…, got scheme {value.split('://')[0]!r}")
    path = value[len("chdb://") :] if value.startswith("chdb://") else value
    if path in ("", "memory"):
        raise ValueError("in-memory chDB loses every span on restart; give a data directory")
    return StorageTarget("chdb", os.path.abspath(path), None)


def open_client(target: StorageTarget):
    """A clickhouse-connect client for ``target``. Raises on connection failure."""
    import clickhouse_connect

    if target.kind == "chdb":
        os.makedirs(target.location, exist_ok=True)
        return clickhouse_connect.get_client(interface="chdb", path=target.location)
    return clickhouse_connect.get_client(dsn=target.location)


def write_owner(path: str, host: str, http_port: int, cafile: str | None = None) -> None:
    connect = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    scheme = "https" if cafile else "http"
    with open(os.path.join(path, _OWNER_FILE), "w", encoding="utf-8") as f:
        json.dump({"pid": os.getpid(), "url": f"{scheme}://{connect}:{http_port}", "cafile": cafile}, f)


def clear_owner(path: str) -> None:
    try:
        os.remove(os.path.join(path, _OWNER_FILE))
    except FileNotFoundError:
        pass


def running_owner(path: str) -> str | None:
    """The query URL of a live collector holding ``path``, or None."""
    note = owner_note(path)
    return None if note is None else str(note["url"])


def owner_note(path: str) -> dict | None:
    """The note of a live collector holding ``path`` (pid, url, cafile), or None."""
    try:
        with open(os.path.join(path, _OWNER_FILE), encoding="utf-8") as f:
            note = json.load(f)
        os.kill(int(note["pid"]), 0)  # raises if that process is gone
        return note
    except (OSError, ValueError, KeyError, TypeError):
        return None
