"""otel-costs: what each feature, customer and user of an AI product costs, from OTel spans.

The public API is exactly ``__all__``; everything else is private and may change.
"""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from .attribution import Attribution, attribute_to, current_attribution
from .budgets import BudgetExceeded, BudgetGuard, check_budget, enforce_budget
from .httpx_hooks import HttpxHooks, instrument_httpx
from .overrides import PriceOverrides, PriceOverridesError
from .pricing import PricingStatus
from .processor import CostSpanProcessor
from .record import record_usage

try:
    __version__ = _version("otel-costs")
except _PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "Attribution",
    "BudgetExceeded",
    "BudgetGuard",
    "CostSpanProcessor",
    "HttpxHooks",
    "PriceOverrides",
    "PriceOverridesError",
    "PricingStatus",
    "__version__",
    "attribute_to",
    "check_budget",
    "current_attribution",
    "enforce_budget",
    "instrument_httpx",
    "record_usage",
]
