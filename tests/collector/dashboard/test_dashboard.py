"""The dashboard in a real headless Chromium (Debian's chromium + chromedriver, driven by
Selenium) against a real collector with known data: the numbers shown equal the API's
exact totals, filters live in the URL, tables and CSVs match, auth limits the tenant.
Screenshots go to ``test-artifacts/`` (not committed)."""

from __future__ import annotations

import csv
import io
import os
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from ..spans import SEMCONV, sdk_request

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
PROTO = {"Content-Type": "application/x-protobuf"}
TENANT_TOKEN = "acme-dashboard-token-0123456789"
ADMIN_TOKEN = "admin-dashboard-token-0123456789"

if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    if os.environ.get("OTEL_COSTS_REQUIRE_BROWSER"):
        raise RuntimeError("OTEL_COSTS_REQUIRE_BROWSER is set but Debian's chromium/chromium-driver are missing")
    pytest.skip(
        "Debian's chromium and chromium-driver are not installed (.ci/run installs them)", allow_module_level=True
    )

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
        "--window-size=1280,1600",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def load(c) -> None:
    """Known calls: two tenants on two plans, two features, one model with no known price."""
    now = datetime.now(timezone.utc) - timedelta(minutes=5)
    spans = []
    for i in range(6):
        spans.append(
            dict(
                SEMCONV,
                _start=now - timedelta(days=i % 3),
                **{"tenant.id": "acme", "otel_costs.tag.plan": "pro", "feature.name": "chat", "user.id": f"u{i % 2}"},
            )
        )
    for i in range(4):
        spans.append(
            dict(
                SEMCONV,
                _start=now - timedelta(days=i % 2),
                **{
                    "tenant.id": "globex",
                    "otel_costs.tag.plan": "free",
                    "feature.name": "search",
                    "user.id": "g1",
                    "gen_ai.usage.input_tokens": 5000,
                    "gen_ai.usage.output_tokens": 900,
                },
            )
        )
    spans.append(
        dict(
            SEMCONV,
            _start=now,
            **{"tenant.id": "globex", "feature.name": "search", "gen_ai.request.model": "our-finetune-7b"},
        )
    )
    r = httpx.post(c.http_url + "/v1/traces", content=sdk_request(spans).SerializeToString(), headers=PROTO)
    assert r.status_code == 200


def api_total(c, headers=None, **params) -> tuple[Decimal, int]:
    rows = httpx.get(c.http_url + "/v1/costs", params={"by": "day", "since": "7d", **params}, headers=headers).json()
    return sum((Decimal(r["cost_usd"]) for r in rows), Decimal(0)), sum(r["unpriced_calls"] for r in rows)


def shown(browser, testid: str) -> str:
    return browser.find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]').text


def money(amount: Decimal) -> str:
    return f"${amount.normalize():f}"


def shot(browser, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"dashboard-{name}.png"))


def test_numbers_equal_the_api_and_filters_live_in_the_url(start_collector, browser):
    c = start_collector()
    load(c)
    total, unpriced = api_total(c)
    assert total > 0 and unpriced == 1
    browser.get(c.http_url + "/")
    assert shown(browser, "total") == money(total)
    assert shown(browser, "unpriced") == "1"
    assert "our-finetune-7b" in browser.find_element(By.CSS_SELECTOR, '[role="alert"]').text
    for panel in ("trend", "features", "tenants", "users", "models", "per_call"):
        assert browser.find_element(By.CSS_SELECTOR, f"#{panel} svg"), panel
    tenants = browser.find_element(By.CSS_SELECTOR, 'table[data-panel="tenants"]').get_attribute("textContent")
    assert "pro" in tenants and "free" in tenants
    shot(browser, "all")

    field = browser.find_element(By.NAME, "tenant")
    field.send_keys("acme")
    browser.find_element(By.CSS_SELECTOR, ".filters button").click()
    WebDriverWait(browser, 30).until(lambda b: "tenant=acme" in b.current_url)
    acme, _ = api_total(c, tenant="acme")
    assert acme < total
    WebDriverWait(browser, 30).until(lambda b: shown(b, "total") == money(acme))
    shot(browser, "acme")

    link = browser.find_element(By.CSS_SELECTOR, "#tenants a.csv").get_attribute("href")
    rows = list(csv.DictReader(io.StringIO(httpx.get(link).text)))
    api_rows = httpx.get(
        c.http_url + "/v1/costs", params={"by": "tenant,tag:plan", "since": "7d", "tenant": "acme", "top": "10"}
    ).json()
    assert [(r["tenant"], r["tag:plan"], Decimal(r["cost_usd"])) for r in rows] == [
        (r["tenant"], r["tag:plan"], Decimal(r["cost_usd"])) for r in api_rows
    ]

    browser.get(browser.current_url)  # a shared link shows the same view
    assert shown(browser, "total") == money(acme)


def test_readable_on_a_phone(start_collector, browser):
    c = start_collector()
    load(c)
    browser.set_window_size(390, 844)
    try:
        browser.get(c.http_url + "/")
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        shot(browser, "phone")
    finally:
        browser.set_window_size(1280, 1600)


def test_with_auth_the_page_asks_for_a_token_and_shows_only_that_tenant(start_collector, browser, tmp_path):
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(
        f'[[token]]\ntoken = "{TENANT_TOKEN}"\ntenant = "acme"\n\n[[token]]\ntoken = "{ADMIN_TOKEN}"\nadmin = true\n'
    )
    c = start_collector(auth_tokens_file=str(tokens))
    for token in (TENANT_TOKEN, ADMIN_TOKEN):  # the admin's spans keep the tenant they claim
        body = sdk_request([dict(SEMCONV, **{"tenant.id": "globex"})] * 3).SerializeToString()
        assert (
            httpx.post(
                c.http_url + "/v1/traces", content=body, headers={**PROTO, "Authorization": f"Bearer {token}"}
            ).status_code
            == 200
        )
    browser.delete_all_cookies()
    browser.get(c.http_url + "/")
    assert browser.find_elements(By.CSS_SELECTOR, 'input[name="token"]')
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="total"]')
    browser.find_element(By.NAME, "token").send_keys(TENANT_TOKEN)
    browser.find_element(By.CSS_SELECTOR, 'form[action="/login"] button').click()
    WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.CSS_SELECTOR, '[data-testid="total"]'))
    acme, _ = api_total(c, headers={"Authorization": f"Bearer {TENANT_TOKEN}"})
    everyone, _ = api_total(c, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert shown(browser, "total") == money(acme) and acme < everyone
    assert browser.find_element(By.NAME, "tenant").get_attribute("readonly") is not None
    browser.get(c.http_url + "/?tenant=globex")  # asking for another tenant still shows only its own
    assert shown(browser, "total") == money(acme)
    shot(browser, "tenant-token")
    browser.find_element(By.CSS_SELECTOR, 'form[action="/logout"] button').click()
    WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.CSS_SELECTOR, 'input[name="token"]'))


def test_page_is_self_contained_and_errors_are_clear(start_collector, tmp_path):
    c = start_collector()
    load(c)
    page = httpx.get(c.http_url + "/")
    assert "http://" not in page.text and "https://" not in page.text and "<script" not in page.text
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert httpx.get(c.http_url + "/dashboard/nope.csv").status_code == 404
    bad = httpx.get(c.http_url + "/?since=yesterday")
    assert bad.status_code == 400 and "not like 24h" in bad.text


@pytest.mark.parametrize("path", ["/login", "/logout"])
def test_a_form_posted_from_another_site_is_refused(start_collector, tmp_path, path):
    """Login CSRF: another site's page posting its own token would leave the victim's browser
    signed in as the attacker's tenant. A POST whose Origin is not this collector gets 403;
    the dashboard's own form (same origin) signs in."""
    from otel_costs_collector.dashboard.routes import COOKIE

    tokens = tmp_path / "tokens.toml"
    token = "acme-dashboard-token-0123456789"
    tokens.write_text(f'[[token]]\ntoken = "{token}"\ntenant = "acme"\n')
    c = start_collector(auth_tokens_file=str(tokens))
    evil = httpx.post(c.http_url + path, data={"token": token}, headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403 and "set-cookie" not in evil.headers
    own = httpx.post(c.http_url + path, data={"token": token}, headers={"Origin": c.http_url})
    assert own.status_code == 303
    if path == "/login":
        assert own.headers["set-cookie"].startswith(f"{COOKIE}={token}")
