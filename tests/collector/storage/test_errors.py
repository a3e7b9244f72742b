"""storage.errors: a write's failure classified once, at the insert: refused for good
(permanent), storage unavailable (not now), or a bug of ours (neither: it passes through)."""

from __future__ import annotations

import pytest

from otel_costs_collector.storage.client import open_client, parse_storage
from otel_costs_collector.storage.errors import PermanentError, StorageUnavailable, classify
from otel_costs_collector.storage.insert import ClickHouseWriter
from otel_costs_collector.storage.schema import migrate

from .test_writer import row


def _raised(error: BaseException) -> BaseException:
    try:
        raise error
    except BaseException as exc:  # with a traceback in this (our) code
        return exc


@pytest.mark.parametrize(
    "error, kind",
    [
        (ConnectionError("refused"), StorageUnavailable),
        (TimeoutError(), StorageUnavailable),
        (Exception("Code: 53. DB::Exception: Type mismatch"), PermanentError),
        (Exception("Code: 252. DB::Exception: Too many parts (300)"), StorageUnavailable),
        (Exception("Code: 241. DB::Exception: Memory limit exceeded"), StorageUnavailable),
        # Raised by our own code: bugs, never taken for bad data.
        (TypeError("unsupported operand type(s)"), None),
        (ValueError("not enough values to unpack"), None),
        (KeyError("tenant"), None),
    ],
)
def test_refused_unavailable_or_a_bug(error, kind):
    error = _raised(error)
    classified = classify(error)
    if kind is None:
        assert classified is error
    else:
        assert type(classified) is kind and classified.__cause__ is error and str(error) in str(classified)
    assert classify(classified) is classified  # classified once


def test_a_value_the_drivers_encoder_refuses_is_permanent(storage, database):
    """The real insert: a token count past UInt64 is refused by clickhouse-connect's encoder,
    inside the driver: the data is at fault, for good."""
    client = open_client(parse_storage(storage))
    try:
        migrate(client, db=database)
        with pytest.raises(PermanentError) as refused:
            ClickHouseWriter(client, database).write([row(input_tokens=1 << 70)], "token-1")
        assert not isinstance(refused.value.__cause__, PermanentError)
    finally:
        client.close()
