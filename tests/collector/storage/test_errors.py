"""storage.errors: a write's failure classified once, permanent or not."""

from __future__ import annotations

import pytest

from otel_costs_collector.storage.errors import PermanentError, classify


@pytest.mark.parametrize(
    "error, permanent",
    [
        (ConnectionError("refused"), False),
        (TimeoutError(), False),
        (Exception("Code: 53. DB::Exception: Type mismatch"), True),
        (Exception("Code: 241. DB::Exception: Memory limit exceeded"), False),
        (TypeError("bad value"), True),
        (ValueError("damaged batch file"), True),
    ],
)
def test_permanent_versus_not_now(error, permanent):
    classified = classify(error)
    assert isinstance(classified, PermanentError) is permanent
    if permanent:
        assert classified.__cause__ is error and str(error) in str(classified)
    else:
        assert classified is error
