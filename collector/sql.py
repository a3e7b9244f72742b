"""SQL files: one ``.sql`` per statement, next to the code that runs it.

One templating rule: identifiers (the database) are filled by the caller with ``{db}``;
every value is a ClickHouse query parameter (``{name:Type}``) in the file itself.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["load"]


def load(package: str, name: str) -> str:
    """The text of ``<name>.sql`` in ``package`` (the caller's ``__package__``), without its
    comment lines. Raises FileNotFoundError."""
    text = resources.files(package).joinpath(f"{name}.sql").read_text(encoding="utf-8")
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
