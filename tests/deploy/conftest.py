from tests.collector.conftest import (  # noqa: F401  (re-exported fixtures)
    chdb_path,
    collector,
    database,
    start_collector,
    storage,
)
