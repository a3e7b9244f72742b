"""SQL files: one ``.sql`` per statement, next to the code that runs it, and one templating rule.

In a file, ``{name}`` (a lowercase word) is a placeholder this module fills: an identifier —
``{db}``, the database, quoted here — a fragment the caller builds from a fixed allowlist
(report dimensions and filters, a cluster clause), or one of the project's own facts this
module knows: ``{not_counted}``, the statuses of rows never summed
(otel_costs.counting.NOT_COUNTED), as a tuple literal. ``{name:Type}`` is a ClickHouse query
parameter and is left for ClickHouse: every value a user or a span supplies is one.
"""

from __future__ import annotations

import re
from importlib import resources

from otel_costs.counting import NOT_COUNTED

__all__ = ["fill", "load"]

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Fragments every statement may use, from the one place that decides each.
_FACTS = {"not_counted": "(" + ", ".join(f"'{status}'" for status in sorted(NOT_COUNTED)) + ")"}


def load(package: str, name: str, **values: str) -> str:
    """The text of ``<name>.sql`` in ``package`` (the caller's ``__package__``), without its
    comment lines, filled by :func:`fill`. Raises FileNotFoundError, or KeyError for a
    placeholder with no value."""
    text = resources.files(package).joinpath(f"{name}.sql").read_text(encoding="utf-8")
    return fill("\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--")), **values)


def fill(text: str, **values: str) -> str:
    """``text`` with each ``{name}`` placeholder replaced: ``db`` by the database name quoted
    as an identifier, any other by its value as given (a fragment from an allowlist).
    ``{name:Type}`` parameters are left as they are. Values without a placeholder are
    ignored. Raises KeyError for a placeholder with no value, ValueError for a database
    name that is not a plain identifier."""
    if "db" in values:
        if not _NAME.match(values["db"]):
            raise ValueError(f"not a database name: {values['db']!r}")
        values = {**values, "db": f"`{values['db']}`"}

    values = {**_FACTS, **values}

    def replace(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise KeyError(f"SQL placeholder {{{match.group(1)}}} has no value")
        return values[match.group(1)]

    return _PLACEHOLDER.sub(replace, text)
