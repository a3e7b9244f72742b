from tests.collector.conftest import (  # noqa: F401  (re-exported fixtures)
    chdb_path,
    collector,
    database,
    start_collector,
    storage,
)

# What tests/e2e/test_install.py proved of the installed artifacts, said at the end of the run
# so that CI's log shows it (a line each).
INSTALL_REPORT: list[str] = []


def pytest_terminal_summary(terminalreporter) -> None:
    if INSTALL_REPORT:
        terminalreporter.section("what users install")
        for line in INSTALL_REPORT:
            terminalreporter.write_line(line)
