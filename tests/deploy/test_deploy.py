"""deploy/: the compose file and Grafana provisioning hang together, and every dashboard
panel's SQL (Grafana macros expanded) runs against the real schema."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import yaml

from tests.collector.spans import SEMCONV, sdk_request

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = json.loads((DEPLOY / "grafana/dashboards/otel-costs.json").read_text())
PANELS = [p for p in DASHBOARD["panels"] if p.get("targets")]


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def test_compose_wires_clickhouse_collector_and_grafana():
    services = compose()["services"]
    assert set(services) == {"clickhouse", "collector", "grafana"}
    collector = services["collector"]
    context = (DEPLOY / collector["build"]["context"]).resolve()
    assert context == DEPLOY.parent and (context / collector["build"]["dockerfile"]).is_file()
    assert "@clickhouse:8123/" in collector["environment"]["OTEL_COSTS_STORAGE"]
    assert collector["environment"]["OTEL_COSTS_HOST"] == "0.0.0.0"
    assert {"4317:4317", "4318:4318"} <= set(collector["ports"])
    assert collector["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    grafana = services["grafana"]
    assert "grafana-clickhouse-datasource" in grafana["environment"]["GF_INSTALL_PLUGINS"]
    for volume in grafana["volumes"]:
        assert (DEPLOY / volume.split(":")[0]).resolve().is_dir(), volume


def test_the_image_installs_the_wheel_users_install_and_keeps_its_state_on_volumes():
    """Stage 1 builds the sdist and the wheel (PyPA build, as .ci/run does); the image
    installs that wheel alone with the [collector] extra, the install tests/e2e/test_install.py
    runs. Nothing else of the source tree reaches the image."""
    text = (DEPLOY / "Dockerfile").read_text()
    build, image = re.split(r"^FROM .*$", text, flags=re.M)[1:]
    for copied in re.findall(r"^COPY (\S+)", build, re.M):
        assert (DEPLOY.parent / copied).exists(), copied
    assert "python -m build --outdir /dist ." in build
    assert re.findall(r"^COPY .*", image, re.M) == ["COPY --from=build /dist/*.whl /dist/"]
    assert 'pip install --no-cache-dir "$(ls /dist/otel_costs-*.whl)[collector]"' in image
    assert "EXPOSE 4317 4318" in image and 'ENTRYPOINT ["otel-costs"]' in image
    # The embedded data and the spool (spans acknowledged while storage was down) outlive it.
    spool = re.search(r"OTEL_COSTS_SPOOL_DIR=(\S+)", image).group(1)
    assert 'VOLUME ["/data", "%s"]' % spool in image
    assert f"collector-spool:{spool}" in compose()["services"]["collector"]["volumes"]


def test_datasource_and_dashboard_provisioning_match():
    ds = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/clickhouse.yml").read_text())["datasources"][0]
    assert ds["type"] == "grafana-clickhouse-datasource" and ds["jsonData"]["host"] == "clickhouse"
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/otel-costs.yml").read_text())["providers"][0]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    for panel in PANELS:
        assert panel["datasource"]["uid"] == ds["uid"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == ds["uid"]


def test_dashboard_has_the_panels_people_ask_for():
    titles = " | ".join(p["title"] for p in PANELS).lower()
    for needed in [
        "cost over time by feature",
        "top tenants",
        "top users",
        "cost by model",
        "cost per call",
        "unpriced",
        "tokens",
    ]:
        assert needed in titles
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))


FROM, TO = "2020-01-01 00:00:00", "2100-01-01 00:00:00"


def expand(sql: str, db: str) -> str:
    """Grafana ClickHouse plugin macros, as the plugin expands them."""
    sql = re.sub(r"\$__timeFilter\((\w+)\)", rf"\1 >= toDateTime('{FROM}') AND \1 <= toDateTime('{TO}')", sql)
    sql = re.sub(r"\$__timeInterval\((\w+)\)", r"toStartOfInterval(toDateTime(\1), INTERVAL 3600 second)", sql)
    sql = sql.replace("$__fromTime", f"toDateTime('{FROM}')").replace("$__toTime", f"toDateTime('{TO}')")
    assert "$" not in sql, sql
    return sql.replace("otel_costs.", f"`{db}`.")


@pytest.mark.parametrize("panel", PANELS, ids=[p["title"] for p in PANELS])
def test_every_panel_query_runs_on_the_schema(collector, panel):
    body = sdk_request(
        [
            dict(SEMCONV, **{"tenant.id": "acme", "user.id": "u1", "feature.name": "chat"}),
            dict(SEMCONV, **{"gen_ai.request.model": "in-house-model"}),
        ]
    ).SerializeToString()
    assert (
        httpx.post(
            collector.http_url + "/v1/traces", content=body, headers={"Content-Type": "application/x-protobuf"}
        ).status_code
        == 200
    )
    for target in panel["targets"]:
        rows = collector.query(expand(target["rawSql"], collector.db).replace("{", "{{").replace("}", "}}"))
        assert rows, panel["title"]
