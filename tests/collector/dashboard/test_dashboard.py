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
    """The exact amount, as tooltips and tables show it."""
    return f"${amount.normalize():f}"


def for_people(amount: Decimal) -> str:
    """What the page shows: cents from a dollar up, two significant digits below."""
    return f"${amount:,.2f}" if amount >= 1 else f"${Decimal(f'{amount:.2g}'):f}"


def total_shown(browser) -> tuple[str, str]:
    element = browser.find_element(By.CSS_SELECTOR, '[data-testid="total"]')
    return element.text, element.get_attribute("title")


def shot(browser, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"dashboard-{name}.png"))


def test_numbers_equal_the_api_and_filters_live_in_the_url(start_collector, browser):
    c = start_collector()
    load(c)
    total, unpriced = api_total(c)
    assert total > 0 and unpriced == 1
    browser.get(c.http_url + "/")
    assert total_shown(browser) == (for_people(total), money(total))
    assert shown(browser, "unpriced") == "1"
    assert "our-finetune-7b" in shown(browser, "problem-unpriced")
    for panel in ("trend", "features"):
        assert browser.find_element(By.CSS_SELECTOR, f"#{panel} svg"), panel
    for panel in ("errors", "tenants", "users", "models", "per_call"):
        assert browser.find_element(By.CSS_SELECTOR, f"#{panel} .hbars"), panel
    tenants = browser.find_element(By.CSS_SELECTOR, 'table[data-panel="tenants"]').get_attribute("textContent")
    assert "pro" in tenants and "free" in tenants
    assert shown(browser, "range").endswith("UTC (end excluded)")
    shot(browser, "all")

    field = browser.find_element(By.NAME, "tenant")
    field.send_keys("acme")
    browser.find_element(By.CSS_SELECTOR, ".filters button").click()
    WebDriverWait(browser, 30).until(lambda b: "tenant=acme" in b.current_url)
    acme, _ = api_total(c, tenant="acme")
    assert acme < total
    WebDriverWait(browser, 30).until(lambda b: total_shown(b)[1] == money(acme))
    shot(browser, "acme")

    link = browser.find_element(By.CSS_SELECTOR, "#tenants a.csv").get_attribute("href")
    rows = list(csv.DictReader(io.StringIO(httpx.get(link).text)))
    api_rows = httpx.get(
        c.http_url + "/v1/costs", params={"by": "tenant", "since": "7d", "tenant": "acme", "top": "10"}
    ).json()
    assert [(r["tenant"], Decimal(r["cost_usd"])) for r in rows] == [
        (r["tenant"], Decimal(r["cost_usd"])) for r in api_rows
    ]

    browser.get(browser.current_url)  # a shared link shows the same view
    assert total_shown(browser)[1] == money(acme)


def test_from_the_overview_to_a_tenant_a_call_and_its_trace(start_collector, browser):
    c = start_collector()
    load(c)
    browser.get(c.http_url + "/?since=7d")
    # a tenant's name opens its view: the same numbers as the API's for that tenant
    browser.find_element(By.CSS_SELECTOR, '#tenants .hbars a[href*="tenant=globex"]').click()
    WebDriverWait(browser, 30).until(lambda b: "tenant=globex" in b.current_url)
    globex, unpriced = api_total(c, tenant="globex")
    assert total_shown(browser) == (for_people(globex), money(globex))
    assert "tenant globex" in browser.find_element(By.CSS_SELECTOR, "nav.crumbs").text
    for names in ("#per_call .hbars", "#features svg", "#users .hbars", "#models .hbars"):  # each opens its view
        assert browser.find_elements(By.CSS_SELECTOR, f"{names} a[href*='tenant=globex']"), names
    # its most expensive call is the API's, to the last digit
    (costly,) = httpx.get(
        c.http_url + "/v1/calls", params={"since": "7d", "tenant": "globex", "order": "cost", "limit": "1"}
    ).json()["calls"]
    first = browser.find_element(By.CSS_SELECTOR, "#costly tbody tr")
    assert costly["cost_usd"] in first.text
    shot(browser, "tenant-globex")
    # …and opens its trace, whose total is the API's
    first.find_element(By.CSS_SELECTOR, 'a[href^="/trace/"]').click()
    WebDriverWait(browser, 30).until(lambda b: "/trace/" in b.current_url)
    trace = httpx.get(c.http_url + "/v1/calls", params={"trace_id": costly["trace_id"]}).json()["trace"]
    cost = browser.find_element(By.CSS_SELECTOR, '[data-testid="trace-cost"]')
    assert cost.get_attribute("title") == money(Decimal(trace["cost_usd"]))
    assert costly["cost_usd"] in browser.find_element(By.CSS_SELECTOR, "#steps").text
    shot(browser, "trace")


# The rendered size of every piece of text, and whether a number wrapped onto two lines.
_TEXT_SIZES = """
const out = [];
for (const el of document.querySelectorAll('main *')) {
  if (!el.childNodes.length || ![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
  if (el.closest('details:not([open])') || el.closest('title')) continue;
  let px = parseFloat(getComputedStyle(el).fontSize);
  const svg = el.closest('svg');
  if (svg) px *= svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
  out.push([el.tagName, el.textContent.trim().slice(0, 30), px]);
}
return out;
"""
_WRAPPED_NUMBERS = """
const lines = el => {
  const range = document.createRange();
  range.selectNodeContents(el);
  return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
};
return [...document.querySelectorAll('.kpi strong, .hbar .value, td.num, .money')]
  .filter(el => lines(el) > 1).map(el => el.textContent);
"""


@pytest.mark.parametrize("width", [375, 1400])
def test_readable_on_a_phone_and_a_desktop(start_collector, browser, width):
    c = start_collector()
    load(c)
    browser.set_window_size(width, 900)
    try:
        for path in ("/", "/?tenant=acme"):
            browser.get(c.http_url + path)
            overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, path
            small = [t for t in browser.execute_script(_TEXT_SIZES) if t[2] < 11]
            assert small == [], small[:5]
            assert browser.execute_script(_WRAPPED_NUMBERS) == []
        shot(browser, f"{width}px")
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
    assert total_shown(browser)[1] == money(acme) and acme < everyone
    assert browser.find_element(By.NAME, "tenant").get_attribute("readonly") is not None
    browser.get(c.http_url + "/?tenant=globex")  # asking for another tenant still shows only its own
    assert total_shown(browser)[1] == money(acme)
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


def test_calls_without_a_cost_are_called_out_by_why_and_budgets_show_on_the_overview(start_collector):
    c = start_collector(budget_interval_s=3600)
    load(c)
    cut = dict(
        SEMCONV,
        **{
            "tenant.id": "acme",
            "otel_costs.pricing.status": "incomplete",
            "otel_costs.pricing.error": "the stream ended before its usage",
        },
    )
    r = httpx.post(
        c.http_url + "/v1/traces", content=sdk_request([cut], priced=False).SerializeToString(), headers=PROTO
    )
    assert r.status_code == 200
    body = {"tenant": "acme", "amount_usd": "40", "period": "monthly"}
    assert httpx.put(c.http_url + "/v1/budgets/acme-monthly", json=body).json()["amount_usd"] == "40"
    c.call(c.collector.evaluate_budgets_now())
    deadline = datetime.now(timezone.utc) + timedelta(seconds=20)
    while 'data-testid="problem-incomplete"' not in (page := httpx.get(c.http_url + "/").text):
        assert datetime.now(timezone.utc) < deadline, page[:2000]
    incomplete = page.split('data-testid="problem-incomplete">', 1)[1].split("</p>", 1)[0]
    assert "1 incomplete call" in incomplete and "the stream ended before its usage" in incomplete
    assert "no known price" in page.split('data-testid="problem-unpriced">', 1)[1].split("</p>", 1)[0]
    assert 'id="budgets"' in page and "acme-monthly" in page  # on the overview, no filter needed
    # dates entered are kept, and the range is stated
    dated = httpx.get(c.http_url + "/", params={"from": "2026-11-20", "to": "2026-11-27", "since": "7d"}).text
    assert 'name="from" type="date" value="2026-11-20"' in dated and 'name="to" type="date" value="2026-11-27"' in dated
    assert "2026-11-20 00:00 → 2026-11-27 00:00 UTC" in dated
