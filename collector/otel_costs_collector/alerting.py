"""Alerts out of the collector (budget thresholds, reconciliation gaps): a webhook, and the
one delivery rule both follow — each alert is recorded before it is sent and again once the
webhook took it, so none is lost and a restart resends none that was delivered."""

from __future__ import annotations

import json
import logging
import urllib.request
from typing import Any, Callable, Hashable, MutableMapping

__all__ = ["Webhook", "deliver"]

_log = logging.getLogger("otel_costs.collector")


class Webhook:
    """POSTs alerts as JSON; ``fmt="slack"`` sends Slack's ``{"text": ...}`` instead."""

    def __init__(self, url: str, fmt: str = "json", timeout: float = 10.0):
        self.url, self.fmt, self.timeout = url, fmt, timeout

    def send(self, alert: dict[str, Any]) -> None:
        """Raises OSError (urllib.error.URLError included) when the receiver did not take it."""
        payload = {"text": alert["message"]} if self.fmt == "slack" else alert
        request = urllib.request.Request(
            self.url, data=json.dumps(payload).encode(), method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            if not 200 <= response.status < 300:
                raise OSError(f"webhook answered {response.status}")


def deliver(
    pending: MutableMapping[Any, dict[str, Any] | None],
    webhook: Webhook | None,
    delivered: Callable[[Hashable, dict[str, Any]], None],
    what: str,
) -> None:
    """Send every undelivered alert of ``pending`` (key → alert; None once delivered) in
    order; ``delivered(key, alert)`` records one the webhook took, then it is marked None.
    Without a webhook, alerts go to the log only and count as delivered. Stops at the first
    failure (the receiver is likely down for all), logged as ``"<what> webhook failed"``:
    the rest wait for the next cycle, in order. Blocking I/O."""
    for key, alert in list(pending.items()):
        if alert is None:
            continue
        if webhook is not None:
            try:
                webhook.send(alert)
            except (OSError, ValueError) as exc:
                _log.error("%s webhook failed, retrying next cycle: %s", what, exc)
                return
        delivered(key, alert)
        pending[key] = None
