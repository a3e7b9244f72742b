"""Stripe's invoices and credit notes, read into revenue lines (parsing plus blocking HTTP GETs;
no storage).

With a restricted key (read access to customers, products, invoices and credit notes), as
``Authorization: Bearer <key>``, it lists — ``limit=100`` a page, the next page
``starting_after=<the last id>`` while ``has_more`` — ``/v1/customers`` (a customer's tenant is
its ``metadata[<tenant key>]``, else its id), ``/v1/products`` (a plan is the product's name),
``/v1/invoices`` and ``/v1/credit_notes`` created since a given instant, and the rest of an
invoice's or credit note's lines (``/v1/invoices/{id}/lines``) when the list holds only the
first ones.

An invoice line is revenue of its service period (``period.start``/``end``) for the invoice's
customer: ``amount`` minus its ``discount_amounts``, in the currency's minor unit (zero- and
three-decimal currencies included, :mod:`otel_costs_collector.revenue.money`); it counts while
its invoice is ``paid`` or ``open`` (finalised). A credit note line subtracts its amount over
the period of the invoice line it credits (else on the day the note was created); it counts
while the note is ``issued``. Every line is returned with ``active`` saying whether it counts,
so that a line voided since the last pull replaces what that pull stored.

Errors: :class:`StripeError` with the HTTP status (None for a network failure or a body of
the wrong shape) and ``retry_after`` seconds when Stripe asked for a pause (429). A line that
cannot be revenue (an unknown currency, an absurd amount) is left out with a message; a line
without a period is kept as revenue of its invoice's day, with a message. The key never
appears in an error or a log line.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Iterator

from otel_costs_collector.billing_api import BillingApiError, get_json
from otel_costs_collector.revenue.lines import MAX_TEXT, RevenueLine
from otel_costs_collector.revenue.money import MoneyError, from_minor

__all__ = ["DEFAULT_STRIPE_BASE", "DEFAULT_TENANT_KEY", "StripeError", "StripeRead", "fetch_revenue"]

DEFAULT_STRIPE_BASE = "https://api.stripe.com"
DEFAULT_TENANT_KEY = "tenant_id"
PAGE = 100
#: Pages read of one list at most: an API answering has_more forever cannot stall a pull.
MAX_PAGES = 2000
_COUNTING_INVOICES = frozenset({"paid", "open"})


class StripeError(Exception):
    """Stripe could not be read; the message says what and the HTTP status."""

    def __init__(self, status: int | None, message: str, retry_after: float | None = None):
        super().__init__(f"stripe: {message}")
        self.status, self.retry_after = status, retry_after


@dataclass
class StripeRead:
    """What one read gave: the lines, and one message per line left out or marked."""

    lines: list[RevenueLine] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def fetch_revenue(key: str, base: str, since: datetime, tenant_key: str = DEFAULT_TENANT_KEY) -> StripeRead:
    """Every invoice and credit note line created since ``since``. Blocking; raises StripeError."""
    api = _Api(key, base.rstrip("/"))
    tenants = {c["id"]: _tenant(c, tenant_key) for c in api.list("/v1/customers", {}) if isinstance(c.get("id"), str)}
    plans = {
        p["id"]: str(p.get("name") or p["id"]) for p in api.list("/v1/products", {}) if isinstance(p.get("id"), str)
    }
    created = {"created[gte]": str(int(since.timestamp()))}
    read = StripeRead()
    periods: dict[str, tuple[datetime, datetime, str]] = {}  # invoice line id → its period and plan
    for invoice in api.list("/v1/invoices", created):
        _invoice_lines(api, invoice, tenants, plans, periods, read)
    for note in api.list("/v1/credit_notes", created):
        _credit_lines(api, note, tenants, periods, read)
    return read


def _tenant(customer: dict[str, Any], tenant_key: str) -> str:
    metadata = customer.get("metadata")
    value = metadata.get(tenant_key) if isinstance(metadata, dict) else None
    return (value if isinstance(value, str) and value.strip() else customer["id"]).strip()[:MAX_TEXT]


def _invoice_lines(
    api: "_Api",
    invoice: dict[str, Any],
    tenants: dict[str, str],
    plans: dict[str, str],
    periods: dict[str, tuple[datetime, datetime, str]],
    read: StripeRead,
) -> None:
    invoice_id = str(invoice.get("id") or "?")
    customer = _id(invoice.get("customer"))
    active = invoice.get("status") in _COUNTING_INVOICES
    for item in api.sublist(invoice.get("lines"), f"/v1/invoices/{invoice_id}/lines"):
        line_id = str(item.get("id") or "")
        where = f"invoice {invoice_id} line {line_id or '?'}"
        currency = str(item.get("currency") or invoice.get("currency"))
        amount = _net(item, currency, where, read)
        if amount is None:
            continue
        plan = plans.get(_product(item), _product(item))
        period = _period(item.get("period"))
        if period is None:
            try:
                period = (_instant(invoice.get("created")),) * 2
            except StripeError:
                read.problems.append(f"{where}: no service period and no invoice date; left out")
                continue
            read.problems.append(f"{where}: no service period; counted on the invoice's day")
        periods[line_id] = (*period, plan)
        read.lines.append(
            RevenueLine(
                "stripe",
                line_id or f"{invoice_id}/?",
                tenants.get(customer, customer),
                amount,
                currency.upper(),
                period[0],
                period[1],
                plan[:MAX_TEXT],
                customer,
                active,
            )
        )


def _credit_lines(
    api: "_Api",
    note: dict[str, Any],
    tenants: dict[str, str],
    periods: dict[str, tuple[datetime, datetime, str]],
    read: StripeRead,
) -> None:
    note_id = str(note.get("id") or "?")
    customer = _id(note.get("customer"))
    currency = str(note.get("currency"))
    try:
        created = _instant(note.get("created"))
    except StripeError:
        read.problems.append(f"credit note {note_id}: no creation date; left out")
        return
    for item in api.sublist(note.get("lines"), f"/v1/credit_notes/{note_id}/lines"):
        line_id = str(item.get("id") or "")
        amount = _net(item, currency, f"credit note {note_id} line {line_id or '?'}", read)
        if amount is None:
            continue
        start, end, plan = periods.get(_id(item.get("invoice_line_item")), (created, created, ""))
        read.lines.append(
            RevenueLine(
                "stripe",
                line_id or f"{note_id}/?",
                tenants.get(customer, customer),
                -amount,
                currency.upper(),
                start,
                end,
                plan[:MAX_TEXT],
                customer,
                note.get("status") == "issued",
            )
        )


def _net(item: dict[str, Any], currency: str, where: str, read: StripeRead) -> Decimal | None:
    """A line's ``amount`` less its ``discount_amounts``, in major units; None (and a message in
    ``read``) when it is not an amount of a known currency."""
    try:
        amount = from_minor(item.get("amount"), currency)
        for discount in item.get("discount_amounts") or ():
            if isinstance(discount, dict):
                amount -= from_minor(discount.get("amount"), currency)
    except MoneyError as exc:
        read.problems.append(f"{where}: {exc}; left out")
        return None
    return amount


def _product(item: dict[str, Any]) -> str:
    """The product a line sells: ``pricing.price_details.product`` (API versions from
    2025-03-31), else ``price.product``."""
    pricing = item.get("pricing")
    if isinstance(pricing, dict) and isinstance(pricing.get("price_details"), dict):
        return _id(pricing["price_details"].get("product"))
    price = item.get("price")
    return _id(price.get("product")) if isinstance(price, dict) else ""


def _id(value: Any) -> str:
    """An id, or the id of an expanded object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value[:MAX_TEXT] if isinstance(value, str) else ""


def _period(value: Any) -> tuple[datetime, datetime] | None:
    if not isinstance(value, dict):
        return None
    try:
        start, end = _instant(value["start"]), _instant(value["end"])
    except (KeyError, StripeError):
        return None
    return start, max(start, end)


def _instant(value: Any) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int):
        raise StripeError(None, f"unexpected body: {str(value)[:32]!r} is not a Unix time")
    try:
        return datetime.fromtimestamp(value, timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise StripeError(None, f"unexpected body: {value} is not a Unix time") from None


class _Api:
    def __init__(self, key: str, base: str):
        self._key, self._base = key, base

    def list(self, path: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        """Every object of a list endpoint, page by page."""
        after: str | None = None
        for _ in range(MAX_PAGES):
            page = self._get(path, {**params, "limit": str(PAGE), **({"starting_after": after} if after else {})})
            items = page.get("data")
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise StripeError(None, f"unexpected body from {path}: no data list")
            yield from items
            if not page.get("has_more") or not items:
                return
            after = items[-1].get("id")
            if not isinstance(after, str):
                raise StripeError(None, f"unexpected body from {path}: an object without an id")
        raise StripeError(None, f"{path}: more than {MAX_PAGES} pages")

    def sublist(self, embedded: Any, path: str) -> Iterator[dict[str, Any]]:
        """The objects of a list embedded in another object, and the rest from ``path``."""
        if not isinstance(embedded, dict) or not isinstance(embedded.get("data"), list):
            yield from self.list(path, {})
            return
        items = [i for i in embedded["data"] if isinstance(i, dict)]
        yield from items
        if embedded.get("has_more") and items and isinstance(items[-1].get("id"), str):
            after = items[-1]["id"]
            for _ in range(MAX_PAGES):
                page = self._get(path, {"limit": str(PAGE), "starting_after": after})
                more = [i for i in page.get("data") or () if isinstance(i, dict)]
                yield from more
                if not page.get("has_more") or not more or not isinstance(more[-1].get("id"), str):
                    return
                after = more[-1]["id"]

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            return get_json(
                f"{self._base}{path}?{urllib.parse.urlencode(params)}", {"Authorization": f"Bearer {self._key}"}
            )
        except BillingApiError as exc:
            if exc.status is None:
                raise StripeError(None, f"{path}: {exc}") from None
            meaning = {
                401: "the key was refused (401)",
                403: "the key may not read this (403): it needs read access to customers, products, invoices, "
                "credit notes",
                429: "rate limited (429)",
            }.get(exc.status, f"HTTP {exc.status}")
            raise StripeError(
                exc.status, f"{meaning}{': ' + exc.detail if exc.detail else ''}", exc.retry_after
            ) from None
