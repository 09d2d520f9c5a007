"""One DuckDB database file, shared by every store of a process and open only while in use.

DuckDB lets one process write a database file, or several read it, never both at once. So a
file is opened for the length of one short operation and the open is retried while another
process holds the lock: a backfill and a reader in another process take turns and neither
fails. ``hold=True`` keeps one connection open instead (one process owns the file; fastest for
benchmarks, and the only way an in-memory database lives). Writes within a process are
serialised; across processes the file lock serialises them.
"""

from __future__ import annotations

import contextlib
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import duckdb

from tradeflow.errors import UserError

T = TypeVar("T")


class _SharedFile:
    """One DuckDB database instance per file in this process, open only while in use.

    Operations lease it (a cursor each); the last lease closes it, which releases the file
    lock so another process can take its turn. Opening and closing happen under one lock:
    DuckDB's per-process instance cache is not safe against concurrent connect/close.
    """

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.con: duckdb.DuckDBPyConnection | None = None
        self.read_only = False
        self.leases = 0
        self.write_lock = threading.Lock()


_FILES: dict[str, _SharedFile] = {}
_FILES_GUARD = threading.Lock()


class StoreLockedError(UserError):
    """Another process held the database for longer than the retry budget (one line)."""


class DuckDBFile:
    """Connections to one database file (or an in-memory database) for a store."""

    def __init__(self, path: str, *, hold: bool = False, lock_retries: int = 50,
                 read_only: bool = False) -> None:
        self.path = path
        self.lock_retries = lock_retries
        self.read_only = read_only
        memory = path == ":memory:"
        if not memory:
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UserError(f"cannot create the market store's directory "
                                f"{Path(path).parent}: {exc.strerror or exc}") from None
        # An in-memory database lives only as long as its connection.
        self.held: duckdb.DuckDBPyConnection | None = None
        if hold or memory:
            self.held = duckdb.connect(path, read_only=read_only)
        with _FILES_GUARD:
            self._file = _FILES.setdefault(path if not memory else f":memory:{id(self)}",
                                           _SharedFile())

    def close(self) -> None:
        if self.held is not None:
            self.held.close()
            self.held = None

    def __str__(self) -> str:
        return self.path

    # The interface the store shares with DuckLakeCatalog: here the file lock and the
    # process's write lock already serialise every writer, and nothing conflicts.
    @contextlib.contextmanager
    def series_lock(self, names: Iterable[str]) -> Iterator[None]:
        yield

    def retrying(self, operation: Callable[[], T]) -> T:
        return operation()

    def ensure_schema(self, create: Callable[[duckdb.DuckDBPyConnection], None]) -> None:
        with self.connect(write=True) as con:
            create(con)

    @contextlib.contextmanager
    def connect(self, *, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor for one operation; ``write`` ones are serialised within the process."""
        shared = self._file
        lock = shared.write_lock if write else contextlib.nullcontext()
        with lock:
            if self.held is not None:
                if write:
                    yield self.held
                else:
                    cursor = self.held.cursor()  # own connection: safe across threads
                    try:
                        yield cursor
                    finally:
                        cursor.close()
                return
            base = self._lease()
            cursor = base.cursor()
            try:
                yield cursor
            except duckdb.IOException as exc:  # a full device, a file gone read-only
                raise UserError(f"market store {self.path}: {_io_reason(exc)}") from None
            except duckdb.TransactionException as exc:
                if "Could not write file" not in str(exc):
                    raise
                # a COMMIT that could not write its WAL: nothing of the batch was stored
                raise UserError(f"market store {self.path}: {_io_reason(exc)}") from None
            finally:
                cursor.close()
                self._release()

    def _lease(self) -> duckdb.DuckDBPyConnection:
        shared = self._file
        with shared.cond:
            # DuckDB refuses read-only and read-write connections to one file side by side
            # in a process; a store of the other mode waits until the file is idle.
            while shared.con is not None and shared.read_only != self.read_only:
                shared.cond.wait()
            if shared.con is None:
                shared.con = self._open(read_only=self.read_only)
                shared.read_only = self.read_only
            shared.leases += 1
            return shared.con

    def _release(self) -> None:
        shared = self._file
        with shared.cond:
            shared.leases -= 1
            if shared.leases == 0 and shared.con is not None:
                shared.con.close()
                shared.con = None
                shared.cond.notify_all()

    def _open(self, *, read_only: bool) -> duckdb.DuckDBPyConnection:
        delay = 0.01
        for attempt in range(self.lock_retries + 1):
            try:
                return duckdb.connect(self.path, read_only=read_only)
            except duckdb.IOException as exc:
                # Another process has the file; a write transaction there is short.
                if "lock" not in str(exc).lower() or attempt == self.lock_retries:
                    if "lock" in str(exc).lower():
                        pid = re.search(r"PID (\d+)", str(exc))
                        holder = f" (PID {pid.group(1)})" if pid else ""
                        raise StoreLockedError(
                            f"market store {self.path} stayed locked by another process"
                            f"{holder} through {self.lock_retries} retries; DuckDB allows one "
                            "writing process at a time: stop it or try again later"
                        ) from None
                    raise UserError(f"cannot open the market store {self.path}: "
                                    f"{_io_reason(exc)}") from None
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 1.6, 0.5)
        raise AssertionError("unreachable")


def _io_reason(exc: duckdb.Error) -> str:
    """DuckDB's reason without its prefix, and what to do about a file that is not a store."""
    reason = str(exc).removeprefix("IO Error: ").strip()
    reason = reason.removeprefix("TransactionContext Error: Failed to commit: ")
    if "not a valid DuckDB database file" in reason:
        reason += " (store.path names another file, or the file is damaged: move it away)"
    return reason
