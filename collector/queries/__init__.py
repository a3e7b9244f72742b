"""Named SQL: report queries and budget queries, one ``.sql`` file each."""

from __future__ import annotations

from importlib import resources

__all__ = ["load"]


def load(name: str) -> str:
    """The text of ``<name>.sql`` without its comment lines."""
    text = resources.files(__name__).joinpath(f"{name}.sql").read_text(encoding="utf-8")
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
