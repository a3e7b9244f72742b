"""The overflow spool: batches storage could not take, on disk until they are replayed.

One file per batch under the spool directory, named by a number that only grows (so the
oldest sorts first and a new batch never takes the name of one moved aside), at most
``max_bytes`` in all. A file is a one-line JSON header (the batch's token, its requests'
tokens, its span count) after a magic line, then the batch file
(otel_costs_collector/pipeline/batch_file.py: the requests as received, each with its tenant and token).
Files are written to a temporary name, fsynced and renamed, and the directory fsynced, so a
spooled batch survives a crash of the machine. A batch that can never be stored is moved to
``rejected/`` with the reason beside it.

The write-ahead log (write_ahead.py) keeps its in-flight files in the same directory and hands
a batch over with :meth:`Spool.adopt`; the pipeline layer that spools and replays is
spooling.py.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import threading
import time

from otel_costs_collector.pipeline import batch_file
from otel_costs_collector.pipeline.types import Batch

__all__ = ["Spool", "SpoolFull", "encode", "fsync_dir"]

_log = logging.getLogger("otel_costs.collector")
_MAGIC = b"otel-costs spooled batch 3\n"
_MAGIC_LEGACY = b"otel-costs spooled batch 2\n"  # version 0.1: batch_file.decode_legacy
_SUFFIX = ".batch"
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
        """After a crash: half-written temporary files never started an insert and are dropped;
        entries this collector did not write, or wrote in an older format, are moved aside."""
        for name in os.listdir(self.directory):
            path = os.path.join(self.directory, name)
            if name.endswith((_SUFFIX, ".tmp", *_OLD_FORMAT)) and (os.path.islink(path) or not os.path.isfile(path)):
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
        fsync_dir(self.directory)

    def _names(self) -> list[str]:
        return sorted(n for n in os.listdir(self.directory) if n.endswith(_SUFFIX))

    def __len__(self) -> int:
        return len(self._names())

    @property
    def bytes(self) -> int:
        return self._bytes

    def append(self, batch: Batch) -> str:
        """Write a batch durably; returns its file name. Raises SpoolFull or OSError."""
        payload = encode(batch)
        size = sum(map(len, payload))
        with self._lock:
            if self._bytes + size > self.max_bytes:
                raise SpoolFull(f"spool holds {self._bytes} bytes; limit {self.max_bytes}")
            name = self._write_file(payload)
            self._bytes += size
        return name

    def adopt(self, path: str) -> str:
        """Spool a batch file the write-ahead log wrote (``path``, in this directory): fsynced
        and renamed to the next number, counted against the limit but always kept. Returns
        the spooled name. Raises OSError."""
        with self._lock:
            with open(path, "rb") as f:
                os.fsync(f.fileno())
            name = f"{self._next:020d}{_SUFFIX}"
            self._next += 1
            dst = os.path.join(self.directory, name)
            os.replace(path, dst)
            fsync_dir(self.directory)
            self._bytes += os.path.getsize(dst)
        return name

    def _write_file(self, payload: tuple[builtins.bytes, builtins.bytes]) -> str:
        name = f"{self._next:020d}{_SUFFIX}"
        self._next += 1
        path = os.path.join(self.directory, name)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.writelines(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(self.directory)
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
            fsync_dir(self.directory)
            self._bytes -= size

    def reject(self, name: str, reason: str) -> None:
        """Move a batch aside with the reason next to it."""
        with self._lock:
            src = os.path.join(self.directory, name)
            size = os.path.getsize(src) if os.path.exists(src) else 0
            self._set_aside(name, reason)
            fsync_dir(self.directory)
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
                f.writelines(encode(batch))
                f.flush()
                os.fsync(f.fileno())
            fsync_dir(self.rejected_dir)
        _log.error("request %s moved to %s: %s", batch.requests[0] if batch.requests else "?", path, reason)
        return name

    def rewrite(self, name: str, batch: Batch) -> None:
        """Replace a spooled batch by what is left of it (durably). Raises OSError."""
        path = os.path.join(self.directory, name)
        payload = encode(batch)
        with self._lock:
            before = os.path.getsize(path)
            with open(path + ".tmp", "wb") as f:
                f.writelines(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(path + ".tmp", path)
            fsync_dir(self.directory)
            self._bytes += sum(map(len, payload)) - before

    def _set_aside(self, name: str, reason: str) -> None:
        # The reason first: whoever sees the batch in rejected/ finds why next to it.
        with open(os.path.join(self.rejected_dir, name + ".reason.txt"), "w", encoding="utf-8") as f:
            f.write(reason + "\n")
        os.replace(os.path.join(self.directory, name), os.path.join(self.rejected_dir, name))


def encode(batch: Batch) -> tuple[bytes, bytes]:
    """The spool file's bytes, as (header, data): written one after the other, so a batch of
    hundreds of MiB is not copied to be written."""
    header = json.dumps(
        {"token": batch.insert_token, "requests": list(batch.requests), "spans": batch.spans}, separators=(",", ":")
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


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
