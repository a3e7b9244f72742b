"""Which third-party clients the tests run against: those pyproject.toml and
tests/node/package-lock.json pin (the default), or with ``OTEL_COSTS_PACKAGES=latest`` the newest
the registries serve (.ci/latest installs them), so that a release that changes how spans are
shaped fails a test before it reaches a user's bill."""

from __future__ import annotations

import os

#: Running against the newest releases (.ci/latest).
LATEST = os.environ.get("OTEL_COSTS_PACKAGES", "pinned") == "latest"
