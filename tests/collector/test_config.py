"""CollectorConfig: flag, then env, then default; validate() reports every problem."""

from __future__ import annotations

import dataclasses
import typing
from decimal import Decimal

import pytest

from otel_costs_collector.config import DEFAULT_GRPC_PORT, CollectorConfig, ConfigError


def test_defaults():
    cfg = CollectorConfig.load({}, env={}).validate()
    assert (cfg.grpc_port, cfg.http_port, cfg.database, cfg.host) == (
        DEFAULT_GRPC_PORT,
        4318,
        "otel_costs",
        "127.0.0.1",
    )
    assert cfg.target.kind == "chdb" and cfg.target.location.endswith("otel-costs-data")


def test_flag_beats_env_beats_default():
    env = {"OTEL_COSTS_GRPC_PORT": "5317", "OTEL_COSTS_HTTP_PORT": "5318", "OTEL_COSTS_STORAGE": "http://ch:8123/costs"}
    cfg = CollectorConfig.load({"grpc_port": 6317, "http_port": None}, env=env).validate()
    assert (cfg.grpc_port, cfg.http_port) == (6317, 5318)
    assert cfg.database == "costs"  # from the storage URL
    cfg = CollectorConfig.load({"database": "other"}, env=env).validate()
    assert cfg.database == "other"


def test_validate_reports_every_problem_at_once():
    env = {
        "OTEL_COSTS_GRPC_PORT": "eighty",
        "OTEL_COSTS_HTTP_PORT": "70000",
        "OTEL_COSTS_STORAGE": "ftp://x",
        "OTEL_COSTS_DATABASE": "bad-name",
        "OTEL_COSTS_BATCH_MAX_AGE_MS": "0",
        "OTEL_COSTS_LOG_FORMAT": "xml",
        "OTEL_COSTS_PRICES_FILE": "/nonexistent.toml",
        "OTEL_COSTS_RAW_TTL_DAYS": "1.5",
    }
    with pytest.raises(ConfigError) as err:
        CollectorConfig.load({}, env=env).validate()
    problems = "\n".join(err.value.problems)
    assert len(err.value.problems) == 8
    for text in [
        "grpc_port (OTEL_COSTS_GRPC_PORT): 'eighty' is not an integer",
        "http_port (OTEL_COSTS_HTTP_PORT): 70000",
        "storage (OTEL_COSTS_STORAGE)",
        "'bad-name' is not a valid name",
        "batch_max_age_ms",
        "log_format",
        "/nonexistent.toml does not exist",
        "raw_ttl_days (OTEL_COSTS_RAW_TTL_DAYS): '1.5'",
    ]:
        assert text in problems


def test_cluster_needs_a_server():
    with pytest.raises(ConfigError, match="cluster needs a ClickHouse server"):
        CollectorConfig.load({"cluster": "prod"}, env={}).validate()


def test_same_ports_refused():
    with pytest.raises(ConfigError, match="both 4000"):
        CollectorConfig.load({"grpc_port": 4000, "http_port": 4000}, env={}).validate()


@pytest.mark.parametrize(
    "env, writers, problem",
    [
        ({}, 2, None),
        ({"OTEL_COSTS_WRITERS": "4"}, 4, None),
        ({"OTEL_COSTS_WRITERS": "0"}, None, "writers (OTEL_COSTS_WRITERS): 0 is outside 1..16"),
        ({"OTEL_COSTS_WRITERS": "two"}, None, "writers (OTEL_COSTS_WRITERS): 'two' is not an integer"),
    ],
)
def test_writers_from_env_or_default_and_checked(env, writers, problem):
    if problem is None:
        assert CollectorConfig.load({}, env=env).validate().writers == writers
    else:
        with pytest.raises(ConfigError) as err:
            CollectorConfig.load({}, env=env).validate()
        assert err.value.problems == [problem]


def test_reconciliation_settings_are_checked_together_and_keys_never_shown():
    env = {
        "OTEL_COSTS_OPENAI_ADMIN_KEY": "sk-admin-secret-1",
        "OTEL_COSTS_ANTHROPIC_ADMIN_KEY": "two words",
        "OTEL_COSTS_ANTHROPIC_API_BASE": "api.anthropic.com",
        "OTEL_COSTS_RECONCILE_BAND": "1.03,0.97",
        "OTEL_COSTS_RECONCILE_INTERVAL_S": "0",
    }
    with pytest.raises(ConfigError) as err:
        CollectorConfig.load({}, env=env).validate()
    problems = "\n".join(err.value.problems)
    assert len(err.value.problems) == 4, problems
    for text in ["anthropic_admin_key", "anthropic_api_base", "reconcile_band", "reconcile_interval_s"]:
        assert text in problems
    assert "two words" not in problems
    cfg = CollectorConfig.load(
        {},
        env={
            **env,
            "OTEL_COSTS_ANTHROPIC_ADMIN_KEY": "sk-ant-admin-2",
            "OTEL_COSTS_ANTHROPIC_API_BASE": "http://proxy:8080/anthropic",
            "OTEL_COSTS_RECONCILE_BAND": "0.95,1.05",
            "OTEL_COSTS_RECONCILE_INTERVAL_S": "600",
        },
    ).validate()
    assert cfg.reconcile_keys() == {"openai": "sk-admin-secret-1", "anthropic": "sk-ant-admin-2"}
    # the anthropic SDK's base URL leaves /v1 out; the API lives under it
    assert cfg.reconcile_bases() == {
        "openai": "https://api.openai.com/v1",
        "anthropic": "http://proxy:8080/anthropic/v1",
    }
    assert [str(x) for x in cfg.reconcile_band] == ["0.95", "1.05"]
    shown = repr(cfg) + repr(cfg.describe())
    assert "sk-admin-secret-1" not in shown and "sk-ant-admin-2" not in shown


def test_fields_are_typed_after_load_and_every_problem_is_reported_at_once(tmp_path):
    """Values from the environment (strings) become the fields' types; one that does not
    convert is reported with the range and combination problems, in one ConfigError."""
    cfg = CollectorConfig.load(
        {},
        env={
            "OTEL_COSTS_WRITERS": "3",
            "OTEL_COSTS_BUDGET_THRESHOLDS": "90, 50",
            "OTEL_COSTS_RECONCILE_BAND": "0.9,1.1",
        },
    )
    assert cfg.writers == 3 and cfg.budget_thresholds == (90, 50)
    assert cfg.reconcile_band == (Decimal("0.9"), Decimal("1.1"))
    hints = typing.get_type_hints(CollectorConfig)
    for f in dataclasses.fields(cfg.validate()):
        value, hint = getattr(cfg, f.name), hints[f.name]
        if hint is int:
            assert type(value) is int, f.name
        elif hint in (str, str | None):
            assert value is None or type(value) is str, f.name
    assert cfg.budget_thresholds == (50, 90)  # validate() orders them
    env = {
        "OTEL_COSTS_GRPC_PORT": "http",  # does not convert
        "OTEL_COSTS_BUDGET_THRESHOLDS": "50,lots",  # does not convert
        "OTEL_COSTS_WRITERS": "99",  # converts, out of range
        "OTEL_COSTS_LOG_FORMAT": "xml",  # a string, not one of the choices
        "OTEL_COSTS_PRICES_FILE": str(tmp_path / "missing.json"),
    }
    loaded = CollectorConfig.load({}, env=env)
    assert loaded.grpc_port == 4317 and loaded.budget_thresholds == (50, 75, 90, 100)  # the defaults, kept typed
    with pytest.raises(ConfigError) as err:
        loaded.validate()
    assert [p.split(" ", 1)[0] for p in err.value.problems] == [
        "grpc_port",
        "budget_thresholds",
        "writers",
        "log_format",
        "prices_file",
    ]
    assert (
        "'http' is not an integer" in err.value.problems[0] and "'lots' is not a whole percent" in err.value.problems[1]
    )


@pytest.mark.parametrize(
    "raw, expected, problem",
    [
        (
            "proj_a=service:chat-api, proj_b=tenant:acme",
            {"proj_a": ("service", "chat-api"), "proj_b": ("tenant", "acme")},
            None,
        ),
        ("proj_a=user:bob", None, "map a project to service:NAME or tenant:NAME"),
        ("proj_a", None, "is not PROJECT_ID=service:NAME"),
    ],
)
def test_openai_projects_map_to_a_service_or_a_tenant(raw, expected, problem):
    cfg = CollectorConfig.load(env={"OTEL_COSTS_OPENAI_PROJECTS": raw})
    if problem is None:
        assert cfg.validate().openai_projects == expected
        return
    with pytest.raises(ConfigError) as caught:
        cfg.validate()
    assert any("OTEL_COSTS_OPENAI_PROJECTS" in p and problem in p for p in caught.value.problems)
