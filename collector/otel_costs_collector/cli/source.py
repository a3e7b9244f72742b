"""Where a reading command (``report``, ``budget …``) finds the data — without creating any.

In order:

1. ``--url`` / ``OTEL_COSTS_URL``: a running collector's HTTP API (any host; TLS verified
   with ``--ca-file`` / ``OTEL_COSTS_CA_FILE`` when given; ``OTEL_COSTS_TOKEN`` is sent).
2. ``--storage`` / ``OTEL_COSTS_STORAGE`` when it holds otel-costs data: embedded data
   through the collector that holds it (chDB allows one process per path), else opened
   here; a ClickHouse server directly.
3. With neither given: ``./otel-costs-data`` when it holds data (as in 2), else a collector
   answering on ``http://127.0.0.1:<OTEL_COSTS_HTTP_PORT or 4318>``.

Otherwise :class:`NoData`, whose one-line message says what was looked for and how to point
the command at the data. Nothing here creates a directory, a database or a table.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, TypeVar

from otel_costs_collector.cli.api_client import ApiError, call_api
from otel_costs_collector.storage.client import StorageTarget, open_client, owner_note

__all__ = ["Api", "Direct", "NoData", "Unavailable", "locate", "probe_collector", "POINT_AT_DATA"]

#: The end of every "no data here" message: how to point a command at the data.
POINT_AT_DATA = (
    "point the command at the data with --url http://HOST:4318 (OTEL_COSTS_URL) for a running "
    "collector, or --storage DIR|http://…:8123 (OTEL_COSTS_STORAGE)"
)
#: How long the probe of a local collector waits (s): it answers in milliseconds when there.
PROBE_TIMEOUT_S = 1.5
T = TypeVar("T")
#: Databases every ClickHouse has, never otel-costs data.
_SYSTEM_DATABASES = frozenset({"system", "default", "information_schema", "INFORMATION_SCHEMA"})


class NoData(Exception):
    """Nothing to read where the command looked; the message is one line for the user."""


class Unavailable(Exception):
    """The collector or storage could not do it; the message says which and why.
    ``status``: the collector's HTTP status, when it answered."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Api:
    """A running collector's HTTP API."""

    url: str
    cafile: str | None = None

    def call(self, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        """JSON in, JSON out; ``timeout`` in seconds. Raises Unavailable."""
        try:
            return call_api(self.url, method, path, body, cafile=self.cafile, timeout=timeout)
        except ApiError as exc:
            raise Unavailable(str(exc), exc.status) from None

    def download(self, path: str, into: Any) -> None:
        """GET ``path`` into a binary file, in chunks. Raises Unavailable."""
        try:
            call_api(self.url, "GET", path, cafile=self.cafile, timeout=3600, into=into)
        except ApiError as exc:
            raise Unavailable(str(exc), exc.status) from None


@dataclass(frozen=True)
class Direct:
    """Storage opened by this process: embedded data no collector holds, or a server."""

    target: StorageTarget
    database: str

    def run(self, action: Callable[[Any], T]) -> T:
        """``action(client)`` on storage whose schema is complete. Raises NoData when the
        database has no otel-costs schema or an older one, Unavailable for any other failure."""
        try:
            with self._client() as client:
                return action(client)
        except NoData:
            raise
        except Exception as exc:
            raise Unavailable(f"storage {self.target.describe()} failed: {exc}") from None

    @contextmanager
    def _client(self) -> Iterator[Any]:
        from otel_costs_collector.storage.schema import missing_migrations

        client = open_client(self.target)
        try:
            missing = missing_migrations(client, self.database)
            if missing is None:
                raise NoData(
                    f"{self.target.describe()} has no otel-costs database {self.database!r}{_other_databases(client)}"
                )
            if missing:
                raise NoData(
                    f"the otel-costs schema in {self.target.describe()} is older than this version "
                    f"(missing {', '.join(missing)}): run `otel-costs migrate --storage …` or start the "
                    f"collector once"
                )
            yield client
        finally:
            client.close()


def locate(
    *, url: str | None, ca_file: str | None, target: StorageTarget, database: str, storage_given: bool, http_port: int
) -> Api | Direct:
    """Where to read (see the module docstring). Raises NoData; never creates anything.
    May wait up to :data:`PROBE_TIMEOUT_S` for a local collector."""
    if url:
        return Api(url.rstrip("/"), ca_file)
    if target.kind == "http":
        return Direct(target, database)
    note = owner_note(target.location)
    if note is not None:
        return Api(str(note["url"]), note.get("cafile") or ca_file)
    problem = _embedded_problem(target.location)
    if problem is None:
        return Direct(target, database)
    if storage_given:
        raise NoData(f"--storage {target.location} {problem}: nothing to read; {POINT_AT_DATA}")
    local = f"http://127.0.0.1:{http_port}"
    if probe_collector(local):
        return Api(local, ca_file)
    raise NoData(
        f"no otel-costs data found: no collector answers on {local} and {target.location} {problem}; {POINT_AT_DATA}"
    )


def probe_collector(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when an otel-costs collector answers ``GET /healthz`` at ``url``."""
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=timeout) as response:
            body = response.read(4096)
    except urllib.error.HTTPError as exc:  # 503: there, but storage is down; its API still answers
        body = exc.read(4096)
    except OSError:
        return False
    try:
        return json.loads(body).get("service") == "otel-costs"
    except (ValueError, AttributeError):
        return False


def _embedded_problem(path: str) -> str | None:
    """Why ``path`` is not an embedded data directory to open, or None when it is one.
    Reads the directory only: ClickHouse keeps ``metadata/`` in every data directory."""
    if not os.path.exists(path):
        return "does not exist"
    if not os.path.isdir(os.path.join(path, "metadata")):
        return "is not an otel-costs data directory"
    return None


def _other_databases(client: Any) -> str:
    try:
        names = [str(r[0]) for r in client.query("SELECT name FROM system.databases ORDER BY name").result_rows]
    except Exception:  # only a hint
        return ""
    names = [n for n in names if n not in _SYSTEM_DATABASES]
    return f" (it has {', '.join(names)}: choose one with --database)" if names else ""
