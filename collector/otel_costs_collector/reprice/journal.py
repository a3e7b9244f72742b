"""The re-price journal: a row per run (``reprice_runs``) and per run and UTC day
(``reprice_days``), written again at each change of state (the newest row wins), so the next
start knows what a killed run left: staged days are rolled back, applying days finished.

Storage I/O on the caller's thread; raises what the client raises.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from otel_costs_collector.reprice.plan import EXACT, money
from otel_costs_collector.sql import load

__all__ = ["DAY_STATES", "RUN_STATES", "DayEntry", "RunEntry", "history", "owner", "run_days", "stale_runs"]

RUN_STATES = ("running", "done", "interrupted", "failed")
DAY_STATES = ("staging", "staged", "applying", "applied", "rolled_back")
#: A run another host owns is taken over when it has not written for this long (s).
STALE_AFTER_S = 900
_RUN_COLUMNS = (
    "run_id started_at actor owner day_from day_to model only prices state days rows kept "
    "cost_before cost_after note updated_at"
).split()
_DAY_COLUMNS = "run_id day state slices rows cost_before cost_after updated_at".split()


def owner() -> str:
    """This process, as a run's owner: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class RunEntry:
    """One run as journalled. Money in USD; ``day_to`` inclusive."""

    run_id: str
    started_at: datetime
    actor: str
    owner: str
    day_from: date
    day_to: date
    model: str
    only: str
    prices: str
    state: str = "running"
    days: int = 0
    rows: int = 0
    kept: int = 0
    cost_before: Decimal = Decimal(0)
    cost_after: Decimal = Decimal(0)
    note: str = ""
    updated_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def write(self, client: Any, db: str) -> None:
        self.updated_at = _later(self.updated_at)
        client.insert(f"`{db}`.reprice_runs", [[getattr(self, c) for c in _RUN_COLUMNS]], column_names=_RUN_COLUMNS)

    def doc(self) -> dict[str, Any]:
        """As the API shows it (money as strings)."""
        return {
            "run": self.run_id,
            "started_at": _aware(self.started_at).isoformat(),
            "by": self.actor,
            "from": self.day_from.isoformat(),
            "to": (self.day_to + timedelta(days=1)).isoformat(),  # exclusive, as given
            "model": self.model or None,
            "only": self.only,
            "prices": self.prices,
            "state": self.state,
            "days": self.days,
            "rows": self.rows,
            "kept": self.kept,
            "cost_before": money(self.cost_before),
            "cost_after": money(self.cost_after),
            "difference": money(EXACT.subtract(self.cost_after, self.cost_before)),
            "note": self.note,
        }


@dataclass
class DayEntry:
    """One UTC day of a run."""

    run_id: str
    day: date
    state: str
    slices: int = 0
    rows: int = 0
    cost_before: Decimal = Decimal(0)
    cost_after: Decimal = Decimal(0)
    updated_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    journalled: bool = field(default=False, compare=False)  # written at least once

    def write(self, client: Any, db: str, state: str) -> None:
        self.state = state
        self.journalled = True
        self.updated_at = _later(self.updated_at)
        client.insert(f"`{db}`.reprice_days", [[getattr(self, c) for c in _DAY_COLUMNS]], column_names=_DAY_COLUMNS)


def history(client: Any, db: str, limit: int = 50, run_id: str = "", state: str = "") -> list[RunEntry]:
    """The newest runs first (at most ``limit``), or the one named ``run_id``; in ``state``
    when given."""
    params = {"limit": limit, "run": run_id, "state": state}
    result = client.query(load(__package__, "runs_list", db=db), parameters=params)
    return [RunEntry(**dict(zip(_RUN_COLUMNS, row))) for row in result.result_rows]


def run_days(client: Any, db: str, run_id: str) -> list[DayEntry]:
    """A run's days in day order, each in its newest state."""
    result = client.query(load(__package__, "run_days", db=db), parameters={"run": run_id})
    return [DayEntry(**dict(zip(_DAY_COLUMNS, row)), journalled=True) for row in result.result_rows]


def stale_runs(client: Any, db: str, now: datetime | None = None) -> list[RunEntry]:
    """Runs still marked running whose process is gone: on this host, its pid is not alive;
    elsewhere, it has not written for :data:`STALE_AFTER_S`."""
    now = now or datetime.now(timezone.utc)
    host = socket.gethostname()
    found = []
    for run in history(client, db, limit=1000, state="running"):
        run_host, _, pid = run.owner.rpartition(":")
        if run_host == host:
            if not pid.isdigit() or int(pid) == os.getpid() or not _alive(int(pid)):
                found.append(run)
        elif now - _aware(run.updated_at) > timedelta(seconds=STALE_AFTER_S):
            found.append(run)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _later(previous: datetime) -> datetime:
    """Now, strictly after ``previous``: the newest row of a key must be the last one written."""
    now = datetime.now(timezone.utc)
    previous = _aware(previous)
    return now if now > previous else previous + timedelta(microseconds=1)
