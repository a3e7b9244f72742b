"""Durable spool for batches storage could not take, replayed in order when it returns.

``Spooling(sink, spool, …)`` wraps a plain write: a batch that cannot be written (after the
retries inside ``write``) is written to disk and fsynced, and only then reported as stored,
so a request is acknowledged once its spans are in ClickHouse *or* on disk. While the spool
holds anything, new batches queue behind it, so batches reach storage in order. A replayer
thread drains it oldest first with each batch's original deduplication token, so a batch
that did reach storage before a timeout is not counted twice. A batch storage rejects as
invalid is moved to ``rejected/`` with the reason, not replayed forever.

Every batch is also written ahead, before its insert starts, as an *in-flight* file that
is removed once the insert returned. An insert feeds the raw table and, through the
materialized views, each rollup; those commit one after the other, so a crash can leave a
batch in the raw table but missing from a rollup. A batch whose in-flight file survives a
crash is replayed on start with its original token: the tables that have it drop it as a
duplicate, the ones that missed it take it (``deduplicate_blocks_in_dependent_materialized_views``).
In-flight files are not fsynced: they guard against a crash of the process, the failure
ClickHouse's own unsynced parts survive too; a batch spooled after a failed write is.

A file is a batch file (collector/pipeline/batch_file.py: the requests as received, each with its
tenant and token) after a one-line JSON header with the batch's token and its requests'
tokens, one file per batch, written to a temporary name and renamed; spooled batches are
fsynced, and the directory too. A request answered from the spool gets the outcome the
Python mapping computes for it (``assess``): the same one storage would have given.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any, Callable

from otel_costs_collector.pipeline import batch_file
from otel_costs_collector.pipeline.types import Batch, BatchSink, PermanentError

__all__ = ["MAX_FAILURES", "Spool", "SpoolFull", "Spooling"]

_log = logging.getLogger("otel_costs.collector")
_MAGIC = b"otel-costs spooled batch 3\n"
_MAGIC_LEGACY = b"otel-costs spooled batch 2\n"  # version 0.1: batch_file.decode_legacy
#: Replays of one spooled batch that may fail in a row, while storage answers queries, before
#: the batch is taken for the culprit and written request by request.
MAX_FAILURES = 5
_SUFFIX = ".batch"
_IN_FLIGHT = ".inflight"
_OLD_FORMAT = (".batch.json", ".inflight.json")  # rows as JSON, before batch files


class SpoolFull(Exception):
    """The spool reached its byte limit; the batch was not stored."""


class Spool:
    """Batches on disk under ``directory``, at most ``max_bytes``. Thread-safe."""

    def __init__(self, directory: str, max_bytes: int):
        self.directory = directory
        self.rejected_dir = os.path.join(directory, "rejected")
        self.max_bytes = max_bytes
        os.makedirs(self.rejected_dir, exist_ok=True)
        self._lock = threading.Lock()
        self._recover()
        # Numbers continue past every batch ever spooled here, rejected ones included, so a
        # new batch never takes the name of one moved aside.
        seen = [
            int(n.split(".")[0])
            for d in (directory, self.rejected_dir)
            for n in os.listdir(d)
            if n.split(".")[0].isdigit()
        ]
        self._next = max(seen, default=0) + 1
        self._bytes = sum(os.path.getsize(os.path.join(directory, n)) for n in self._names())

    def _recover(self) -> None:
        """After a crash: in-flight batches become spooled ones (replayed, deduplicated by
        token); half-written temporary files never started an insert and are dropped."""
        for name in os.listdir(self.directory):
            path = os.path.join(self.directory, name)
            if name.endswith((_SUFFIX, _IN_FLIGHT, ".tmp", *_OLD_FORMAT)) and (
                os.path.islink(path) or not os.path.isfile(path)
            ):
                # Not a file this collector wrote (a symlink, dangling or not; a directory):
                # moved aside, never followed or replayed, and start-up goes on.
                aside = os.path.join(self.rejected_dir, name)
                os.replace(path, aside)
                _log.error("spool entry %s is not a batch file; moved to %s", name, aside)
            elif name.endswith(_OLD_FORMAT):
                self._set_aside(name, "spooled by an earlier version (rows as JSON); not replayed")
                _log.error("spool file %s is in an earlier format; moved to %s", name, self.rejected_dir)
            elif name.endswith(".tmp"):
                os.remove(path)
            elif name.endswith(_IN_FLIGHT):
                with open(path, "rb") as f:
                    os.fsync(f.fileno())
                os.replace(path, path[: -len(_IN_FLIGHT)] + _SUFFIX)
                _log.warning("batch %s was being inserted when the collector stopped; replaying it", name)
        _fsync_dir(self.directory)

    def _names(self) -> list[str]:
        return sorted(n for n in os.listdir(self.directory) if n.endswith(_SUFFIX))

    def __len__(self) -> int:
        return len(self._names())

    @property
    def bytes(self) -> int:
        return self._bytes

    def append(self, batch: Batch) -> str:
        """Write a batch durably; returns its file name. Raises SpoolFull or OSError."""
        payload = _encode(batch)
        size = sum(map(len, payload))
        with self._lock:
            if self._bytes + size > self.max_bytes:
                raise SpoolFull(f"spool holds {self._bytes} bytes; limit {self.max_bytes}")
            name = self._write_file(payload, _SUFFIX, durable=True)
            self._bytes += size
        return name

    def begin(self, batch: Batch) -> str:
        """Write a batch ahead of its insert (not fsynced); returns the in-flight file's
        name for :meth:`finish` or :meth:`keep`. Raises OSError."""
        payload = _encode(batch)
        with self._lock:
            return self._write_file(payload, _IN_FLIGHT, durable=False)

    def finish(self, name: str) -> None:
        """The batch's insert returned: forget the in-flight file."""
        os.remove(os.path.join(self.directory, name))

    def keep(self, name: str) -> str:
        """The batch's insert failed: spool the in-flight file durably for replay (it is
        counted against the limit but always kept). Returns the spooled name. Raises OSError."""
        src = os.path.join(self.directory, name)
        dst = src[: -len(_IN_FLIGHT)] + _SUFFIX
        with self._lock:
            with open(src, "rb") as f:
                os.fsync(f.fileno())
            os.replace(src, dst)
            _fsync_dir(self.directory)
            self._bytes += os.path.getsize(dst)
        return os.path.basename(dst)

    def _write_file(self, payload: tuple[bytes, bytes], suffix: str, durable: bool) -> str:
        name = f"{self._next:020d}{suffix}"
        self._next += 1
        path = os.path.join(self.directory, name)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.writelines(payload)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if durable:
            _fsync_dir(self.directory)
        return name

    def oldest_age(self) -> float:
        """Seconds the oldest spooled batch has waited for storage (0 when none)."""
        names = self._names()
        if not names:
            return 0.0
        try:
            return max(0.0, time.time() - os.path.getmtime(os.path.join(self.directory, names[0])))
        except OSError:  # replayed meanwhile
            return 0.0

    def oldest(self) -> tuple[str, Batch] | None:
        """(name, batch) of the oldest batch, or None. A file that cannot be read is moved
        to rejected/."""
        while True:
            with self._lock:
                names = self._names()
            if not names:
                return None
            name = names[0]
            try:
                return name, _read(os.path.join(self.directory, name))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                self.reject(name, f"unreadable spool file: {exc}")

    def request_tokens(self) -> set[str]:
        """Request tokens of every spooled batch (they count as stored)."""
        tokens: set[str] = set()
        for name in self._names():
            try:
                tokens.update(_read(os.path.join(self.directory, name)).requests)
            except (OSError, ValueError, KeyError, TypeError):
                continue  # oldest() moves unreadable files aside
        return tokens

    def remove(self, name: str) -> None:
        path = os.path.join(self.directory, name)
        with self._lock:
            size = os.path.getsize(path)
            os.remove(path)
            _fsync_dir(self.directory)
            self._bytes -= size

    def reject(self, name: str, reason: str) -> None:
        """Move a batch aside with the reason next to it."""
        with self._lock:
            src = os.path.join(self.directory, name)
            size = os.path.getsize(src) if os.path.exists(src) else 0
            self._set_aside(name, reason)
            _fsync_dir(self.directory)
            self._bytes -= size
        _log.error("batch %s moved to %s: %s", name, self.rejected_dir, reason)

    def set_aside(self, batch: Batch, reason: str) -> str:
        """Keep a batch storage refused in rejected/ with the reason (it was never spooled:
        one request of a batch that was). Returns its file name. Raises OSError."""
        with self._lock:
            name = f"{self._next:020d}{_SUFFIX}"
            self._next += 1
            path = os.path.join(self.rejected_dir, name)
            with open(path + ".reason.txt", "w", encoding="utf-8") as f:
                f.write(reason + "\n")
            with open(path, "wb") as f:
                f.writelines(_encode(batch))
                f.flush()
                os.fsync(f.fileno())
            _fsync_dir(self.rejected_dir)
        _log.error("request %s moved to %s: %s", batch.requests[0] if batch.requests else "?", path, reason)
        return name

    def rewrite(self, name: str, batch: Batch) -> None:
        """Replace a spooled batch by what is left of it (durably). Raises OSError."""
        path = os.path.join(self.directory, name)
        payload = _encode(batch)
        with self._lock:
            before = os.path.getsize(path)
            with open(path + ".tmp", "wb") as f:
                f.writelines(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(path + ".tmp", path)
            _fsync_dir(self.directory)
            self._bytes += sum(map(len, payload)) - before

    def _set_aside(self, name: str, reason: str) -> None:
        # The reason first: whoever sees the batch in rejected/ finds why next to it.
        with open(os.path.join(self.rejected_dir, name + ".reason.txt"), "w", encoding="utf-8") as f:
            f.write(reason + "\n")
        os.replace(os.path.join(self.directory, name), os.path.join(self.rejected_dir, name))


def _encode(batch: Batch) -> tuple[bytes, bytes]:
    """The spool file's bytes, as (header, data): written one after the other, so a batch of
    hundreds of MiB is not copied to be written."""
    header = json.dumps(
        {"token": batch.token, "requests": list(batch.requests), "spans": batch.spans}, separators=(",", ":")
    ).encode()
    return _MAGIC + header + b"\n", batch.data


def _read(path: str) -> Batch:
    """Raises OSError, ValueError, KeyError or TypeError for a file that is not a batch."""
    with open(path, "rb") as f:
        payload = f.read()
    magic = next((m for m in (_MAGIC, _MAGIC_LEGACY) if payload.startswith(m)), None)
    if magic is None:
        raise ValueError("not a spooled batch")
    header, _, data = payload[len(magic) :].partition(b"\n")
    doc = json.loads(header)
    if magic is _MAGIC_LEGACY:  # replayed in today's framing, with its own tokens
        data = batch_file.encode(batch_file.decode_legacy(data))
    else:
        batch_file.split(data)  # damaged framing is found here, not by the writer
    return Batch(data, str(doc["token"]), tuple(str(t) for t in doc["requests"]), int(doc["spans"]))


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spooling:
    """The batcher's ``write(records, spans)`` (call the object): stores a batch to ``sink``
    or, failing that, to the spool, and returns each request's outcome; plus the replayer
    thread. Call ``close()`` to stop the replayer.

    ``sink`` stores a batch file and returns the outcomes; ``assess(data)`` returns them
    without storing (for a spooled batch)."""

    def __init__(
        self,
        sink: BatchSink,
        spool: Spool,
        assess: Callable[[bytes], list[Any]],
        *,
        retry_every: float = 1.0,
        on_event: Callable[[str, int], None] | None = None,
        refused: Callable[[bytes, str], list[Any]] | None = None,
        storage_ok: Callable[[], bool] = lambda: False,
        max_failures: int = MAX_FAILURES,
    ):
        self._write = sink.write
        self._spool = spool
        self._assess = assess
        self._refused = refused
        self._storage_ok = storage_ok
        self._max_failures = max_failures
        self._failures: dict[str, int] = {}  # spooled batch → replays failed in a row
        self._retry_every = retry_every
        self._on_event = on_event or (lambda kind, spans: None)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._replay, name="otel-costs-spool", daemon=True)
        self._thread.start()

    def __call__(self, records: list[batch_file.Record], spans: int) -> list[Any]:
        """Store the requests (``spans`` in all) in storage or durably in the spool; returns
        their outcomes. Raises SpoolFull/OSError when neither is possible, or the storage
        error for a batch refused as invalid."""
        batch = Batch.of(records, spans)
        if len(self._spool):
            self._spool.append(batch)
        else:
            name = self._spool.begin(batch)
            try:
                outcomes = self._write(batch.data, batch.token)
            except Exception as exc:
                if isinstance(exc, PermanentError) and self._refused is not None:
                    # Storage refused something in the batch: find which request, store the rest.
                    left, outcomes, _ = self._one_by_one(batch, exc)
                    if not left:
                        self._spool.finish(name)
                        return outcomes
                    # storage went down meanwhile: what is left waits in the spool
                    self._spool.finish(name)
                    self._spool.append(Batch.of(left, spans))
                    self._on_event("spooled", spans)
                    self._wake.set()
                    return outcomes + self._assess(batch_file.encode(left))
                if isinstance(exc, PermanentError):
                    self._spool.finish(name)
                    raise
                _log.warning("storage unavailable, spooling %d spans: %s", spans, exc)
                self._spool.keep(name)
            else:
                self._spool.finish(name)
                return outcomes
        self._on_event("spooled", spans)
        self._wake.set()
        return self._assess(batch.data)

    def close(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _replay(self) -> None:
        while not self._stop.is_set():
            item = self._spool.oldest()
            if item is None:
                self._wake.wait(self._retry_every)
                self._wake.clear()
                continue
            name, batch = item
            try:
                outcomes = self._write(batch.data, batch.token)
            except Exception as exc:
                failures = self._failures[name] = self._failures.get(name, 0) + 1
                poison = isinstance(exc, PermanentError) or (failures >= self._max_failures and self._storage_ok())
                if poison and self._refused is not None:
                    # Refused, or failing again and again while storage answers: the batch's
                    # fault. Its requests are written one by one; the ones storage refuses
                    # are set aside, the rest stored.
                    try:
                        left, outcomes, set_aside = self._one_by_one(batch, exc)
                    except OSError as io_error:
                        _log.error("spool: %s", io_error)
                        left, outcomes, set_aside = batch_file.split(batch.data), [], 0
                    if left:  # storage went down meanwhile: keep what is left
                        rest = Batch.of(left, batch.spans)
                        if len(left) < len(batch.requests):
                            self._spool.rewrite(name, rest)
                        self._stop.wait(self._retry_every)
                        continue
                    self._failures.pop(name, None)
                    self._spool.remove(name)
                    if batch.spans > set_aside:
                        self._on_event("replayed", batch.spans - set_aside)
                    self._on_event("written", sum(getattr(o, "accepted", 0) for o in outcomes))
                    continue
                if isinstance(exc, PermanentError):
                    self._failures.pop(name, None)
                    self._spool.reject(name, f"storage refused it: {exc}")
                    self._on_event("rejected", batch.spans)
                    continue
                if failures == self._max_failures:
                    _log.error("spooled batch %s failed %d times in a row: %s", name, failures, exc)
                self._stop.wait(self._retry_every)  # storage still down
                continue
            self._failures.pop(name, None)
            self._spool.remove(name)
            self._on_event("replayed", batch.spans)
            self._on_event("written", sum(getattr(o, "accepted", 0) for o in outcomes))
            _log.info("replayed spooled batch %s (%d spans)", name, batch.spans)

    def _one_by_one(self, batch: Batch, first: BaseException) -> tuple[list[batch_file.Record], list[Any], int]:
        """Write a batch's requests one at a time (each with a token derived from the batch's,
        the same on every attempt). A request storage refuses — as invalid, or with any error
        while storage answers other queries — is set aside in rejected/ and answered as
        rejected with the reason. Returns the requests not written (storage went down: from
        the first one that failed so on), the outcomes of those done, in order, and how many
        spans were set aside."""
        assert self._refused is not None
        records = batch_file.split(batch.data)
        outcomes: list[Any] = []
        set_aside = 0
        for i, record in enumerate(records):
            data = batch_file.encode([record])
            try:
                outcomes.extend(self._write(data, f"{batch.token}:{i}"))
                continue
            except Exception as exc:
                if not (isinstance(exc, PermanentError) or self._storage_ok()):
                    return records[i:], outcomes, set_aside
                reason = f"storage refused this request: {exc}"
            self._spool.set_aside(Batch.of([record], 0), reason)
            refused = self._refused(data, reason)
            spans = sum(o.received for o in refused)
            set_aside += spans
            self._on_event("rejected", spans)
            outcomes.extend(refused)
        _log.error("a batch failed (%s); its %d requests were written one by one", first, len(records))
        return [], outcomes, set_aside

    def drain(self, timeout: float) -> bool:
        """Wait until the spool is empty (True) or ``timeout`` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        while len(self._spool):
            if time.monotonic() > deadline:
                return False
            self._wake.set()
            time.sleep(0.05)
        return True
