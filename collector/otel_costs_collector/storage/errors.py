"""How a storage write fails, classified once: *permanent* (the data can never be written as
it is: moving it aside is right) or anything else (retryable: storage is down, busy or slow).

The write path raises :class:`PermanentError` for the first kind and lets every other error
through; retry and spool branch on the type (as the OTel Collector's
``consumererror.NewPermanent``), never on the text.
"""

from __future__ import annotations

__all__ = ["PermanentError", "classify"]

# ClickHouse error codes that mean "this data can never be inserted" rather than "not now".
_PERMANENT_CODES = {"6", "27", "38", "41", "53", "69", "70", "72", "117", "130", "131", "190", "444"}


class PermanentError(Exception):
    """Storage can never take this batch as it is: retrying will not help."""


def classify(exc: BaseException) -> BaseException:
    """``exc`` as the write path raises it: a :class:`PermanentError` (its cause ``exc``) when
    the batch's content is at fault — it could not be encoded (TypeError, ValueError,
    OverflowError) or ClickHouse refused it with one of the codes above — else ``exc``."""
    if isinstance(exc, PermanentError):
        return exc
    permanent = isinstance(exc, (TypeError, ValueError, OverflowError))
    if not permanent:
        text = str(exc)
        at = text.find("Code: ")
        permanent = at >= 0 and text[at + 6 :].split(".", 1)[0].strip() in _PERMANENT_CODES
    if not permanent:
        return exc
    error = PermanentError(str(exc))
    error.__cause__ = exc
    return error
