"""How a storage write fails, classified once, where it fails (the insert), into three kinds:

* :class:`PermanentError` — storage refused *this data* and always will: ClickHouse answered
  with one of the codes below, or the driver's encoder refused a value of the rows. Moving the
  request aside is right (spooling.py narrows a batch down to the request).
* :class:`StorageUnavailable` — storage cannot take anything now (down, busy, too many parts,
  read-only, disk full, a timeout): retried, spooled and replayed, however long it lasts.
* anything else — a bug in our own code. Never taken for bad data: the pipeline logs it with
  its traceback, counts it and keeps the batch (spooled, so nothing acknowledged is lost).

The write path raises the first two and lets bugs through as they are; retry and spool branch on
the type (as the OTel Collector's ``consumererror.NewPermanent``), never on the text.
"""

from __future__ import annotations

import os
import struct
from types import TracebackType

from clickhouse_connect.driver.exceptions import DataError

__all__ = ["PermanentError", "StorageUnavailable", "classify"]

# ClickHouse error codes that mean "this data can never be inserted" rather than "not now".
_PERMANENT_CODES = {"6", "27", "38", "41", "53", "69", "70", "72", "117", "130", "131", "190", "444"}
# What an encoder raises for a value it cannot write (a number out of range, a wrong type);
# clickhouse-connect raises its DataError (DB-API: "a problem with the processed data").
_ENCODING_ERRORS = (TypeError, ValueError, OverflowError, struct.error)


class PermanentError(Exception):
    """Storage can never take this data as it is: retrying will not help."""


class StorageUnavailable(Exception):
    """Storage cannot take a write now (down, busy, refusing every insert): retry later."""


def classify(exc: BaseException) -> BaseException:
    """``exc``, raised by an insert (the driver or the storage it reached), as the write path
    raises it: a :class:`PermanentError` when the data is at fault (a permanent ClickHouse
    code, or a value the driver's encoder refused), a :class:`StorageUnavailable` for any other
    failure of the driver or the storage (their cause ``exc``), else ``exc`` itself: an error
    raised by our own code is a bug, not a storage failure."""
    if isinstance(exc, (PermanentError, StorageUnavailable)):
        return exc
    text = str(exc)
    at = text.find("Code: ")
    if at >= 0 and text[at + 6 :].split(".", 1)[0].strip() in _PERMANENT_CODES:
        kind: type[Exception] = PermanentError
    elif isinstance(exc, DataError) or (isinstance(exc, _ENCODING_ERRORS) and _raised_in_driver(exc.__traceback__)):
        kind = PermanentError
    elif isinstance(exc, OSError) or _raised_in_driver(exc.__traceback__) or at >= 0:
        kind = StorageUnavailable
    else:
        return exc
    error = kind(text)
    error.__cause__ = exc
    return error


def _raised_in_driver(tb: TracebackType | None) -> bool:
    """Whether the innermost Python frame of ``tb`` is the storage driver's (clickhouse-connect
    or chDB): an error it raised, not one of ours passing through it."""
    filename = ""
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    parts = set(filename.split(os.sep))
    return bool(parts & {"clickhouse_connect", "chdb"})
