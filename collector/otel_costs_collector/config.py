"""The collector's one typed config: flag, then environment variable, then default.

``CollectorConfig.load(flags)`` resolves every field and converts it to the field's type
(a value that does not convert keeps its default and is reported); ``validate()`` checks
ranges and combinations and reports every problem, conversions included, at once (raising
:class:`ConfigError` with all of them), so a bad deployment is fixed in one round. A config
built directly takes typed values.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any, Callable, Mapping

from otel_costs_collector import config_values as values
from otel_costs_collector.storage.client import StorageTarget, parse_storage

__all__ = ["CollectorConfig", "ConfigError", "DEFAULTS", "HELD_COPIES", "SECRETS"]

DEFAULT_STORAGE = "./otel-costs-data"
DEFAULT_DATABASE = "otel_costs"
DEFAULT_HOST = "127.0.0.1"  # loopback unless told otherwise, like the OTel Collector
DEFAULT_GRPC_PORT = 4317
DEFAULT_HTTP_PORT = 4318
DEFAULT_BATCH_MIN_ROWS = 4_096  # flush at once when this many spans wait
DEFAULT_BATCH_MAX_AGE_MS = 500
DEFAULT_MAX_QUEUED_ROWS = 500_000
DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024
DEFAULT_RAW_TTL_DAYS = 90
DEFAULT_LOG_FORMAT = "json"
DEFAULT_MAX_SPOOL_BYTES = 1024 * 1024 * 1024
DEFAULT_BUDGET_INTERVAL_S = 5
DEFAULT_BUDGET_THRESHOLDS = (50, 75, 90, 100)  # percents of a budget that alert
DEFAULT_BUDGET_TIMEZONE = "UTC"
DEFAULT_BUDGET_WEBHOOK_FORMAT = "json"
#: Batches written at once, each by its own thread and storage connection: while one batch
#: is mapped and inserted, ClickHouse can work on the next (bench/collector_ingest.py).
DEFAULT_WRITERS = 2
#: Worker processes that map batches (0: in the collector's process). Mapping is pure
#: Python: in one process it holds the GIL, and a collector uses ~1.1 cores however many
#: writers it has (bench/collector_ingest.py).
DEFAULT_MAP_WORKERS = 2
#: How long a call without a user or tenant waits for an ancestor span that names them
#: (otel_costs_collector/mapping/calls.py): the freshness cost of attribution set on an outer span.
DEFAULT_ATTRIBUTION_WAIT_S = 60
#: Copies of a request's bytes the collector holds while it is in flight, at most: the body
#: as read, the batch file, and in a mapping worker its pickled and unpickled copy and the
#: parsed request, and what the allocator has not yet returned (bench/request_flood.py:
#: ~7 MiB resident per MiB of one-span requests in flight).
HELD_COPIES = 6
#: Memory for OTLP requests being received, queued or written (each counts
#: HELD_COPIES times its size); past it, requests are answered 503 /
#: UNAVAILABLE (bench/request_flood.py measures resident memory against it).
DEFAULT_MAX_INFLIGHT_BYTES = 512 * 1024 * 1024
#: Open connections on each port; past it, new ones are refused.
DEFAULT_MAX_CONNECTIONS = 1024
#: An HTTP request's headers (and an idle connection's next request), its body, and a TLS or
#: gRPC handshake must each arrive within this many seconds.
DEFAULT_CONNECTION_TIMEOUT_S = 30
#: /healthz answers 503 once a spooled batch has waited this long for storage (seconds).
DEFAULT_HEALTH_SPOOL_AGE_S = 300
#: Seconds between pulls of the providers' cost reports (when an admin key is set).
DEFAULT_RECONCILE_INTERVAL_S = 3600
#: The capture rates (tracked / billed) of a complete day that raise no alert.
DEFAULT_RECONCILE_BAND = (Decimal("0.97"), Decimal("1.03"))
#: Hours after a UTC day ends before its figures count as final at the providers.
DEFAULT_RECONCILE_SETTLE_H = 24
DEFAULT_OPENAI_API_BASE = "https://api.openai.com/v1"
DEFAULT_ANTHROPIC_API_BASE = "https://api.anthropic.com/v1"
#: Fields never written to a log (describe() masks them).
SECRETS = frozenset({"openai_admin_key", "anthropic_admin_key", "stripe_key"})
#: Seconds between pulls of Stripe's invoices (when a key is set).
DEFAULT_REVENUE_INTERVAL_S = 3600
DEFAULT_STRIPE_API_BASE = "https://api.stripe.com"
#: The customer metadata key that names a customer's tenant (else its id is the tenant).
DEFAULT_STRIPE_TENANT_KEY = "tenant_id"
#: Seconds between anomaly evaluations.
DEFAULT_ANOMALY_INTERVAL_S = 300
#: An anomaly rises at least this many USD above its baseline in its window …
DEFAULT_ANOMALY_MIN_USD = Decimal(5)
#: … and at least this share of the baseline (1 = twice the expected spend).
DEFAULT_ANOMALY_MIN_RATIO = Decimal(1)

#: field → (environment variable, default)
DEFAULTS: dict[str, tuple[str, Any]] = {
    "storage": ("OTEL_COSTS_STORAGE", DEFAULT_STORAGE),
    "database": ("OTEL_COSTS_DATABASE", None),
    "host": ("OTEL_COSTS_HOST", DEFAULT_HOST),
    "grpc_port": ("OTEL_COSTS_GRPC_PORT", DEFAULT_GRPC_PORT),
    "http_port": ("OTEL_COSTS_HTTP_PORT", DEFAULT_HTTP_PORT),
    "batch_min_rows": ("OTEL_COSTS_BATCH_MIN_ROWS", DEFAULT_BATCH_MIN_ROWS),
    "batch_max_age_ms": ("OTEL_COSTS_BATCH_MAX_AGE_MS", DEFAULT_BATCH_MAX_AGE_MS),
    "max_queued_rows": ("OTEL_COSTS_MAX_QUEUED_ROWS", DEFAULT_MAX_QUEUED_ROWS),
    "max_request_bytes": ("OTEL_COSTS_MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES),
    "max_inflight_bytes": ("OTEL_COSTS_MAX_INFLIGHT_BYTES", DEFAULT_MAX_INFLIGHT_BYTES),
    "max_connections": ("OTEL_COSTS_MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS),
    "connection_timeout_s": ("OTEL_COSTS_CONNECTION_TIMEOUT_S", DEFAULT_CONNECTION_TIMEOUT_S),
    "raw_ttl_days": ("OTEL_COSTS_RAW_TTL_DAYS", DEFAULT_RAW_TTL_DAYS),
    "cluster": ("OTEL_COSTS_CLUSTER", None),
    "prices_file": ("OTEL_COSTS_PRICES_FILE", None),
    "log_format": ("OTEL_COSTS_LOG_FORMAT", DEFAULT_LOG_FORMAT),
    "spool_dir": ("OTEL_COSTS_SPOOL_DIR", None),
    "dedup_window_s": ("OTEL_COSTS_DEDUP_WINDOW_S", 3600),
    "auth_tokens_file": ("OTEL_COSTS_AUTH_TOKENS_FILE", None),
    "tls_cert_file": ("OTEL_COSTS_TLS_CERT_FILE", None),
    "tls_key_file": ("OTEL_COSTS_TLS_KEY_FILE", None),
    "max_spool_bytes": ("OTEL_COSTS_MAX_SPOOL_BYTES", DEFAULT_MAX_SPOOL_BYTES),
    "budget_interval_s": ("OTEL_COSTS_BUDGET_INTERVAL_S", DEFAULT_BUDGET_INTERVAL_S),
    "budget_thresholds": ("OTEL_COSTS_BUDGET_THRESHOLDS", DEFAULT_BUDGET_THRESHOLDS),
    "budget_timezone": ("OTEL_COSTS_BUDGET_TIMEZONE", DEFAULT_BUDGET_TIMEZONE),
    "budget_webhook_url": ("OTEL_COSTS_BUDGET_WEBHOOK_URL", None),
    "budget_webhook_format": ("OTEL_COSTS_BUDGET_WEBHOOK_FORMAT", DEFAULT_BUDGET_WEBHOOK_FORMAT),
    "writers": ("OTEL_COSTS_WRITERS", DEFAULT_WRITERS),
    "map_workers": ("OTEL_COSTS_MAP_WORKERS", DEFAULT_MAP_WORKERS),
    "attribution_wait_s": ("OTEL_COSTS_ATTRIBUTION_WAIT_S", DEFAULT_ATTRIBUTION_WAIT_S),
    "health_spool_age_s": ("OTEL_COSTS_HEALTH_SPOOL_AGE_S", DEFAULT_HEALTH_SPOOL_AGE_S),
    # Reconciliation with the providers' cost reports (otel_costs_collector/reconcile).
    "openai_admin_key": ("OTEL_COSTS_OPENAI_ADMIN_KEY", None),
    "anthropic_admin_key": ("OTEL_COSTS_ANTHROPIC_ADMIN_KEY", None),
    "openai_api_base": ("OTEL_COSTS_OPENAI_API_BASE", DEFAULT_OPENAI_API_BASE),
    "anthropic_api_base": ("OTEL_COSTS_ANTHROPIC_API_BASE", DEFAULT_ANTHROPIC_API_BASE),
    "reconcile_interval_s": ("OTEL_COSTS_RECONCILE_INTERVAL_S", DEFAULT_RECONCILE_INTERVAL_S),
    "reconcile_band": ("OTEL_COSTS_RECONCILE_BAND", DEFAULT_RECONCILE_BAND),
    "reconcile_settle_h": ("OTEL_COSTS_RECONCILE_SETTLE_H", DEFAULT_RECONCILE_SETTLE_H),
    "openai_projects": ("OTEL_COSTS_OPENAI_PROJECTS", None),
    # Revenue (otel_costs_collector/revenue): Stripe, and exchange rates for margins.
    "stripe_key": ("OTEL_COSTS_STRIPE_KEY", None),
    "stripe_api_base": ("OTEL_COSTS_STRIPE_API_BASE", DEFAULT_STRIPE_API_BASE),
    "stripe_tenant_key": ("OTEL_COSTS_STRIPE_TENANT_KEY", DEFAULT_STRIPE_TENANT_KEY),
    "revenue_interval_s": ("OTEL_COSTS_REVENUE_INTERVAL_S", DEFAULT_REVENUE_INTERVAL_S),
    "fx_rates_file": ("OTEL_COSTS_FX_RATES_FILE", None),
    # Anomalies (otel_costs_collector/anomalies).
    "anomaly_interval_s": ("OTEL_COSTS_ANOMALY_INTERVAL_S", DEFAULT_ANOMALY_INTERVAL_S),
    "anomaly_min_usd": ("OTEL_COSTS_ANOMALY_MIN_USD", DEFAULT_ANOMALY_MIN_USD),
    "anomaly_min_ratio": ("OTEL_COSTS_ANOMALY_MIN_RATIO", DEFAULT_ANOMALY_MIN_RATIO),
    # Reading commands (report, budget): a running collector's API, and the CA to verify it.
    "url": ("OTEL_COSTS_URL", None),
    "ca_file": ("OTEL_COSTS_CA_FILE", None),
}
#: Integer fields and their ranges (inclusive).
_INTS = {
    "grpc_port": (0, 65535),
    "http_port": (0, 65535),
    "batch_min_rows": (1, 10_000_000),
    "batch_max_age_ms": (10, 60_000),
    "max_queued_rows": (1, 100_000_000),
    "max_request_bytes": (1024, 1 << 30),
    "raw_ttl_days": (1, 36_500),
    "max_spool_bytes": (1 << 20, 1 << 50),
    "dedup_window_s": (0, 7 * 86400),
    "budget_interval_s": (1, 3600),
    "writers": (1, 16),
    "map_workers": (0, 64),
    "attribution_wait_s": (0, 3600),
    "health_spool_age_s": (1, 7 * 86400),
    "max_inflight_bytes": (1 << 20, 1 << 40),
    "max_connections": (1, 1_000_000),
    "connection_timeout_s": (1, 3600),
    "reconcile_interval_s": (1, 7 * 86400),
    "reconcile_settle_h": (0, 30 * 24),
    "revenue_interval_s": (1, 7 * 86400),
    "anomaly_interval_s": (1, 86400),
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class ConfigError(ValueError):
    """Invalid configuration; ``problems`` lists every one."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid collector configuration:\n  " + "\n  ".join(problems))


@dataclass
class CollectorConfig:
    storage: str = DEFAULT_STORAGE
    database: str | None = None  # None: from the storage URL, else "otel_costs"
    host: str = DEFAULT_HOST
    grpc_port: int = DEFAULT_GRPC_PORT  # 0 picks a free port (tests)
    http_port: int = DEFAULT_HTTP_PORT
    batch_min_rows: int = DEFAULT_BATCH_MIN_ROWS
    batch_max_age_ms: int = DEFAULT_BATCH_MAX_AGE_MS
    max_queued_rows: int = DEFAULT_MAX_QUEUED_ROWS
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_inflight_bytes: int = DEFAULT_MAX_INFLIGHT_BYTES  # request bytes held at once (memory)
    max_connections: int = DEFAULT_MAX_CONNECTIONS  # per port
    connection_timeout_s: int = DEFAULT_CONNECTION_TIMEOUT_S  # headers, body, handshake, idle
    raw_ttl_days: int = DEFAULT_RAW_TTL_DAYS
    cluster: str | None = None
    prices_file: str | None = None
    log_format: str = DEFAULT_LOG_FORMAT
    spool_dir: str | None = None  # None: beside embedded data, else ./otel-costs-spool
    max_spool_bytes: int = DEFAULT_MAX_SPOOL_BYTES
    dedup_window_s: int = 3600  # how long a stored request is recognised when retried
    auth_tokens_file: str | None = None  # None: no auth
    tls_cert_file: str | None = None  # with tls_key_file: TLS on both ports
    tls_key_file: str | None = None
    budget_interval_s: int = DEFAULT_BUDGET_INTERVAL_S  # seconds between budget evaluations
    budget_thresholds: tuple[int, ...] = DEFAULT_BUDGET_THRESHOLDS  # percents (load: comma-separated)
    budget_timezone: str = DEFAULT_BUDGET_TIMEZONE  # the calendar of budgets that name none
    budget_webhook_url: str | None = None  # None: alerts go to the log only
    budget_webhook_format: str = DEFAULT_BUDGET_WEBHOOK_FORMAT  # "json" or "slack"
    writers: int = DEFAULT_WRITERS  # batches written concurrently
    map_workers: int = DEFAULT_MAP_WORKERS  # processes mapping batches; 0: in this process
    attribution_wait_s: int = DEFAULT_ATTRIBUTION_WAIT_S  # seconds a call waits for an attributed ancestor
    health_spool_age_s: int = DEFAULT_HEALTH_SPOOL_AGE_S  # /healthz 503 past this spool age
    # None: that provider's cost report is not pulled. Never in a repr or a log.
    openai_admin_key: str | None = field(default=None, repr=False)
    anthropic_admin_key: str | None = field(default=None, repr=False)
    openai_api_base: str = DEFAULT_OPENAI_API_BASE  # with or without /v1
    anthropic_api_base: str = DEFAULT_ANTHROPIC_API_BASE
    reconcile_interval_s: int = DEFAULT_RECONCILE_INTERVAL_S
    reconcile_band: tuple[Decimal, Decimal] = DEFAULT_RECONCILE_BAND  # (low, high) (load: "low,high")
    reconcile_settle_h: int = DEFAULT_RECONCILE_SETTLE_H
    # OpenAI project id → ("service" or "tenant", name) (load: "proj_1=service:chat-api,…")
    openai_projects: dict[str, tuple[str, str]] | None = None
    stripe_key: str | None = field(default=None, repr=False)  # restricted key; None: no Stripe pull
    stripe_api_base: str = DEFAULT_STRIPE_API_BASE
    stripe_tenant_key: str = DEFAULT_STRIPE_TENANT_KEY
    revenue_interval_s: int = DEFAULT_REVENUE_INTERVAL_S
    fx_rates_file: str | None = None  # USD per unit of each currency, for margins
    anomaly_interval_s: int = DEFAULT_ANOMALY_INTERVAL_S
    anomaly_min_usd: Decimal = DEFAULT_ANOMALY_MIN_USD  # an anomaly rises at least this much …
    anomaly_min_ratio: Decimal = DEFAULT_ANOMALY_MIN_RATIO  # … and this share of its baseline
    url: str | None = None  # reading commands: a running collector's HTTP API
    ca_file: str | None = None  # reading commands: CA bundle (PEM) for that API's TLS
    #: The fields given as a flag or an environment variable (the rest are defaults).
    explicit: frozenset[str] = field(default_factory=frozenset, repr=False)
    #: What :meth:`load` could not convert (those fields keep their defaults); validate() reports it.
    unconverted: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def load(cls, flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> "CollectorConfig":
        """Resolve each field — a non-None flag, else the env variable, else the default —
        and convert it to the field's type. Never raises: call :meth:`validate`, which reports
        what did not convert with every other problem."""
        flags = flags or {}
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        explicit = set()
        unconverted = []
        for name, (var, default) in DEFAULTS.items():
            if flags.get(name) is not None:
                raw = flags[name]
            elif env.get(var, "").strip():
                raw = env[var].strip()
            else:
                values[name] = default
                continue
            explicit.add(name)
            try:
                values[name] = _CONVERT.get(name, str)(raw)
            except ValueError as exc:
                unconverted.append(f"{name} ({var}): {exc}")
                values[name] = default
        return cls(**values, explicit=frozenset(explicit), unconverted=tuple(unconverted))

    @property
    def db(self) -> str:
        """The database name, resolved by :meth:`validate`. Raises RuntimeError before it."""
        if self.database is None:
            raise RuntimeError("CollectorConfig.validate() resolves the database; call it first")
        return self.database

    def validate(self) -> "CollectorConfig":
        """Check and normalise every field; raises ConfigError listing all problems."""
        problems: list[str] = list(self.unconverted)
        for name, (low, high) in _INTS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                problems.append(f"{name} ({DEFAULTS[name][0]}): {value!r} is not an integer")
            elif not low <= value <= high:
                problems.append(f"{name} ({DEFAULTS[name][0]}): {value} is outside {low}..{high}")
        if (
            isinstance(self.max_inflight_bytes, int)
            and isinstance(self.max_request_bytes, int)
            and self.max_inflight_bytes < self.max_request_bytes * HELD_COPIES
        ):
            problems.append(
                f"max_inflight_bytes (OTEL_COSTS_MAX_INFLIGHT_BYTES): {self.max_inflight_bytes} is below "
                f"{HELD_COPIES} × max_request_bytes ({self.max_request_bytes}), the memory one "
                "request of the largest size holds"
            )
        if isinstance(self.grpc_port, int) and self.grpc_port and self.grpc_port == self.http_port:
            problems.append(f"grpc_port and http_port are both {self.grpc_port}")
        try:
            target = parse_storage(str(self.storage))
        except ValueError as exc:
            problems.append(f"storage (OTEL_COSTS_STORAGE): {exc}")
            target = None
        if self.spool_dir is None and target is not None:
            self.spool_dir = (
                (target.location + "-spool") if target.kind == "chdb" else os.path.abspath("otel-costs-spool")
            )
        if self.database is None:
            self.database = (target.database if target else None) or DEFAULT_DATABASE
        if not _NAME.match(str(self.database)):
            problems.append(f"database (OTEL_COSTS_DATABASE): {self.database!r} is not a valid name")
        if self.cluster is not None and not _NAME.match(str(self.cluster)):
            problems.append(f"cluster (OTEL_COSTS_CLUSTER): {self.cluster!r} is not a valid name")
        if self.cluster and target is not None and target.kind == "chdb":
            problems.append("cluster is set but storage is embedded chDB; a cluster needs a ClickHouse server URL")
        if self.log_format not in ("json", "text"):
            problems.append(f"log_format (OTEL_COSTS_LOG_FORMAT): {self.log_format!r} is not 'json' or 'text'")
        if self.prices_file is not None and not os.path.isfile(str(self.prices_file)):
            problems.append(f"prices_file (OTEL_COSTS_PRICES_FILE): {self.prices_file} does not exist")
        for name in ("auth_tokens_file", "tls_cert_file", "tls_key_file"):
            value = getattr(self, name)
            if value is not None and not os.path.isfile(str(value)):
                problems.append(f"{name} ({DEFAULTS[name][0]}): {value} does not exist")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            problems.append("tls_cert_file and tls_key_file go together")
        self._validate_budgets(problems)
        self._validate_reconcile(problems)
        if self.url is not None:
            self.url = str(self.url).strip().rstrip("/")
            if not re.match(r"^https?://[^/?#]+", self.url):
                problems.append(
                    f"url (OTEL_COSTS_URL): {self.url!r} is not an http:// or https:// URL (like http://127.0.0.1:4318)"
                )
        if self.ca_file is not None and not os.path.isfile(str(self.ca_file)):
            problems.append(f"ca_file (OTEL_COSTS_CA_FILE): {self.ca_file} does not exist")
        if not str(self.host).strip():
            problems.append("host (OTEL_COSTS_HOST) must not be empty")
        if problems:
            raise ConfigError(problems)
        return self

    def _validate_budgets(self, problems: list[str]) -> None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        from otel_costs_collector.budgets.model import parse_thresholds

        found: list[str] = []
        self.budget_thresholds = parse_thresholds(list(self.budget_thresholds), found)
        problems.extend(f"budget_thresholds (OTEL_COSTS_BUDGET_THRESHOLDS): {p.split(': ', 1)[-1]}" for p in found)
        try:
            ZoneInfo(str(self.budget_timezone))
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"budget_timezone (OTEL_COSTS_BUDGET_TIMEZONE): unknown time zone {self.budget_timezone!r}")
        if self.budget_webhook_url is not None and not str(self.budget_webhook_url).startswith(("http://", "https://")):
            problems.append("budget_webhook_url (OTEL_COSTS_BUDGET_WEBHOOK_URL): must be an http:// or https:// URL")
        if self.budget_webhook_format not in ("json", "slack"):
            problems.append(
                f"budget_webhook_format (OTEL_COSTS_BUDGET_WEBHOOK_FORMAT): "
                f"{self.budget_webhook_format!r} is not 'json' or 'slack'"
            )

    def _validate_reconcile(self, problems: list[str]) -> None:
        if self.openai_projects is not None:
            try:
                self.openai_projects = values.projects(self.openai_projects)
            except ValueError as exc:
                problems.append(f"openai_projects (OTEL_COSTS_OPENAI_PROJECTS): {exc}")
                self.openai_projects = None
        for name in SECRETS:
            value = getattr(self, name)
            if value is not None and (not str(value).strip() or any(c.isspace() for c in str(value).strip())):
                problems.append(f"{name} ({DEFAULTS[name][0]}): not a key (empty, or with spaces inside)")
            elif value is not None:
                setattr(self, name, str(value).strip())
        for name in ("anomaly_min_usd", "anomaly_min_ratio"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
                problems.append(f"{name} ({DEFAULTS[name][0]}): {value!r} is not a number of at least 0")
        base = str(self.stripe_api_base).strip().rstrip("/")
        if not re.match(r"^https?://[^/?#]+$", base):
            problems.append(f"stripe_api_base (OTEL_COSTS_STRIPE_API_BASE): {base!r} is not an http:// or https:// URL")
        self.stripe_api_base = base
        if not str(self.stripe_tenant_key).strip() or len(str(self.stripe_tenant_key)) > 40:
            problems.append("stripe_tenant_key (OTEL_COSTS_STRIPE_TENANT_KEY): a metadata key of 1 to 40 characters")
        if self.fx_rates_file is not None:
            try:
                self.fx_rates()
            except (OSError, ValueError) as exc:
                problems.append(f"fx_rates_file (OTEL_COSTS_FX_RATES_FILE): {exc}")
        for name in ("openai_api_base", "anthropic_api_base"):
            base = str(getattr(self, name)).strip().rstrip("/")
            if not re.match(r"^https?://[^/?#]+", base):
                problems.append(f"{name} ({DEFAULTS[name][0]}): {base!r} is not an http:// or https:// URL")
            # the providers' SDKs leave /v1 out of their base URLs; the APIs live under it
            setattr(self, name, base if base.endswith("/v1") else base + "/v1")
        band = self.reconcile_band
        if (
            len(band) != 2
            or not all(isinstance(x, Decimal) and x.is_finite() for x in band)
            or not 0 < band[0] < band[1]
        ):
            problems.append(
                f"reconcile_band (OTEL_COSTS_RECONCILE_BAND): {values.shown_band(band)} is not two rates like "
                "0.97,1.03 (low < high)"
            )

    def reconcile_keys(self) -> dict[str, str]:
        """provider → admin key, for the providers whose cost reports are pulled."""
        keys = {"openai": self.openai_admin_key, "anthropic": self.anthropic_admin_key}
        return {p: str(k) for p, k in keys.items() if k}

    def fx_rates(self) -> dict[str, Decimal]:
        """The exchange rates of ``fx_rates_file`` (USD per unit), {} without one. Raises
        OSError, or ValueError (otel_costs_collector.revenue.margin.MarginError) for bad rates."""
        if self.fx_rates_file is None:
            return {}
        from otel_costs_collector.revenue.margin import read_rates

        with open(str(self.fx_rates_file), encoding="utf-8") as f:
            return read_rates(f.read(1 << 20))

    def reconcile_bases(self) -> dict[str, str]:
        return {"openai": str(self.openai_api_base), "anthropic": str(self.anthropic_api_base)}

    @property
    def target(self) -> StorageTarget:
        return parse_storage(str(self.storage))

    def describe(self) -> dict[str, Any]:
        """For the start-up log: storage without credentials."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "explicit"}
        out["storage"] = self.target.describe()
        for name in SECRETS:
            out[name] = "(set)" if out[name] else None
        out["reconcile_band"] = values.shown_band(self.reconcile_band)
        return out


#: How :meth:`CollectorConfig.load` converts a flag's or variable's value (str otherwise).
_CONVERT: dict[str, Callable[[Any], Any]] = {
    **{name: values.integer for name in _INTS},
    "budget_thresholds": values.percents,
    "reconcile_band": values.band,
    "openai_projects": values.projects,
    "anomaly_min_usd": values.decimal,
    "anomaly_min_ratio": values.decimal,
}
