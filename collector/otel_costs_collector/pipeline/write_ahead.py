"""The write-ahead log: every batch is on disk before its insert starts, until it returned.

An insert feeds the raw table and, through the materialized views, each rollup; those commit
one after the other, so a crash can leave a batch in the raw table but missing from a rollup.
A batch whose in-flight file survives a crash is spooled on start and replayed with its
original token: the tables that have it drop it as a duplicate, the ones that missed it take
it (``deduplicate_blocks_in_dependent_materialized_views``). A batch whose insert failed is
handed to the spool the same way, without being written again.

In-flight files are not fsynced: they guard against a crash of the process, the failure
ClickHouse's own unsynced parts survive too; the spool fsyncs a batch it adopts. They are
spool files (spool.py's format) named ``<number>.inflight`` in the spool's directory.
"""

from __future__ import annotations

import logging
import os
import threading

from otel_costs_collector.pipeline.spool import Spool, encode, fsync_dir
from otel_costs_collector.pipeline.types import Batch

__all__ = ["WriteAheadLog"]

_log = logging.getLogger("otel_costs.collector")
_SUFFIX = ".inflight"


class WriteAheadLog:
    """In-flight batches in ``spool.directory``. Thread-safe. Creating one spools the batches
    a crash left in flight (raises OSError when it cannot)."""

    def __init__(self, spool: Spool) -> None:
        self._spool = spool
        self._directory = spool.directory
        self._lock = threading.Lock()
        self._next = 1
        self._recover()

    def _recover(self) -> None:
        for name in sorted(os.listdir(self._directory)):
            if not name.endswith(_SUFFIX):
                continue
            path = os.path.join(self._directory, name)
            if os.path.islink(path) or not os.path.isfile(path):
                # Not a file this collector wrote: moved aside, never followed or replayed.
                aside = os.path.join(self._spool.rejected_dir, name)
                os.replace(path, aside)
                _log.error("spool entry %s is not a batch file; moved to %s", name, aside)
                continue
            spooled = self._spool.adopt(path)
            _log.warning("batch %s was being inserted when the collector stopped; replaying it as %s", name, spooled)
        fsync_dir(self._directory)

    def begin(self, batch: Batch) -> str:
        """Write a batch ahead of its insert (not fsynced); returns the in-flight file's name
        for :meth:`finish` or :meth:`keep`. Raises OSError."""
        payload = encode(batch)
        with self._lock:
            name = f"{self._next:020d}{_SUFFIX}"
            self._next += 1
        path = os.path.join(self._directory, name)
        with open(path + ".tmp", "wb") as f:
            f.writelines(payload)
        os.replace(path + ".tmp", path)
        return name

    def finish(self, name: str) -> None:
        """The batch's insert returned: forget it. Raises OSError."""
        os.remove(os.path.join(self._directory, name))

    def keep(self, name: str) -> str:
        """The batch's insert failed: hand it to the spool durably, for replay. Returns the
        spooled name. Raises OSError."""
        return self._spool.adopt(os.path.join(self._directory, name))
