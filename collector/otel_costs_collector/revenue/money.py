"""Currencies: which codes exist (ISO 4217) and how Stripe writes their amounts (minor units).
Pure; no I/O."""

from __future__ import annotations

from decimal import Decimal

__all__ = ["CURRENCIES", "MAX_AMOUNT", "MoneyError", "currency_of", "from_minor", "amount_of"]

#: ISO 4217 codes of the currencies in use (and the precious metals and SDR left out).
CURRENCIES = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP
    BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL
    GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW
    KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN
    NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK
    SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS
    VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG""".split()
)
# Stripe's API writes amounts in these currencies without a minor unit (¥500 is 500) …
_ZERO_DECIMAL = frozenset("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split())
# … and these with three decimals (5.124 KWD is 5124); every other one with two (ISK, HUF and
# TWD included: Stripe keeps two decimals there for compatibility).
_THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())
#: The largest amount a line may hold, in major units: beyond it is a mistake, not revenue.
MAX_AMOUNT = Decimal(10) ** 15


class MoneyError(ValueError):
    """A currency or an amount that cannot be revenue; the message says why."""


def currency_of(code: object) -> str:
    """``code`` as an upper-case ISO 4217 code. Raises MoneyError for anything else."""
    if not isinstance(code, str) or code.strip().upper() not in CURRENCIES:
        raise MoneyError(f"unknown currency {str(code)[:16]!r} (an ISO 4217 code like USD, EUR or JPY)")
    return code.strip().upper()


def from_minor(amount: object, currency: str) -> Decimal:
    """A Stripe amount (an integer in the currency's smallest unit) in major units, exactly:
    1000 USD cents is 10, 500 JPY is 500, 5124 KWD fils is 5.124. Raises MoneyError."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise MoneyError(f"amount {str(amount)[:32]!r} is not an integer of minor units")
    code = currency_of(currency)
    places = 0 if code in _ZERO_DECIMAL else 3 if code in _THREE_DECIMAL else 2
    return _checked(Decimal(amount).scaleb(-places))


def amount_of(text: object) -> Decimal:
    """An amount written in major units ("19.99", 20, "-5"), exactly. Raises MoneyError for
    anything that is not a finite number below :data:`MAX_AMOUNT`."""
    if isinstance(text, bool) or not isinstance(text, (str, int, Decimal)):
        raise MoneyError(f'amount {str(text)[:32]!r} is not a number (write it as text: "19.99")')
    try:
        value = Decimal(str(text).strip())
    except ArithmeticError:
        raise MoneyError(f"amount {str(text)[:32]!r} is not a number") from None
    return _checked(value)


def _checked(value: Decimal) -> Decimal:
    if not value.is_finite() or abs(value) >= MAX_AMOUNT:
        raise MoneyError(f"amount {value} is not revenue (at most 15 digits before the point)")
    if value.as_tuple().exponent < -18:  # type: ignore[operator]
        raise MoneyError(f"amount {value} has more than 18 decimal places")
    return value
